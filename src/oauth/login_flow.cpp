#include "oauth/login_flow.h"

#include <spdlog/spdlog.h>

#include <algorithm>

#include "common/encoding.h"
#include "oauth/events.h"
#include "oauth/sealed_tokens.h"

namespace deputy::oauth {
namespace {

LoginPage page(int status, std::string title, std::string message) { return LoginPage{status, std::move(title), std::move(message), "", "", ""}; }

// A grant the login obtained but Deputy will not keep is handed back to the app at once.
void revoke_unused_grant(Protocol& protocol, const App& app, const TokenSet& tokens) {
  const bool refresh = !tokens.refresh_token.empty();
  (void)protocol.revoke(app, refresh ? tokens.refresh_token : tokens.access_token, refresh ? "refresh_token" : "access_token");
}

// scheme://host[:port] of a URL, lower-cased, without the scheme's default port.
std::string url_origin(const std::string& url) {
  auto scheme_end = url.find("://");
  if (scheme_end == std::string::npos) return "";
  std::string origin = to_lower(url.substr(0, url.find_first_of("/?#", scheme_end + 3)));
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

bool has_scope(const App& app, const std::string& scope) { return std::find(app.scopes.begin(), app.scopes.end(), scope) != app.scopes.end(); }

}  // namespace

LoginFlow::LoginFlow(AppRegistry& apps, Protocol& protocol, store::Connections& connections, store::OAuthStates& states,
                     vault::TokenVault& vault, SlackDirectory& slack, LoginListener& listener, Messenger& messenger, const Clock& clock,
                     metrics::Registry& metrics, LoginOptions options)
    : apps_(apps),
      protocol_(protocol),
      connections_(connections),
      states_(states),
      vault_(vault),
      slack_(slack),
      listener_(listener),
      messenger_(messenger),
      clock_(clock),
      metrics_(metrics),
      options_(std::move(options)) {
  options_.public_url = trimmed_public_url(std::move(options_.public_url));
  describe_events(metrics_);
}

void LoginFlow::count(const std::string& event, const std::string& app) { count_event(metrics_, event, app); }

// ------------------------------------------------------------------ start

LoginPage LoginFlow::start(const std::string& state) {
  if (state.empty()) return page(400, "Link not valid", "This connect link is incomplete. Start again from Slack.");
  std::string browser_secret = random_token();
  auto started = states_.start(sha256_hex(state), sha256_hex(browser_secret));
  if (!started) return page(503, "Try again", "Deputy could not reach its database. Try the link again in a moment.");
  switch (started->first) {
    case store::StateOutcome::kUnknown: return page(400, "Link not valid", "This connect link is not valid. Start again from Slack.");
    case store::StateOutcome::kAlreadyUsed:
      return page(400, "Link already used", "This connect link was already opened. Each link works once; ask Deputy in Slack for a new one.");
    case store::StateOutcome::kExpired:
      return page(400, "Link expired", "This connect link has expired (links last 10 minutes). Start again from Slack.");
    case store::StateOutcome::kConsumed: break;
  }
  const store::PendingLogin& login = *started->second;
  auto found = apps_.find(login.app);
  if (!found) return page(503, "App unavailable", found.status().message());
  const App& a = **found;
  auto secrets = open_login_secrets(vault_, login);
  if (!secrets) return page(500, "Something went wrong", "Deputy could not read this login. Start again from Slack.");
  FormFields query = {{"response_type", "code"}, {"client_id", a.client_id}, {"redirect_uri", options_.redirect_uri()}, {"state", state}};
  std::string scopes;
  for (const auto& s : a.scopes) scopes += (scopes.empty() ? "" : " ") + s;
  if (!scopes.empty()) query.emplace_back("scope", scopes);
  if (a.pkce) {
    query.emplace_back("code_challenge", pkce_challenge(secrets->verifier));
    query.emplace_back("code_challenge_method", "S256");
  }
  if (has_scope(a, "openid")) query.emplace_back("nonce", secrets->nonce);
  // offline_access needs consent in OIDC; ask for it explicitly so a refresh token is issued.
  if (has_scope(a, "offline_access")) query.emplace_back("prompt", "consent");
  LoginPage redirect;
  redirect.status = 302;
  redirect.redirect_to = a.authorize_url + (a.authorize_url.find('?') == std::string::npos ? "?" : "&") + encode_form(query);
  redirect.browser_secret = std::move(browser_secret);
  count("login_started", login.app);
  return redirect;
}

// ------------------------------------------------------------------ callback

LoginPage LoginFlow::callback(const CallbackQuery& answer) {
  if (answer.state.empty()) return page(400, "Link not valid", "This page was opened without a login in progress. Start again from Slack.");
  auto consumed = states_.consume(sha256_hex(answer.state));
  if (!consumed) return page(503, "Try again", "Deputy could not reach its database. Start again from Slack.");
  switch (consumed->first) {
    case store::StateOutcome::kUnknown:
      count("callback_unknown_state", "");
      return page(400, "Login not recognised", "Deputy did not start this login, so nothing was connected.");
    case store::StateOutcome::kAlreadyUsed:
      count("callback_replayed", "");
      return page(400, "Login already finished", "This login was already completed or cancelled; nothing changed.");
    case store::StateOutcome::kExpired:
      count("callback_expired", consumed->second->app);
      login_failed(*consumed->second, "Your login took longer than 10 minutes, so nothing was connected.",
                   " Run the command again to get a new Connect button.");
      return page(400, "Login expired", "This login took longer than 10 minutes, so nothing was connected. Start again from Slack.");
    case store::StateOutcome::kConsumed: break;
  }
  const store::PendingLogin login = *consumed->second;
  auto found = apps_.find(login.app);
  if (!found) return page(503, "App unavailable", found.status().message());
  const App& a = **found;
  const std::string& name = a.display_name;

  if (login.browser_hash.empty() || !constant_time_equal(sha256_hex(answer.browser_secret), login.browser_hash)) {
    count("callback_wrong_browser", login.app);
    login_failed(login, "A login to " + name + " was finished in a different browser from the one your Connect link was opened in, so nothing was connected.");
    return page(400, "Finish in the same browser", "This login was not started in this browser, so nothing was connected. Start again from Slack.");
  }
  // RFC 9207: the authorization server names itself; a response from anyone else is a mix-up.
  if (answer.iss.empty() ? apps_.issuer_parameter_required(a.id) : !issuer_matches(a, answer.iss)) {
    count("callback_wrong_issuer", login.app);
    return page(400, "Login not accepted", "The answer did not come from " + name + ", so nothing was connected.");
  }
  if (!answer.error.empty()) {
    const std::string said = answer.error.substr(0, 60);
    count(answer.error == "access_denied" ? "consent_denied" : "authorize_error", login.app);
    if (answer.error == "access_denied") {
      login_failed(login, "You did not allow Deputy to use your " + name + " account, so nothing was connected.",
                   " Run the command again if you change your mind.");
      return page(200, "Nothing was connected", "You chose not to let Deputy use your " + name + " account. You can return to Slack.");
    }
    login_failed(login, "Connecting " + name + " failed: " + name + " answered '" + said + "'. Nothing was connected.");
    return page(400, "Connecting failed", name + " answered '" + said + "'. Nothing was connected; you can return to Slack.");
  }
  if (answer.code.empty()) return page(400, "Connecting failed", "The answer from " + name + " had no authorization code. Start again from Slack.");

  auto secrets = open_login_secrets(vault_, login);
  if (!secrets) return page(500, "Something went wrong", "Deputy could not read this login. Start again from Slack.");
  auto exchanged = protocol_.exchange_code(a, answer.code, options_.redirect_uri(), a.pkce ? secrets->verifier : "");
  if (auto* failure = std::get_if<TokenError>(&exchanged)) {
    count("exchange_failed", login.app);
    spdlog::warn("code exchange with {} failed: {}", a.id, failure->describe());
    login_failed(login, "Connecting " + name + " failed while finishing the login (" + failure->describe() + "). Nothing was connected.", " Try again.");
    return page(502, "Connecting failed",
                name + " did not accept the login (" + failure->describe() + "). Nothing was connected; start again from Slack.");
  }
  TokenSet tokens = std::get<TokenSet>(std::move(exchanged));
  auto identity = read_app_identity(protocol_, a, tokens, secrets->nonce, clock_.unix_seconds());
  if (!identity) {
    count("identity_failed", login.app);
    revoke_unused_grant(protocol_, a, tokens);
    login_failed(login, "Connecting " + name + " failed: Deputy could not tell which account logged in. Nothing was connected.");
    return page(502, "Connecting failed",
                "Deputy could not tell which " + name + " account logged in (" + identity.status().message() + "). Nothing was connected.");
  }

  const bool personal = login.mode == "personal";
  IdentityCheck check = personal ? a.identity_check : IdentityCheck::kNone;
  if (check == IdentityCheck::kEmailMatch) {
    const SameEmail verdict = compare_emails(slack_, login.user_id, *identity);
    switch (verdict) {
      case SameEmail::kYes: break;
      case SameEmail::kSlackUnavailable:
        count("identity_unavailable", login.app);
        revoke_unused_grant(protocol_, a, tokens);
        login_failed(login, "Connecting " + name + " did not finish: Slack could not tell me who you are just now. Nothing was connected.",
                     " Try again in a moment.");
        return page(503, "Try again", "Slack could not confirm who you are just now, so nothing was connected. Start again from Slack in a moment.");
      case SameEmail::kSlackProfileHasNone:
      case SameEmail::kAppAccountHasNone: {
        // Apps that must prove it further set identity_check: one_time_code.
        const bool slack_has_none = verdict == SameEmail::kSlackProfileHasNone;
        count("identity_unchecked", login.app);
        spdlog::warn("email_match could not compare for {} on {}: {} has no email{}", login.user_id, login.app,
                     slack_has_none ? "the Slack profile" : "the app account",
                     slack_has_none ? " (the Slack app needs the users:read.email scope)" : "");
        check = IdentityCheck::kNone;
        break;
      }
      case SameEmail::kNo:
        count("identity_mismatch", login.app);
        revoke_unused_grant(protocol_, a, tokens);
        (void)connections_.audit({login.team_id, "connect_refused", login.user_id, identity->account, login.app, "", "",
                                  "app account email does not match the Slack profile email"});
        login_failed(login, "Someone finished your " + name + " connect link with the account " + identity->account +
                                ", which is not yours, so nothing was connected. If that was you, log in to " + name +
                                " with your own account.");
        return page(403, "Not connected",
                    "You logged in to " + name + " as " + identity->account +
                        ", but this connect link was made for a different Slack user. Nothing was connected. "
                        "Ask Deputy in Slack for your own link.");
    }
  }

  store::ConnectionRecord record;
  record.id = to_hex(SecureRandom::instance().bytes(12));
  record.team_id = login.team_id;
  record.user_id = personal ? login.user_id : "";
  record.app = login.app;
  record.mode = personal ? store::ConnectionMode::kPersonal : store::ConnectionMode::kShared;
  record.account = identity->account;
  record.subject = identity->subject;
  record.api_base_url = AppRegistry::api_base(a, tokens.instance_url);
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
  auto sealed = seal_tokens(vault_, record, TokenBundle{tokens.access_token, tokens.refresh_token, tokens.token_type, tokens.scope});
  if (!sealed) return page(500, "Something went wrong", "Deputy could not store the connection. Nothing was connected.");
  std::optional<store::AuditEvent> audit;
  if (record.status == "active")
    audit = store::AuditEvent{login.team_id, "connected", login.user_id, personal ? login.user_id : "shared", login.app, record.id, "", identity->account};
  if (Status s = connections_.upsert(*sealed, audit); !s.ok()) {
    spdlog::error("storing a {} connection failed: {}", login.app, s.message());
    return page(503, "Try again", "Deputy could not store the connection. Nothing was connected; start again from Slack.");
  }

  if (!one_time_code.empty()) {
    count("code_pending", login.app);
    notify(login.team_id, login.user_id, "One more step: to finish connecting " + name + " as " + identity->account +
                                             ", send me the code shown in your browser, like `verify 123456`.");
    LoginPage almost = page(200, "Almost connected",
                            "You logged in to " + name + " as " + identity->account + ". To finish, send this code to Deputy in Slack (for example `verify " +
                                one_time_code + "`). It works for 10 minutes.");
    almost.one_time_code = one_time_code;
    return almost;
  }
  count("connected", login.app);
  finish_connected({login.team_id, login.user_id, login.app, login.job_id, identity->account});
  return page(200, "Connected to " + name, "Connected as " + identity->account + " — you can return to Slack.");
}

void LoginFlow::login_failed(const store::PendingLogin& login, const std::string& what_happened, const std::string& if_no_job) {
  std::optional<std::string> cancelled;
  if (!login.job_id.empty()) cancelled = listener_.on_login_failed({login.team_id, login.user_id, login.app, login.job_id, login.created_at});
  notify(login.team_id, login.user_id,
         what_happened + (cancelled ? " I cancelled *" + *cancelled + "*, which was waiting for this login: run the command again when you are ready."
                                    : if_no_job));
}

void LoginFlow::finish_connected(const Connected& connected) {
  // The job waiting for this login answers after the person has read that it is connected.
  notify(connected.team_id, connected.user_id, "Connected to " + apps_.display_name(connected.app) + " as " + connected.account + ".",
         [this, connected] { listener_.on_connected(connected); });
}

Result<Connected> LoginFlow::confirm_code(const std::string& team_id, const std::string& user_id, const std::string& code) {
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

void LoginFlow::notify(const std::string& team_id, const std::string& user_id, const std::string& text, std::function<void()> then) {
  slack::Message message;
  message.text = text;
  message.blocks.section(slack::escape_mrkdwn(text));
  messenger_.send_direct(team_id, user_id, message, std::move(then));
}

}  // namespace deputy::oauth
