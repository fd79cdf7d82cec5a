#include "oauth/pages.h"

namespace deputy::oauth {

std::string html_escape(const std::string& text) {
  std::string out;
  out.reserve(text.size());
  for (char c : text) {
    switch (c) {
      case '&': out += "&amp;"; break;
      case '<': out += "&lt;"; break;
      case '>': out += "&gt;"; break;
      case '"': out += "&quot;"; break;
      case '\'': out += "&#39;"; break;
      default: out += c;
    }
  }
  return out;
}

std::string page(const std::string& title, const std::string& message, const std::string& extra_html) {
  return "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
         "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">"
         "<meta name=\"referrer\" content=\"no-referrer\">"
         "<title>" + html_escape(title) + " — Deputy</title>"
         "<style>body{font-family:system-ui,sans-serif;max-width:34rem;margin:4rem auto;padding:0 1rem;color:#1d1c1d}"
         "h1{font-size:1.4rem}p{line-height:1.5}.code{font-size:2rem;letter-spacing:.3rem;font-family:monospace;"
         "background:#f4f4f4;padding:.5rem 1rem;display:inline-block}</style></head><body>"
         "<h1 id=\"title\">" + html_escape(title) + "</h1><p id=\"message\">" + html_escape(message) + "</p>" + extra_html +
         "</body></html>\n";
}

}  // namespace deputy::oauth
