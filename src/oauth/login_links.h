// Connect links: each names one pending login (who asked, for which app, which parked job),
// works once, and expires. The login flow takes it from there.
#pragma once

#include <chrono>
#include <string>

#include "common/clock.h"
#include "common/result.h"
#include "metrics/metrics.h"
#include "oauth/app_registry.h"
#include "store/connections.h"
#include "store/oauth_states.h"
#include "vault/token_vault.h"

namespace deputy::oauth {

struct LoginRequest {
  std::string team_id;
  std::string user_id;  // who asked (for shared connections: the admin)
  std::string app;
  store::ConnectionMode mode = store::ConnectionMode::kPersonal;
  std::string job_id;  // the parked job to resume, if any
};

struct LoginOptions {
  std::string public_url;  // e.g. https://deputy.example.com
  std::chrono::seconds state_lifetime{600};

  std::string redirect_uri() const;
};

class LoginLinks {
 public:
  LoginLinks(AppRegistry& apps, store::OAuthStates& states, vault::TokenVault& vault, const Clock& clock, metrics::Registry& metrics,
             LoginOptions options);

  // How long a Connect link works.
  std::chrono::seconds link_lifetime() const { return options_.state_lifetime; }
  // The link behind a Connect button; valid once, for link_lifetime().
  Result<std::string> connect_link(const LoginRequest& request);

 private:
  AppRegistry& apps_;
  store::OAuthStates& states_;
  vault::TokenVault& vault_;
  const Clock& clock_;
  metrics::Registry& metrics_;
  LoginOptions options_;
};

// A login's own secrets (the PKCE verifier, the OIDC nonce), sealed with its state.
struct LoginSecrets {
  std::string verifier;
  std::string nonce;
};
Result<LoginSecrets> open_login_secrets(vault::TokenVault& vault, const store::PendingLogin& login);

// The public URL without trailing slashes.
std::string trimmed_public_url(std::string url);

}  // namespace deputy::oauth
