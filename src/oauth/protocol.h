// OAuth 2.0 wire protocol: token endpoint (code exchange, refresh), RFC 7009 revocation,
// userinfo, OIDC discovery; PKCE and state values. No token is ever put in a log or error.
#pragma once

#include <nlohmann/json.hpp>

#include <cstdint>
#include <optional>
#include <string>
#include <variant>

#include "common/result.h"
#include "http/client.h"
#include "oauth/apps.h"

namespace deputy::oauth {

struct Pkce {
  std::string verifier;   // 43 characters of base64url (32 random bytes)
  std::string challenge;  // base64url(SHA-256(verifier)), method S256
};
Pkce make_pkce();
std::string pkce_challenge(const std::string& verifier);
// A 256-bit random value, base64url.
std::string random_token();
std::string sha256_hex(std::string_view text);

struct TokenSet {
  std::string access_token;
  std::string refresh_token;
  std::string token_type;
  std::string scope;
  std::string id_token;
  std::string instance_url;          // Salesforce: where this user's API lives
  std::optional<int64_t> expires_in;  // seconds; absent when the server said nothing usable
};

enum class TokenFailure {
  kTerminal,   // invalid_grant, invalid_client, unauthorized_client: the grant is dead
  kTransient,  // 429, 5xx, timeouts, malformed replies: try again later
  kRejected,   // any other 4xx (e.g. invalid_request): a bug or misconfiguration
};

struct TokenError {
  TokenFailure failure = TokenFailure::kTransient;
  std::string error;  // the OAuth error code, when the server gave one
  int http_status = 0;
  std::string describe() const;
};

using TokenResult = std::variant<TokenSet, TokenError>;

// expires_in may be a number, a string of digits, missing or nonsense; only a plausible
// positive lifetime (up to ten years) is believed.
std::optional<int64_t> parse_expires_in(const nlohmann::json& value);

// Payload claims of a JWT, without checking its signature: only used for id_tokens received
// directly from the token endpoint over TLS (OIDC Core 3.1.3.7 allows TLS to stand in).
Result<nlohmann::json> jwt_claims(const std::string& jwt);
// A claim or field at a JSON pointer as text (a number too); empty when absent or another type.
std::string json_pointer_string(const nlohmann::json& json, const std::string& pointer);

struct Discovery {
  std::string issuer;
  std::string authorization_endpoint;
  std::string token_endpoint;
  std::string revocation_endpoint;
  std::string userinfo_endpoint;
  bool iss_parameter_supported = false;
};

class Protocol {
 public:
  explicit Protocol(http::Client& http);

  TokenResult exchange_code(const App& app, const std::string& code, const std::string& redirect_uri,
                            const std::string& verifier);
  TokenResult refresh(const App& app, const std::string& refresh_token);
  // RFC 7009. Ok when the server accepted (HTTP 200), including for already-invalid tokens.
  Status revoke(const App& app, const std::string& token, const std::string& token_type_hint);
  Result<nlohmann::json> get_json(const std::string& url, const std::string& access_token);
  Result<Discovery> discover(const std::string& issuer);

 private:
  TokenResult token_request(const App& app, std::vector<std::pair<std::string, std::string>> fields);
  http::Client& http_;
};

}  // namespace deputy::oauth
