#include "oauth/login_links.h"

#include <nlohmann/json.hpp>

#include "common/encoding.h"
#include "oauth/events.h"
#include "oauth/protocol.h"

namespace deputy::oauth {

std::string LoginOptions::redirect_uri() const { return public_url + "/oauth/callback"; }

std::string trimmed_public_url(std::string url) {
  while (!url.empty() && url.back() == '/') url.pop_back();
  return url;
}

LoginLinks::LoginLinks(AppRegistry& apps, store::OAuthStates& states, vault::TokenVault& vault, const Clock& clock,
                       metrics::Registry& metrics, LoginOptions options)
    : apps_(apps), states_(states), vault_(vault), clock_(clock), metrics_(metrics), options_(std::move(options)) {
  options_.public_url = trimmed_public_url(std::move(options_.public_url));
  describe_events(metrics_);
}

Result<std::string> LoginLinks::connect_link(const LoginRequest& request) {
  auto found = apps_.find(request.app);
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
  count_event(metrics_, "link_created", request.app);
  return options_.public_url + "/oauth/start?state=" + url_encode(state);
}

Result<LoginSecrets> open_login_secrets(vault::TokenVault& vault, const store::PendingLogin& login) {
  auto text = vault.open({login.team_id, login.user_id, login.app, login.state_hash}, "oauth_state",
                         {login.key_id, {login.nonce.bytes, login.sealed.bytes}});
  if (!text) return text.status();
  auto json = nlohmann::json::parse(*text, nullptr, false);
  if (!json.is_object()) return Internal("a login's sealed secrets hold no JSON object");
  return LoginSecrets{json.value("verifier", ""), json.value("nonce", "")};
}

}  // namespace deputy::oauth
