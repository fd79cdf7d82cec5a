#include "oauth/service.h"

#include <spdlog/spdlog.h>

#include <thread>

#include "common/encoding.h"
#include "oauth/pages.h"

namespace deputy::oauth {
namespace {

constexpr const char* kBrowserCookie = "deputy_login";

std::string cookie_value(const http::Request& request, const std::string& name) {
  std::string header = request.header("Cookie");
  for (const auto& part : [&] {
         std::vector<std::string> parts;
         size_t start = 0;
         while (start <= header.size()) {
           size_t end = header.find(';', start);
           parts.push_back(std::string(trim(std::string_view(header).substr(start, end == std::string::npos ? std::string::npos : end - start))));
           if (end == std::string::npos) break;
           start = end + 1;
         }
         return parts;
       }()) {
    if (part.rfind(name + "=", 0) == 0) return part.substr(name.size() + 1);
  }
  return {};
}

http::Response html(int status, const std::string& title, const std::string& message, const std::string& extra = "") {
  auto r = http::Response::html(status, page(title, message, extra));
  r.headers.emplace_back("Cache-Control", "no-store");
  r.headers.emplace_back("Content-Security-Policy", "default-src 'none'; style-src 'unsafe-inline'");
  return r;
}

std::string lower(const std::string& s) { return to_lower(s); }

// A grant the login obtained but Deputy will not keep is handed back to the app at once.
void revoke_unused_grant(Protocol& protocol, const App& app, const TokenSet& tokens) {
  const bool refresh = !tokens.refresh_token.empty();
  (void)protocol.revoke(app, refresh ? tokens.refresh_token : tokens.access_token, refresh ? "refresh_token" : "access_token");
}

// scheme://host[:port] of a URL, lower-cased, without the scheme's default port.
std::string url_origin(const std::string& url) {
  auto scheme_end = url.find("://");
  if (scheme_end == std::string::npos) return "";
  std::string origin = lower(url.substr(0, url.find_first_of("/?#", scheme_end + 3)));
  if (origin.starts_with("https://") && origin.ends_with(":443")) origin.resize(origin.size() - 4);
  if (origin.starts_with("http://") && origin.ends_with(":80")) origin.resize(origin.size() - 3);
  return origin;
}

// RFC 9207: the authorization server names itself in `iss`; a name from anyone else means the
// answer was mixed up with another server's. Without a configured issuer, the authorization
// endpoint the browser was sent to is what Deputy knows of the server: its origin must match.
bool issuer_matches(const App& app, const std::string& iss) {
  if (!app.issuer.empty()) return iss == app.issuer || iss + "/" == app.issuer || iss == app.issuer + "/";
  std::string origin = url_origin(iss);
  return !origin.empty() && origin == url_origin(app.authorize_url);
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

}  // namespace

ConnectionService::ConnectionService(std::map<std::string, App> apps, Protocol& protocol, store::Connections& connections,
                                     store::OAuthStates& states, vault::TokenVault& vault, slack::WebApi& slack,
                                     const Clock& clock, metrics::Registry& metrics, ServiceOptions options, Sleeper sleeper)
    : apps_(std::move(apps)),
      protocol_(protocol),
      connections_(connections),
      states_(states),
      vault_(vault),
      slack_(slack),
      clock_(clock),
      metrics_(metrics),
      options_(std::move(options)),
      sleep_(std::move(sleeper)) {
  while (!options_.public_url.empty() && options_.public_url.back() == '/') options_.public_url.pop_back();
  if (!sleep_) sleep_ = [](std::chrono::milliseconds d) { std::this_thread::sleep_for(d); };
  metrics_.describe("deputy_oauth_events_total", "counter", "Connection events by kind and app.");
}

void ConnectionService::count(const std::string& event, const std::string& app) {
  metrics_.increment("deputy_oauth_events_total", {{"event", event}, {"app", app}});
}

Result<const App*> ConnectionService::app(const std::string& id) {
  std::lock_guard lock(apps_mutex_);
  auto it = apps_.find(id);
  if (it == apps_.end()) return NotFound("no app named '" + id + "' is configured");
  App& app = it->second;
  if (app.discover) {
    auto found = protocol_.discover(app.issuer);
    if (!found) return Unavailable("cannot reach " + app.display_name + " to discover its endpoints: " + found.status().message());
    auto fill = [](std::string& target, const std::string& value) {
      if (target.empty()) target = value;
    };
    fill(app.authorize_url, found->authorization_endpoint);
    fill(app.token_url, found->token_endpoint);
    fill(app.revoke_url, found->revocation_endpoint);
    fill(app.userinfo_url, found->userinfo_endpoint);
    iss_required_[app.id] = found->iss_parameter_supported;
    app.discover = false;
  }
  return &app;
}

std::string ConnectionService::api_base(const App& app, const std::string& instance_url) const {
  std::string base = app.api_base_url;
  size_t at = base.find("{instance_url}");
  if (at != std::string::npos) base.replace(at, 14, instance_url);
  while (!base.empty() && base.back() == '/') base.pop_back();
  return base;
}

// ------------------------------------------------------------------ login links

Result<std::string> ConnectionService::connect_link(const LoginRequest& request) {
  auto found = app(request.app);
  if (!found) return found.status();
  const App& a = **found;
  if (!a.oauth2) return FailedPrecondition(a.display_name + " does not use OAuth2, so it has no connect link");
  std::string state = random_token();
  Pkce pkce = make_pkce();
  std::string nonce = random_token();
  store::PendingLogin login;
  login.state_hash = sha256_hex(state);
  login.team_id = request.team_id;
  login.user_id = request.user_id;
  login.app = request.app;
  login.mode = store::mode_name(request.mode);
  login.job_id = request.job_id;
  login.created_at = clock_.unix_seconds();
  login.expires_at = login.created_at + options_.state_lifetime.count();
  nlohmann::json secrets = {{"verifier", pkce.verifier}, {"nonce", nonce}};
  auto sealed = vault_.seal({request.team_id, request.user_id, request.app, login.state_hash}, "oauth_state", secrets.dump());
  if (!sealed) return sealed.status();
  login.key_id = sealed->key_id;
  login.nonce = store::Blob{sealed->sealed.nonce};
  login.sealed = store::Blob{sealed->sealed.ciphertext};
  if (Status s = states_.create(login); !s.ok()) return s;
  count("link_created", request.app);
  return options_.public_url + "/oauth/start?state=" + url_encode(state);
}

void ConnectionService::handle_start(const http::Request& request, http::Reply reply) {
  std::string state = request.query_param("state");
  if (state.empty()) return reply(html(400, "Link not valid", "This connect link is incomplete. Start again from Slack."));
  std::string browser_secret = random_token();
  auto started = states_.start(sha256_hex(state), sha256_hex(browser_secret));
  if (!started) return reply(html(503, "Try again", "Deputy could not reach its database. Try the link again in a moment."));
  switch (started->first) {
    case store::StateOutcome::kUnknown:
      return reply(html(400, "Link not valid", "This connect link is not valid. Start again from Slack."));
    case store::StateOutcome::kAlreadyUsed:
      return reply(html(400, "Link already used",
                        "This connect link was already opened. Each link works once; ask Deputy in Slack for a new one."));
    case store::StateOutcome::kExpired:
      return reply(html(400, "Link expired", "This connect link has expired (links last 10 minutes). Start again from Slack."));
    case store::StateOutcome::kConsumed: break;
  }
  const store::PendingLogin& login = *started->second;
  auto found = app(login.app);
  if (!found) return reply(html(503, "App unavailable", found.status().message()));
  const App& a = **found;
  auto secrets_text = vault_.open({login.team_id, login.user_id, login.app, login.state_hash}, "oauth_state",
                                  {login.key_id, {login.nonce.bytes, login.sealed.bytes}});
  if (!secrets_text) return reply(html(500, "Something went wrong", "Deputy could not read this login. Start again from Slack."));
  auto secrets = nlohmann::json::parse(*secrets_text);
  FormFields query = {{"response_type", "code"},
                      {"client_id", a.client_id},
                      {"redirect_uri", redirect_uri()},
                      {"state", state}};
  std::string scopes;
  for (const auto& s : a.scopes) scopes += (scopes.empty() ? "" : " ") + s;
  if (!scopes.empty()) query.emplace_back("scope", scopes);
  if (a.pkce) {
    query.emplace_back("code_challenge", pkce_challenge(secrets["verifier"].get<std::string>()));
    query.emplace_back("code_challenge_method", "S256");
  }
  bool openid = std::find(a.scopes.begin(), a.scopes.end(), "openid") != a.scopes.end();
  if (openid) query.emplace_back("nonce", secrets["nonce"].get<std::string>());
  // offline_access needs consent in OIDC; ask for it explicitly so a refresh token is issued.
  if (std::find(a.scopes.begin(), a.scopes.end(), "offline_access") != a.scopes.end()) query.emplace_back("prompt", "consent");
  std::string location = a.authorize_url + (a.authorize_url.find('?') == std::string::npos ? "?" : "&") + encode_form(query);
  auto response = http::Response::redirect(location);
  bool secure = options_.public_url.rfind("https://", 0) == 0;
  response.headers.emplace_back("Set-Cookie", std::string(kBrowserCookie) + "=" + browser_secret +
                                                  "; Path=/oauth; HttpOnly; SameSite=Lax; Max-Age=900" + (secure ? "; Secure" : ""));
  count("login_started", login.app);
  reply(std::move(response));
}

// ------------------------------------------------------------------ callback

void ConnectionService::handle_callback(const http::Request& request, http::Reply reply) {
  std::string state = request.query_param("state");
  if (state.empty()) return reply(html(400, "Link not valid", "This page was opened without a login in progress. Start again from Slack."));
  auto consumed = states_.consume(sha256_hex(state));
  if (!consumed) return reply(html(503, "Try again", "Deputy could not reach its database. Start again from Slack."));
  switch (consumed->first) {
    case store::StateOutcome::kUnknown:
      count("callback_unknown_state", "");
      return reply(html(400, "Login not recognised", "Deputy did not start this login, so nothing was connected."));
    case store::StateOutcome::kAlreadyUsed:
      count("callback_replayed", "");
      return reply(html(400, "Login already finished", "This login was already completed or cancelled; nothing changed."));
    case store::StateOutcome::kExpired:
      count("callback_expired", consumed->second->app);
      login_failed(*consumed->second, "Your login took longer than 10 minutes, so nothing was connected.", " Run the command again to get a new Connect button.");
      return reply(html(400, "Login expired", "This login took longer than 10 minutes, so nothing was connected. Start again from Slack."));
    case store::StateOutcome::kConsumed: break;
  }
  const store::PendingLogin login = *consumed->second;
  auto found = app(login.app);
  if (!found) return reply(html(503, "App unavailable", found.status().message()));
  const App& a = **found;
  const std::string& name = a.display_name;

  if (login.browser_hash.empty() || !constant_time_equal(sha256_hex(cookie_value(request, kBrowserCookie)), login.browser_hash)) {
    count("callback_wrong_browser", login.app);
    login_failed(login, "A login to " + name + " was finished in a different browser from the one your Connect link was opened in, so nothing was connected.");
    return reply(html(400, "Finish in the same browser",
                      "This login was not started in this browser, so nothing was connected. Start again from Slack."));
  }
  // RFC 9207: the authorization server names itself; a response from anyone else is a mix-up.
  std::string iss = request.query_param("iss");
  bool iss_required;
  {
    std::lock_guard lock(apps_mutex_);
    iss_required = iss_required_.count(a.id) && iss_required_[a.id];
  }
  if (iss.empty() ? iss_required : !issuer_matches(a, iss)) {
    count("callback_wrong_issuer", login.app);
    return reply(html(400, "Login not accepted", "The answer did not come from " + name + ", so nothing was connected."));
  }
  std::string error = request.query_param("error");
  if (!error.empty()) {
    count(error == "access_denied" ? "consent_denied" : "authorize_error", login.app);
    if (error == "access_denied") {
      login_failed(login, "You did not allow Deputy to use your " + name + " account, so nothing was connected.", " Run the command again if you change your mind.");
      return reply(html(200, "Nothing was connected",
                        "You chose not to let Deputy use your " + name + " account. You can return to Slack."));
    }
    login_failed(login, "Connecting " + name + " failed: " + name + " answered '" + error.substr(0, 60) + "'. Nothing was connected.");
    return reply(html(400, "Connecting failed", name + " answered '" + error.substr(0, 60) + "'. Nothing was connected; you can return to Slack."));
  }
  std::string code = request.query_param("code");
  if (code.empty()) return reply(html(400, "Connecting failed", "The answer from " + name + " had no authorization code. Start again from Slack."));

  auto secrets_text = vault_.open({login.team_id, login.user_id, login.app, login.state_hash}, "oauth_state",
                                  {login.key_id, {login.nonce.bytes, login.sealed.bytes}});
  if (!secrets_text) return reply(html(500, "Something went wrong", "Deputy could not read this login. Start again from Slack."));
  auto secrets = nlohmann::json::parse(*secrets_text);
  auto exchanged = protocol_.exchange_code(a, code, redirect_uri(), a.pkce ? secrets["verifier"].get<std::string>() : "");
  if (auto* failure = std::get_if<TokenError>(&exchanged)) {
    count("exchange_failed", login.app);
    spdlog::warn("code exchange with {} failed: {}", a.id, failure->describe());
    login_failed(login, "Connecting " + name + " failed while finishing the login (" + failure->describe() + "). Nothing was connected.", " Try again.");
    return reply(html(502, "Connecting failed", name + " did not accept the login (" + failure->describe() + "). Nothing was connected; start again from Slack."));
  }
  TokenSet tokens = std::get<TokenSet>(std::move(exchanged));
  auto identity = read_identity(a, tokens, secrets["nonce"].get<std::string>());
  if (!identity) {
    count("identity_failed", login.app);
    revoke_unused_grant(protocol_, a, tokens);
    login_failed(login, "Connecting " + name + " failed: Deputy could not tell which account logged in. Nothing was connected.");
    return reply(html(502, "Connecting failed", "Deputy could not tell which " + name + " account logged in (" + identity.status().message() + "). Nothing was connected."));
  }

  const bool personal = login.mode == "personal";
  IdentityCheck check = personal ? a.identity_check : IdentityCheck::kNone;
  std::string slack_email;
  if (check == IdentityCheck::kEmailMatch) {
    auto profile = slack_.users_info(login.user_id);
    if (!profile && profile.status().code() == ErrorCode::kUnavailable) {
      // Slack is down for now: the check is not skipped for that, the login is refused.
      count("identity_unavailable", login.app);
      revoke_unused_grant(protocol_, a, tokens);
      login_failed(login, "Connecting " + name + " did not finish: Slack could not tell me who you are just now. Nothing was connected.",
                   " Try again in a moment.");
      return reply(html(503, "Try again", "Slack could not confirm who you are just now, so nothing was connected. Start again from Slack in a moment."));
    }
    if (profile) slack_email = profile->email;
    // email_match compares two addresses. Without one of them (the Slack app lacks the
    // users:read.email scope or Slack refuses users.info; the app account has none) there is
    // nothing to compare, and the login goes through as DESIGN.md's connect flow describes
    // (page, DM, job resumed); the state and the browser binding still tie it to the person
    // who asked. Apps that must prove it further set identity_check: one_time_code.
    if (slack_email.empty() || identity->email.empty()) {
      count("identity_unchecked", login.app);
      spdlog::warn("email_match could not compare for {} on {}: {} has no email{}", login.user_id, login.app,
                   slack_email.empty() ? "the Slack profile" : "the app account",
                   slack_email.empty() ? " (the Slack app needs the users:read.email scope)" : "");
      check = IdentityCheck::kNone;
    }
  }
  if (check == IdentityCheck::kEmailMatch && (lower(slack_email) != lower(identity->email) || !identity->email_verified)) {
    count("identity_mismatch", login.app);
    revoke_unused_grant(protocol_, a, tokens);
    (void)connections_.audit({login.team_id, "connect_refused", login.user_id, identity->account, login.app, "", "",
                              "app account email does not match the Slack profile email"});
    login_failed(login, "Someone finished your " + name + " connect link with the account " + identity->account +
                            ", which is not yours, so nothing was connected. If that was you, log in to " + name +
                            " with your own account.");
    return reply(html(403, "Not connected",
                      "You logged in to " + name + " as " + identity->account +
                          ", but this connect link was made for a different Slack user. Nothing was connected. "
                          "Ask Deputy in Slack for your own link."));
  }

  store::ConnectionRecord record;
  record.id = to_hex(SecureRandom::instance().bytes(12));
  record.team_id = login.team_id;
  record.user_id = personal ? login.user_id : "";
  record.app = login.app;
  record.mode = personal ? store::ConnectionMode::kPersonal : store::ConnectionMode::kShared;
  record.account = identity->account;
  record.subject = identity->subject;
  record.api_base_url = api_base(a, tokens.instance_url);
  record.access_expires_at = tokens.expires_in ? clock_.unix_seconds() + *tokens.expires_in : 0;
  record.status = "active";
  std::string one_time_code;
  if (check == IdentityCheck::kOneTimeCode) {
    auto bytes = SecureRandom::instance().bytes(4);
    uint32_t n = (uint32_t(uint8_t(bytes[0])) << 24) | (uint32_t(uint8_t(bytes[1])) << 16) | (uint32_t(uint8_t(bytes[2])) << 8) | uint8_t(bytes[3]);
    one_time_code = std::to_string(100000 + n % 900000);
    record.status = "pending_code";
    record.verification_hash = sha256_hex(login.team_id + "|" + login.user_id + "|" + login.app + "|" + one_time_code);
    record.verification_hash += ":" + login.job_id;
  }
  auto sealed = seal_record(record, Bundle{tokens.access_token, tokens.refresh_token, tokens.token_type, tokens.scope});
  if (!sealed) return reply(html(500, "Something went wrong", "Deputy could not store the connection. Nothing was connected."));
  std::optional<store::AuditEvent> audit;
  if (record.status == "active")
    audit = store::AuditEvent{login.team_id, "connected", login.user_id, personal ? login.user_id : "shared", login.app, record.id, "", identity->account};
  if (Status s = connections_.upsert(*sealed, audit); !s.ok()) {
    spdlog::error("storing a {} connection failed: {}", login.app, s.message());
    return reply(html(503, "Try again", "Deputy could not store the connection. Nothing was connected; start again from Slack."));
  }

  if (!one_time_code.empty()) {
    count("code_pending", login.app);
    notify(login.team_id, login.user_id, "One more step: to finish connecting " + name + " as " + identity->account +
                              ", send me the code shown in your browser, like `verify 123456`.");
    return reply(html(200, "Almost connected",
                      "You logged in to " + name + " as " + identity->account +
                          ". To finish, send this code to Deputy in Slack (for example `verify " + one_time_code + "`). It works for 10 minutes.",
                      "<p class=\"code\" id=\"code\">" + one_time_code + "</p>"));
  }
  count("connected", login.app);
  finish_connected({login.team_id, login.user_id, login.app, login.job_id, identity->account});
  return reply(html(200, "Connected to " + name, "Connected as " + identity->account + " — you can return to Slack."));
}

void ConnectionService::login_failed(const store::PendingLogin& login, const std::string& what_happened,
                                     const std::string& if_no_job) {
  std::optional<std::string> cancelled;
  if (!login.job_id.empty() && on_login_failed_)
    cancelled = on_login_failed_({login.team_id, login.user_id, login.app, login.job_id, login.created_at});
  notify(login.team_id, login.user_id,
         what_happened + (cancelled ? " I cancelled *" + *cancelled + "*, which was waiting for this login: run the command again when you are ready."
                                    : if_no_job));
}

void ConnectionService::finish_connected(const Connected& connected) {
  auto found = apps_.find(connected.app);
  std::string name = found == apps_.end() ? connected.app : found->second.display_name;
  notify(connected.team_id, connected.user_id, "Connected to " + name + " as " + connected.account + ".");
  if (on_connected_) on_connected_(connected);
}

Result<Connected> ConnectionService::confirm_code(const std::string& team_id, const std::string& user_id, const std::string& code) {
  auto mine = connections_.of_user(team_id, user_id);
  if (!mine) return mine.status();
  for (const auto& record : *mine) {
    if (record.status != "pending_code") continue;
    size_t colon = record.verification_hash.find(':');
    std::string hash = record.verification_hash.substr(0, colon);
    std::string job_id = colon == std::string::npos ? "" : record.verification_hash.substr(colon + 1);
    if (clock_.unix_seconds() - record.updated_at > options_.state_lifetime.count()) continue;
    if (!constant_time_equal(hash, sha256_hex(team_id + "|" + user_id + "|" + record.app + "|" + code))) continue;
    if (Status s = connections_.set_status(record.id, "active",
                                           store::AuditEvent{team_id, "connected", user_id, user_id, record.app, record.id, "", record.account});
        !s.ok()) {
      return s;
    }
    Connected connected{team_id, user_id, record.app, job_id, record.account};
    count("connected", record.app);
    finish_connected(connected);
    return connected;
  }
  return NotFound("no pending connection matches that code");
}

Result<ConnectionService::Identity> ConnectionService::read_identity(const App& a, const TokenSet& tokens,
                                                                     const std::string& expected_nonce) {
  Identity id;
  if (a.identity_source == IdentitySource::kIdToken && !tokens.id_token.empty()) {
    auto claims = jwt_claims(tokens.id_token);
    if (!claims) return claims.status();
    const auto& c = *claims;
    if (!a.issuer.empty() && c.value("iss", std::string()) != a.issuer) return InvalidArgument("id_token issuer does not match");
    bool audience_ok = c.contains("aud") && ((c["aud"].is_string() && c["aud"] == a.client_id) ||
                                             (c["aud"].is_array() && std::find(c["aud"].begin(), c["aud"].end(), a.client_id) != c["aud"].end()));
    if (!audience_ok) return InvalidArgument("id_token is not for this client");
    if (c.contains("exp") && c["exp"].is_number() && c["exp"].get<int64_t>() < clock_.unix_seconds() - 60)
      return InvalidArgument("id_token has expired");
    if (c.contains("nonce") && c["nonce"] != expected_nonce) return InvalidArgument("id_token nonce does not match");
    id.subject = c.value("sub", std::string());
    id.email = c.value("email", std::string());
    if (c.contains("email_verified") && c["email_verified"].is_boolean()) id.email_verified = c["email_verified"].get<bool>();
    id.account = json_pointer_string(c, "/" + a.identity_field);
    // Servers may keep scope claims out of the id_token when an access token can fetch them
    // (oidc-provider does by default); then userinfo has them, for the same subject.
    if ((id.account.empty() || id.email.empty()) && !a.userinfo_url.empty()) {
      auto info = protocol_.get_json(a.userinfo_url, tokens.access_token);
      if (!info) return info.status();
      if (json_pointer_string(*info, "/sub") != id.subject) return InvalidArgument("userinfo is about a different subject than the id_token");
      if (id.email.empty()) id.email = json_pointer_string(*info, "/email");
      if (info->contains("email_verified") && (*info)["email_verified"].is_boolean()) id.email_verified = (*info)["email_verified"].get<bool>();
      if (id.account.empty()) id.account = json_pointer_string(*info, "/" + a.identity_field);
    }
  } else if (a.identity_source == IdentitySource::kApi) {
    auto json = protocol_.get_json(a.identity_url, tokens.access_token);
    if (!json) return json.status();
    id.account = json_pointer_string(*json, a.identity_field);
    id.email = id.account.find('@') != std::string::npos ? id.account : "";
    id.subject = json_pointer_string(*json, "/id");
  } else {
    if (a.userinfo_url.empty()) return FailedPrecondition(a.display_name + " has no userinfo endpoint configured");
    auto json = protocol_.get_json(a.userinfo_url, tokens.access_token);
    if (!json) return json.status();
    id.subject = json_pointer_string(*json, "/sub");
    if (id.subject.empty()) id.subject = json_pointer_string(*json, "/user_id");
    id.email = json_pointer_string(*json, "/email");
    if (json->contains("email_verified") && (*json)["email_verified"].is_boolean()) id.email_verified = (*json)["email_verified"].get<bool>();
    id.account = json_pointer_string(*json, "/" + a.identity_field);
  }
  if (id.account.empty()) id.account = !id.email.empty() ? id.email : id.subject;
  if (id.subject.empty()) id.subject = id.account;
  if (id.account.empty()) return InvalidArgument("the app did not say who logged in");
  return id;
}

// ------------------------------------------------------------------ vault

Result<store::ConnectionRecord> ConnectionService::seal_record(store::ConnectionRecord record, const Bundle& bundle) {
  nlohmann::json json = {{"access_token", bundle.access_token}, {"refresh_token", bundle.refresh_token},
                         {"token_type", bundle.token_type}, {"scope", bundle.scope}};
  auto sealed = vault_.seal({record.team_id, record.user_id, record.app, record.id}, "connection", json.dump());
  if (!sealed) return sealed.status();
  record.key_id = sealed->key_id;
  record.nonce = store::Blob{sealed->sealed.nonce};
  record.sealed = store::Blob{sealed->sealed.ciphertext};
  return record;
}

Result<ConnectionService::Bundle> ConnectionService::open_record(const store::ConnectionRecord& record) {
  auto text = vault_.open({record.team_id, record.user_id, record.app, record.id}, "connection",
                          {record.key_id, {record.nonce.bytes, record.sealed.bytes}});
  if (!text) return text.status();
  auto json = nlohmann::json::parse(*text, nullptr, false);
  if (json.is_discarded()) return Internal("sealed connection holds no JSON");
  return Bundle{json.value("access_token", ""), json.value("refresh_token", ""), json.value("token_type", ""), json.value("scope", "")};
}

// ------------------------------------------------------------------ tokens

std::shared_ptr<ConnectionService::RefreshTurn> ConnectionService::refresh_turn(const std::string& connection_id) {
  std::lock_guard lock(locks_mutex_);
  auto& weak = locks_[connection_id];
  auto strong = weak.lock();
  if (!strong) {
    strong = std::make_shared<RefreshTurn>();
    weak = strong;
  }
  if (locks_.size() > 1024) {
    for (auto it = locks_.begin(); it != locks_.end();) it = it->second.expired() ? locks_.erase(it) : std::next(it);
  }
  return strong;
}

Result<AccessGrant> ConnectionService::grant_of(const store::ConnectionRecord& record) {
  auto bundle = open_record(record);
  if (!bundle) return bundle.status();
  return AccessGrant{record.id, bundle->access_token, record.api_base_url, record.account, record.version};
}

Result<store::ConnectionRecord> ConnectionService::usable_record(const std::string& team_id, const std::string& user_id,
                                                                const std::string& app_id, store::ConnectionMode mode) {
  auto found = connections_.find(team_id, mode == store::ConnectionMode::kShared ? "" : user_id, app_id, mode);
  if (!found) return found.status();
  if (!found->has_value()) return NotFound("no " + std::string(store::mode_name(mode)) + " connection to " + app_id);
  const store::ConnectionRecord& record = **found;
  if (record.status == "needs_reauth") return Unauthenticated("the " + app_id + " connection needs a new login");
  if (record.status != "active") return NotFound("the " + app_id + " connection is not finished");
  // "Last used" is shown to people by the minute; writing it on every read would turn each
  // read into a database write.
  if (clock_.unix_seconds() - record.last_used_at >= 60) (void)connections_.touch(record.id);
  return std::move(**found);
}

Result<AccessGrant> ConnectionService::access(const std::string& team_id, const std::string& user_id, const std::string& app_id,
                                              store::ConnectionMode mode) {
  auto record = usable_record(team_id, user_id, app_id, mode);
  if (!record) return record.status();
  if (!expiring(*record)) return grant_of(*record);
  return refresh_locked(record->id, "", record->version);
}

bool ConnectionService::expiring(const store::ConnectionRecord& record) const {
  if (record.access_expires_at == 0) return false;  // lifetime unknown: renewed after a 401 instead
  // Renew a minute early, or a quarter of the lifetime early for short-lived tokens.
  int64_t lifetime = std::max<int64_t>(1, record.access_expires_at - record.updated_at);
  int64_t skew = std::min<int64_t>(options_.refresh_skew.count(), lifetime / 4);
  return clock_.unix_seconds() >= record.access_expires_at - skew;
}

Result<AccessGrant> ConnectionService::refresh_after_rejection(const AccessGrant& rejected) {
  return refresh_locked(rejected.connection_id, rejected.access_token, rejected.version);
}

void ConnectionService::start_access(const std::string& team_id, const std::string& user_id, const std::string& app_id,
                                     store::ConnectionMode mode, Granted granted) {
  auto record = usable_record(team_id, user_id, app_id, mode);
  if (!record) return granted(record.status());
  if (!expiring(*record)) return granted(grant_of(*record));
  renew_once(record->id, "", record->version, std::move(granted));
}

void ConnectionService::start_refresh_after_rejection(const AccessGrant& rejected, Granted granted) {
  renew_once(rejected.connection_id, rejected.access_token, rejected.version, std::move(granted));
}

void ConnectionService::renew_once(const std::string& connection_id, const std::string& rejected_token, int64_t seen_version,
                                   Granted granted) {
  {
    std::lock_guard lock(renewing_mutex_);
    auto [waiting, first] = renewing_.try_emplace(connection_id);
    waiting->second.push_back(std::move(granted));
    if (!first) return;  // a renewal is under way: its answer is this caller's too
  }
  auto renew = [this, connection_id, rejected_token, seen_version] {
    auto renewed = refresh_locked(connection_id, rejected_token, seen_version);
    std::vector<Granted> waiting;
    {
      std::lock_guard lock(renewing_mutex_);
      auto it = renewing_.find(connection_id);
      if (it != renewing_.end()) {
        waiting = std::move(it->second);
        renewing_.erase(it);
      }
    }
    for (auto& g : waiting) g(renewed);
  };
  if (renewals_) renewals_(std::move(renew));
  else renew();
}

size_t ConnectionService::renewals_in_flight() {
  std::lock_guard lock(renewing_mutex_);
  return renewing_.size();
}



Result<AccessGrant> ConnectionService::refresh_locked(const std::string& connection_id, const std::string& rejected_token,
                                                      int64_t seen_version) {
  // One refresh at a time per connection: in this process by mutex, across processes by the
  // database lock. Whoever waited re-reads the record and uses the token the winner stored.
  auto turn = refresh_turn(connection_id);
  const auto asked_at = std::chrono::steady_clock::now();
  std::lock_guard in_process(turn->mutex);
  if (!turn->failure.ok() && turn->failed_at >= asked_at) return turn->failure;
  std::optional<Result<AccessGrant>> outcome;
  Status locked = connections_.with_refresh_lock(connection_id, [&]() -> Status {
    auto current = connections_.by_id(connection_id);
    if (!current) return current.status();
    if (!current->has_value()) {
      outcome = Result<AccessGrant>(NotFound("the connection was removed"));
      return Status::Ok();
    }
    store::ConnectionRecord record = **current;
    if (record.status == "needs_reauth") {
      outcome = Result<AccessGrant>(Unauthenticated("the " + record.app + " connection needs a new login"));
      return Status::Ok();
    }
    auto bundle = open_record(record);
    if (!bundle) return bundle.status();
    // Whoever held the lock before us may have renewed the tokens already: then use theirs.
    bool someone_refreshed = record.version != seen_version || (!rejected_token.empty() && bundle->access_token != rejected_token);
    if (someone_refreshed) {
      outcome = AccessGrant{record.id, bundle->access_token, record.api_base_url, record.account, record.version};
      return Status::Ok();
    }
    auto found = app(record.app);
    if (!found) return found.status();
    const App& a = **found;
    if (bundle->refresh_token.empty()) {
      (void)connections_.set_status(record.id, "needs_reauth",
                                    store::AuditEvent{record.team_id, "refresh_failed", "system", record.user_id, record.app, record.id, "", "no refresh token"});
      outcome = Result<AccessGrant>(Unauthenticated("the " + a.display_name + " login has expired and cannot be renewed"));
      return Status::Ok();
    }
    std::chrono::milliseconds backoff = options_.refresh_backoff;
    for (int attempt = 1; attempt <= options_.refresh_attempts; ++attempt) {
      TokenResult result = protocol_.refresh(a, bundle->refresh_token);
      if (auto* tokens = std::get_if<TokenSet>(&result)) {
        Bundle next{tokens->access_token, tokens->refresh_token.empty() ? bundle->refresh_token : tokens->refresh_token,
                    tokens->token_type.empty() ? bundle->token_type : tokens->token_type, tokens->scope.empty() ? bundle->scope : tokens->scope};
        store::ConnectionRecord updated = record;
        updated.access_expires_at = tokens->expires_in ? clock_.unix_seconds() + *tokens->expires_in : 0;
        if (!tokens->instance_url.empty()) updated.api_base_url = api_base(a, tokens->instance_url);
        auto sealed = seal_record(updated, next);
        if (!sealed) return sealed.status();
        auto replaced = connections_.replace_tokens(*sealed, record.version,
                                                    store::AuditEvent{record.team_id, "refreshed", "system", record.user_id, record.app, record.id, "", ""});
        if (!replaced) return replaced.status();
        if (!*replaced) return Internal("the connection changed during a locked refresh");
        count("refreshed", record.app);
        outcome = AccessGrant{record.id, next.access_token, updated.api_base_url, record.account, record.version + 1};
        return Status::Ok();
      }
      const TokenError& error = std::get<TokenError>(result);
      if (error.failure == TokenFailure::kTerminal) {
        count("refresh_refused", record.app);
        (void)connections_.set_status(record.id, "needs_reauth",
                                      store::AuditEvent{record.team_id, "refresh_failed", "system", record.user_id, record.app, record.id, "", error.describe()});
        outcome = Result<AccessGrant>(Unauthenticated(a.display_name + " refused to renew the login (" + error.describe() + ")"));
        return Status::Ok();
      }
      if (error.failure == TokenFailure::kRejected) {
        count("refresh_rejected", record.app);
        outcome = Result<AccessGrant>(Internal(a.display_name + " rejected the refresh request (" + error.describe() + "); check the app settings"));
        return Status::Ok();
      }
      count("refresh_transient_failure", record.app);
      spdlog::warn("refreshing {} connection {} failed ({}), attempt {}/{}", record.app, record.id, error.describe(), attempt,
                   options_.refresh_attempts);
      if (attempt < options_.refresh_attempts) sleep_(backoff);
      backoff *= 2;
    }
    outcome = Result<AccessGrant>(Unavailable(a.display_name + " could not renew the login: its login service did not answer"));
    return Status::Ok();
  });
  if (!locked.ok()) return locked;
  const bool passing_failure = !outcome->ok() && outcome->status().code() == ErrorCode::kUnavailable;
  turn->failure = passing_failure ? outcome->status() : Status::Ok();
  turn->failed_at = std::chrono::steady_clock::now();
  return std::move(*outcome);
}

Result<std::string> ConnectionService::whoami(const std::string& team_id, const std::string& user_id, const std::string& app_id) {
  auto found = app(app_id);
  if (!found) return found.status();
  const App& a = **found;
  std::string url = a.identity_source == IdentitySource::kApi ? a.identity_url : a.userinfo_url;
  if (url.empty()) return FailedPrecondition(a.display_name + " has no endpoint that says who is logged in");
  auto grant = access(team_id, user_id, app_id, store::ConnectionMode::kPersonal);
  if (!grant) return grant.status();
  auto answer = protocol_.get_json(url, grant->access_token);
  if (!answer && answer.status().code() == ErrorCode::kUnauthenticated) {
    auto renewed = refresh_after_rejection(*grant);
    if (!renewed) return renewed.status();
    answer = protocol_.get_json(url, renewed->access_token);
  }
  if (!answer) return answer.status();
  std::string field = a.identity_source == IdentitySource::kApi ? a.identity_field : "/" + a.identity_field;
  std::string account = json_pointer_string(*answer, field);
  if (account.empty()) account = json_pointer_string(*answer, "/email");
  if (account.empty()) account = json_pointer_string(*answer, "/sub");
  return account;
}

// ------------------------------------------------------------------ disconnect

Status ConnectionService::disconnect(const std::string& connection_id, const std::string& actor, const std::string& reason) {
  auto found = connections_.by_id(connection_id);
  if (!found) return found.status();
  if (!found->has_value()) return NotFound("no such connection");
  const store::ConnectionRecord& record = **found;
  auto bundle = open_record(record);
  auto a = app(record.app);
  if (bundle && a && !(*a)->revoke_url.empty()) {
    // Revoking the refresh token ends the whole grant at most servers; revoke the access token too.
    Status revoked = bundle->refresh_token.empty() ? Status::Ok() : protocol_.revoke(**a, bundle->refresh_token, "refresh_token");
    Status revoked_access = protocol_.revoke(**a, bundle->access_token, "access_token");
    if (!revoked.ok() || !revoked_access.ok()) {
      spdlog::warn("revoking {} connection {} at the app failed; deleting the tokens anyway: {}", record.app, record.id,
                   (!revoked.ok() ? revoked : revoked_access).message());
      count("revoke_failed", record.app);
    }
  } else if (!bundle) {
    spdlog::warn("connection {} cannot be opened ({}); deleting it without revocation", record.id, bundle.status().message());
  }
  auto removed = connections_.remove(record.id, store::AuditEvent{record.team_id, reason, actor, record.user_id.empty() ? "shared" : record.user_id,
                                                                   record.app, record.id, "", record.account});
  if (!removed) return removed.status();
  count("disconnected", record.app);
  return Status::Ok();
}

Result<std::vector<store::ConnectionRecord>> ConnectionService::offboard(const std::string& team_id, const std::string& user_id,
                                                                         const std::string& actor) {
  if (user_id.empty()) return InvalidArgument("offboarding needs a person");
  // First, so that a connect link open in the person's browser cannot connect them again
  // while their grants are being revoked.
  auto cancelled = states_.cancel_pending(team_id, user_id);
  if (!cancelled) return cancelled.status();
  auto held = connections_.list({team_id, user_id, ""});
  if (!held) return held.status();
  std::vector<store::ConnectionRecord> removed;
  for (const auto& record : *held) {
    if (record.mode != store::ConnectionMode::kPersonal) continue;
    if (Status s = disconnect(record.id, actor, "revoked_by_admin"); !s.ok()) return s;
    removed.push_back(record);
  }
  spdlog::info("{} offboarded {}: {} connection(s) revoked, {} login(s) in flight cancelled", actor, user_id, removed.size(), *cancelled);
  return removed;
}

void ConnectionService::audit_refused_disconnect(const std::string& team_id, const std::string& user_id,
                                                 const std::string& connection_id) {
  count("disconnect_refused", "");
  spdlog::warn("{} tried to disconnect connection {} that is not theirs", user_id, connection_id.substr(0, 64));
  (void)connections_.audit({team_id, "disconnect_refused", user_id, "", "", connection_id.substr(0, 64), "", "not the owner"});
}

void ConnectionService::notify(const std::string& team_id, const std::string& user_id, const std::string& text) {
  slack::Message message;
  message.text = text;
  message.blocks.section(slack::escape_mrkdwn(text));
  if (messenger_) return messenger_(team_id, user_id, message);
  // Posting to a user id lands in the app's direct messages with that person.
  auto posted = slack_.post_message(user_id, message);
  if (!posted) spdlog::warn("could not DM {}: {}", user_id, posted.status().message());
}

}  // namespace deputy::oauth
