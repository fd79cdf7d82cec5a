// Absolute http(s) URLs as the outbound client needs them: where to connect and what to ask.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "common/result.h"

namespace deputy::http {

struct Url {
  std::string scheme;  // "http" or "https", lower case
  std::string host;    // lower case; an IPv6 address without its brackets
  uint16_t port = 0;   // given, or the scheme's default
  std::string target;  // path and query ("/" when the URL has none), without any fragment

  bool tls() const { return scheme == "https"; }
  bool default_port() const { return port == (tls() ? 443 : 80); }
  // host, or host:port when the port is not the scheme's default (the Host header's form).
  std::string authority() const;
  // scheme://authority: what errors name, since a path or query may carry secrets.
  std::string origin() const;
};

// Reads an absolute http:// or https:// URL. Credentials in it are refused: nothing here sends
// them, and a URL that carries them is a mistake to report rather than to follow.
Result<Url> parse_url(std::string_view text);

// The origin of a URL given as text, for messages about a URL that could not be read:
// everything before its path, query or fragment.
std::string origin_of(std::string_view url);

}  // namespace deputy::http
