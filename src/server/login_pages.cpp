#include "server/login_pages.h"

#include "common/encoding.h"

namespace deputy::server {
namespace {

constexpr const char* kBrowserCookie = "deputy_login";

std::string page_html(const std::string& title, const std::string& message, const std::string& extra_html) {
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

}  // namespace

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

std::string cookie_value(const std::string& header, const std::string& name) {
  size_t start = 0;
  while (start <= header.size()) {
    size_t end = header.find(';', start);
    std::string_view part = trim(std::string_view(header).substr(start, end == std::string::npos ? std::string::npos : end - start));
    if (part.size() > name.size() && part.substr(0, name.size()) == name && part[name.size()] == '=')
      return std::string(part.substr(name.size() + 1));
    if (end == std::string::npos) break;
    start = end + 1;
  }
  return {};
}

http::Response LoginPages::render(const oauth::LoginPage& page) const {
  if (!page.redirect_to.empty()) {
    auto response = http::Response::redirect(page.redirect_to);
    response.headers.emplace_back("Set-Cookie", std::string(kBrowserCookie) + "=" + page.browser_secret +
                                                    "; Path=/oauth; HttpOnly; SameSite=Lax; Max-Age=900" + (secure_cookie_ ? "; Secure" : ""));
    return response;
  }
  const std::string code = page.one_time_code.empty() ? "" : "<p class=\"code\" id=\"code\">" + html_escape(page.one_time_code) + "</p>";
  auto response = http::Response::html(page.status, page_html(page.title, page.message, code));
  response.headers.emplace_back("Cache-Control", "no-store");
  response.headers.emplace_back("Content-Security-Policy", "default-src 'none'; style-src 'unsafe-inline'");
  return response;
}

void LoginPages::handle_start(const http::Request& request, http::Reply reply) {
  reply(render(flow_.start(request.query_param("state"))));
}

void LoginPages::handle_callback(const http::Request& request, http::Reply reply) {
  oauth::CallbackQuery answer{request.query_param("state"), request.query_param("iss"), request.query_param("error"),
                              request.query_param("code"), cookie_value(request.header("Cookie"), kBrowserCookie)};
  reply(render(flow_.callback(answer)));
}

}  // namespace deputy::server
