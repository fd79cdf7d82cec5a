// Outbound proxies, named by the environment the way libcurl and most HTTP tools read it:
// https_proxy / HTTPS_PROXY for https URLs, http_proxy (lower case only: a CGI request can set
// HTTP_PROXY) for http URLs, all_proxy / ALL_PROXY for either, and no_proxy / NO_PROXY for the
// hosts reached directly.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "common/result.h"
#include "http/url.h"

namespace deputy::http {

struct Proxy {
  std::string host;
  uint16_t port = 0;
  // "Basic …" when the proxy URL carries credentials (user:password@host).
  std::string authorization;
};

struct ProxySettings {
  std::string http_proxy;
  std::string https_proxy;
  std::string all_proxy;
  std::string no_proxy;
  // Read from the process's environment now (tests and operators may change it at any time).
  static ProxySettings from_environment();
};

// The proxy a call to `url` goes through, or none. A proxy setting that cannot be used (a
// SOCKS or https:// proxy, a URL that cannot be read) is an error, never a silent direct call:
// where a company routes traffic through a proxy, going around it is not an option.
Result<std::optional<Proxy>> proxy_for(const Url& url, const ProxySettings& settings);

// Whether `host` is reached directly under a no_proxy list: comma- or space-separated names,
// each matching the host itself or any name under it (a leading dot is optional), IP
// addresses and CIDR ranges (10.0.0.0/8, fd00::/8), and "*" for every host.
bool bypasses_proxy(std::string_view host, std::string_view no_proxy);

}  // namespace deputy::http
