#include "http/url.h"

#include <charconv>

#include "common/encoding.h"

namespace deputy::http {

std::string Url::authority() const {
  const std::string name = host.find(':') != std::string::npos ? "[" + host + "]" : host;
  return default_port() ? name : name + ":" + std::to_string(port);
}

std::string Url::origin() const { return scheme + "://" + authority(); }

std::string origin_of(std::string_view url) {
  const size_t scheme = url.find("//");
  const size_t start = scheme == std::string_view::npos ? 0 : scheme + 2;
  std::string_view authority = url.substr(start, url.find_first_of("/?#", start) - start);
  // Credentials never reach a message.
  if (const size_t at = authority.rfind('@'); at != std::string_view::npos) authority.remove_prefix(at + 1);
  return std::string(url.substr(0, start)) + std::string(authority);
}

Result<Url> parse_url(std::string_view text) {
  Url url;
  const size_t colon = text.find("://");
  if (colon == std::string_view::npos) return InvalidArgument("not an absolute URL");
  url.scheme = to_lower(text.substr(0, colon));
  if (url.scheme != "http" && url.scheme != "https") return InvalidArgument("only http and https URLs are supported");
  std::string_view rest = text.substr(colon + 3);
  const size_t authority_end = rest.find_first_of("/?#");
  std::string_view authority = rest.substr(0, authority_end);
  rest = authority_end == std::string_view::npos ? std::string_view() : rest.substr(authority_end);
  if (authority.find('@') != std::string_view::npos) return InvalidArgument("URLs with credentials in them are not supported");

  std::string_view port;
  if (!authority.empty() && authority.front() == '[') {
    const size_t close = authority.find(']');
    if (close == std::string_view::npos) return InvalidArgument("unclosed [ in the host");
    url.host = to_lower(authority.substr(1, close - 1));
    std::string_view after = authority.substr(close + 1);
    if (!after.empty()) {
      if (after.front() != ':') return InvalidArgument("unexpected text after the host");
      port = after.substr(1);
    }
  } else {
    const size_t port_colon = authority.rfind(':');
    url.host = to_lower(authority.substr(0, port_colon));
    if (port_colon != std::string_view::npos) port = authority.substr(port_colon + 1);
  }
  if (url.host.empty()) return InvalidArgument("no host");
  for (char c : url.host) {
    const bool allowed = (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' || c == '.' || c == '_' || c == ':';
    if (!allowed) return InvalidArgument("the host has a character hosts never have");
  }
  url.port = url.tls() ? 443 : 80;
  if (!port.empty()) {
    unsigned value = 0;
    auto [end, error] = std::from_chars(port.data(), port.data() + port.size(), value);
    if (error != std::errc() || end != port.data() + port.size() || value == 0 || value > 65535) return InvalidArgument("bad port");
    url.port = static_cast<uint16_t>(value);
  }
  rest = rest.substr(0, rest.find('#'));
  if (rest.empty() || rest.front() != '/') url.target = "/" + std::string(rest);
  else url.target = std::string(rest);
  for (char c : url.target) {
    if (static_cast<unsigned char>(c) <= 0x20 || c == 0x7f) return InvalidArgument("the path has a space or a control character");
  }
  return url;
}

}  // namespace deputy::http
