#include "oauth/protocol.h"

#include <openssl/sha.h>

#include <cctype>

#include "common/clock.h"
#include "common/encoding.h"

namespace deputy::oauth {
namespace {

std::string basic_auth(const App& app) {
  // RFC 6749 §2.3.1: client id and secret are form-encoded before Basic encoding.
  return "Basic " + base64_encode(url_encode(app.client_id) + ":" + url_encode(app.client_secret));
}

void add_client_auth(const App& app, http::ClientRequest& request, FormFields& fields) {
  if (app.token_auth == TokenAuth::kClientSecretBasic && !app.client_secret.empty()) {
    request.headers.emplace_back("Authorization", basic_auth(app));
  } else {
    fields.emplace_back("client_id", app.client_id);
    if (!app.client_secret.empty()) fields.emplace_back("client_secret", app.client_secret);
  }
}

std::string host_of(const std::string& url) {
  size_t start = url.find("//");
  start = start == std::string::npos ? 0 : start + 2;
  return url.substr(0, url.find('/', start));
}

}  // namespace

std::string sha256_hex(std::string_view text) {
  unsigned char digest[SHA256_DIGEST_LENGTH];
  SHA256(reinterpret_cast<const unsigned char*>(text.data()), text.size(), digest);
  return to_hex(std::string_view(reinterpret_cast<const char*>(digest), sizeof digest));
}

std::string pkce_challenge(const std::string& verifier) {
  unsigned char digest[SHA256_DIGEST_LENGTH];
  SHA256(reinterpret_cast<const unsigned char*>(verifier.data()), verifier.size(), digest);
  return base64url_encode(std::string_view(reinterpret_cast<const char*>(digest), sizeof digest));
}

Pkce make_pkce() {
  Pkce p;
  p.verifier = base64url_encode(SecureRandom::instance().bytes(32));
  p.challenge = pkce_challenge(p.verifier);
  return p;
}

std::string random_token() { return base64url_encode(SecureRandom::instance().bytes(32)); }

std::string TokenError::describe() const {
  std::string out = error.empty() ? "no OAuth error code" : error;
  if (http_status) out += " (HTTP " + std::to_string(http_status) + ")";
  return out;
}

std::optional<int64_t> parse_expires_in(const nlohmann::json& value) {
  constexpr int64_t kTenYears = 10LL * 365 * 24 * 3600;
  int64_t seconds = 0;
  if (value.is_number_integer()) {
    seconds = value.get<int64_t>();
  } else if (value.is_number_float()) {
    double d = value.get<double>();
    if (!(d > 0 && d < double(kTenYears))) return std::nullopt;
    seconds = static_cast<int64_t>(d);
  } else if (value.is_string()) {
    std::string text = std::string(trim(value.get<std::string>()));
    if (text.empty() || text.size() > 12 || !std::all_of(text.begin(), text.end(), [](char c) { return std::isdigit(static_cast<unsigned char>(c)); }))
      return std::nullopt;
    seconds = std::stoll(text);
  } else {
    return std::nullopt;
  }
  if (seconds <= 0 || seconds > kTenYears) return std::nullopt;
  return seconds;
}

Result<nlohmann::json> jwt_claims(const std::string& jwt) {
  size_t first = jwt.find('.');
  size_t second = first == std::string::npos ? std::string::npos : jwt.find('.', first + 1);
  if (second == std::string::npos) return InvalidArgument("id_token is not a JWT");
  auto payload = base64url_decode(jwt.substr(first + 1, second - first - 1));
  if (!payload) return InvalidArgument("id_token payload is not base64url");
  auto claims = nlohmann::json::parse(*payload, nullptr, false);
  if (claims.is_discarded() || !claims.is_object()) return InvalidArgument("id_token payload is not a JSON object");
  return claims;
}

Protocol::Protocol(http::Client& http) : http_(http) {}

TokenResult Protocol::token_request(const App& app, FormFields fields) {
  http::ClientRequest request;
  request.method = "POST";
  request.url = app.token_url;
  request.headers = {{"Content-Type", "application/x-www-form-urlencoded"}, {"Accept", "application/json"}};
  add_client_auth(app, request, fields);
  request.body = encode_form(fields);
  request.timeout = std::chrono::seconds(15);
  auto response = http_.send(request);
  if (!response) return TokenError{TokenFailure::kTransient, "unreachable", 0};
  int status = response->status;
  auto json = nlohmann::json::parse(response->body, nullptr, false);
  if (status == 429 || status >= 500) return TokenError{TokenFailure::kTransient, "", status};
  if (json.is_discarded() || !json.is_object()) return TokenError{TokenFailure::kTransient, "malformed_response", status};
  if (status != 200) {
    std::string error = json.value("error", std::string());
    TokenFailure failure = (error == "invalid_grant" || error == "invalid_client" || error == "unauthorized_client")
                               ? TokenFailure::kTerminal
                               : TokenFailure::kRejected;
    if (error.empty()) failure = TokenFailure::kTransient;
    return TokenError{failure, error, status};
  }
  TokenSet tokens;
  auto text = [&](const char* key) {
    auto it = json.find(key);
    return it != json.end() && it->is_string() ? it->get<std::string>() : std::string();
  };
  tokens.access_token = text("access_token");
  if (tokens.access_token.empty()) return TokenError{TokenFailure::kTransient, "malformed_response", status};
  tokens.refresh_token = text("refresh_token");
  tokens.token_type = text("token_type");
  tokens.scope = text("scope");
  tokens.id_token = text("id_token");
  tokens.instance_url = text("instance_url");
  if (json.contains("expires_in")) tokens.expires_in = parse_expires_in(json["expires_in"]);
  return tokens;
}

TokenResult Protocol::exchange_code(const App& app, const std::string& code, const std::string& redirect_uri,
                                    const std::string& verifier) {
  FormFields fields = {{"grant_type", "authorization_code"}, {"code", code}, {"redirect_uri", redirect_uri}};
  if (!verifier.empty()) fields.emplace_back("code_verifier", verifier);
  return token_request(app, std::move(fields));
}

TokenResult Protocol::refresh(const App& app, const std::string& refresh_token) {
  return token_request(app, {{"grant_type", "refresh_token"}, {"refresh_token", refresh_token}});
}

Status Protocol::revoke(const App& app, const std::string& token, const std::string& token_type_hint) {
  if (app.revoke_url.empty()) return FailedPrecondition(app.display_name + " has no revocation endpoint");
  http::ClientRequest request;
  request.method = "POST";
  request.url = app.revoke_url;
  request.headers = {{"Content-Type", "application/x-www-form-urlencoded"}};
  FormFields fields = {{"token", token}};
  if (!token_type_hint.empty()) fields.emplace_back("token_type_hint", token_type_hint);
  add_client_auth(app, request, fields);
  request.body = encode_form(fields);
  auto response = http_.send(request);
  if (!response) return response.status();
  if (response->status == 200) return Status::Ok();
  return Unavailable("revocation at " + host_of(app.revoke_url) + " answered HTTP " + std::to_string(response->status));
}

Result<nlohmann::json> Protocol::get_json(const std::string& url, const std::string& access_token) {
  http::ClientRequest request;
  request.url = url;
  request.headers = {{"Authorization", "Bearer " + access_token}, {"Accept", "application/json"}};
  auto response = http_.send(request);
  if (!response) return response.status();
  if (response->status == 401) return Unauthenticated(host_of(url) + " refused the access token");
  if (response->status != 200) return Unavailable(host_of(url) + " answered HTTP " + std::to_string(response->status));
  auto json = nlohmann::json::parse(response->body, nullptr, false);
  if (json.is_discarded()) return Unavailable(host_of(url) + " answered with something that is not JSON");
  return json;
}

Result<Discovery> Protocol::discover(const std::string& issuer) {
  std::string base = issuer;
  while (!base.empty() && base.back() == '/') base.pop_back();
  http::ClientRequest request;
  request.url = base + "/.well-known/openid-configuration";
  auto response = http_.send(request);
  if (!response) return response.status();
  if (response->status != 200) return Unavailable("discovery at " + request.url + " answered HTTP " + std::to_string(response->status));
  auto json = nlohmann::json::parse(response->body, nullptr, false);
  if (json.is_discarded() || !json.is_object()) return Unavailable("discovery document at " + request.url + " is not JSON");
  Discovery d;
  d.issuer = json.value("issuer", std::string());
  if (d.issuer != issuer && d.issuer != base) return Unavailable("discovery document names issuer '" + d.issuer + "', expected '" + issuer + "'");
  d.authorization_endpoint = json.value("authorization_endpoint", std::string());
  d.token_endpoint = json.value("token_endpoint", std::string());
  d.revocation_endpoint = json.value("revocation_endpoint", std::string());
  d.userinfo_endpoint = json.value("userinfo_endpoint", std::string());
  d.iss_parameter_supported = json.value("authorization_response_iss_parameter_supported", false);
  return d;
}

std::string json_pointer_string(const nlohmann::json& json, const std::string& pointer) {
  try {
    const auto& value = json.at(nlohmann::json::json_pointer(pointer));
    if (value.is_string()) return value.get<std::string>();
    if (value.is_number()) return value.dump();
  } catch (const std::exception&) {
  }
  return {};
}

}  // namespace deputy::oauth
