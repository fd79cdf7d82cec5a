#include "http/proxy.h"

#include <boost/asio/ip/address.hpp>

#include <charconv>
#include <cstdlib>

#include "common/encoding.h"

namespace deputy::http {
namespace {

std::string environment(const char* lower, const char* upper = nullptr) {
  if (const char* v = std::getenv(lower); v && *v) return v;
  if (upper) {
    if (const char* v = std::getenv(upper); v && *v) return v;
  }
  return {};
}

// Whether `address` lies in `network`/`prefix` (both of the same family).
bool in_range(const boost::asio::ip::address& address, const boost::asio::ip::address& network, unsigned prefix) {
  if (address.is_v4() != network.is_v4()) return false;
  auto compare = [prefix](const auto& a, const auto& b, unsigned bits) {
    if (prefix > bits) return false;
    for (unsigned i = 0; i < prefix; ++i) {
      const unsigned byte = i / 8, bit = 7 - i % 8;
      if (((a[byte] >> bit) & 1) != ((b[byte] >> bit) & 1)) return false;
    }
    return true;
  };
  if (address.is_v4()) return compare(address.to_v4().to_bytes(), network.to_v4().to_bytes(), 32);
  return compare(address.to_v6().to_bytes(), network.to_v6().to_bytes(), 128);
}

bool entry_matches(std::string_view host, std::string_view entry) {
  if (entry == "*") return true;
  boost::system::error_code not_an_address;
  const auto host_address = boost::asio::ip::make_address(std::string(host), not_an_address);
  if (!not_an_address) {
    std::string_view network = entry;
    unsigned prefix = host_address.is_v4() ? 32 : 128;
    if (const size_t slash = entry.find('/'); slash != std::string_view::npos) {
      network = entry.substr(0, slash);
      std::string_view bits = entry.substr(slash + 1);
      auto [end, error] = std::from_chars(bits.data(), bits.data() + bits.size(), prefix);
      if (error != std::errc() || end != bits.data() + bits.size()) return false;
    }
    if (network.size() > 2 && network.front() == '[' && network.back() == ']') network = network.substr(1, network.size() - 2);
    boost::system::error_code bad;
    const auto range = boost::asio::ip::make_address(std::string(network), bad);
    return !bad && in_range(host_address, range, prefix);
  }
  if (!entry.empty() && entry.front() == '.') entry.remove_prefix(1);
  if (entry.empty()) return false;
  if (equal_ignoring_ascii_case(host, entry)) return true;
  return host.size() > entry.size() && host[host.size() - entry.size() - 1] == '.' &&
         equal_ignoring_ascii_case(host.substr(host.size() - entry.size()), entry);
}

}  // namespace

ProxySettings ProxySettings::from_environment() {
  ProxySettings s;
  s.http_proxy = environment("http_proxy");
  s.https_proxy = environment("https_proxy", "HTTPS_PROXY");
  s.all_proxy = environment("all_proxy", "ALL_PROXY");
  s.no_proxy = environment("no_proxy", "NO_PROXY");
  return s;
}

bool bypasses_proxy(std::string_view host, std::string_view no_proxy) {
  size_t start = 0;
  while (start < no_proxy.size()) {
    size_t end = no_proxy.find_first_of(", ", start);
    if (end == std::string_view::npos) end = no_proxy.size();
    std::string_view entry = trim(no_proxy.substr(start, end - start));
    if (!entry.empty() && entry_matches(host, entry)) return true;
    start = end + 1;
  }
  return false;
}

Result<std::optional<Proxy>> proxy_for(const Url& url, const ProxySettings& settings) {
  std::string named = url.tls() ? settings.https_proxy : settings.http_proxy;
  if (named.empty()) named = settings.all_proxy;
  if (named.empty() || bypasses_proxy(url.host, settings.no_proxy)) return std::optional<Proxy>{};

  // A proxy without a scheme is an HTTP proxy, as libcurl reads it.
  std::string text = named.find("://") == std::string::npos ? "http://" + named : named;
  const std::string scheme = to_lower(text.substr(0, text.find("://")));
  if (scheme != "http") {
    return InvalidArgument("the proxy " + scheme + "://… from the environment is not supported; Deputy talks to http:// proxies (CONNECT for https)");
  }
  // Credentials are taken out before the rest is read as a URL.
  const size_t authority_start = text.find("://") + 3;
  const size_t authority_end = text.find_first_of("/?#", authority_start);
  std::string authority = text.substr(authority_start, authority_end == std::string::npos ? std::string::npos : authority_end - authority_start);
  Proxy proxy;
  if (const size_t at = authority.rfind('@'); at != std::string::npos) {
    auto user = url_decode(authority.substr(0, at), false);
    if (!user) return InvalidArgument("the proxy's credentials from the environment cannot be read");
    proxy.authorization = "Basic " + base64_encode(*user);
    authority.erase(0, at + 1);
  }
  auto parsed = parse_url("http://" + authority + "/");
  if (!parsed) return InvalidArgument("the proxy from the environment cannot be read: " + parsed.status().message());
  proxy.host = parsed->host;
  const bool port_given = authority.front() == '[' ? authority.find("]:") != std::string::npos : authority.find(':') != std::string::npos;
  proxy.port = port_given ? parsed->port : 1080;  // libcurl's default proxy port
  return std::optional<Proxy>{std::move(proxy)};
}

}  // namespace deputy::http
