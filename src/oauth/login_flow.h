// The browser half of a login: /oauth/start sends the browser to the app with PKCE and a
// cookie that binds the login to that browser; /oauth/callback checks the state, the browser,
// the issuer and the identity, exchanges the code and stores the connection. Both return
// what the page says; the server renders it.
#pragma once

#include <optional>
#include <string>

#include "common/clock.h"
#include "common/result.h"
#include "metrics/metrics.h"
#include "oauth/app_registry.h"
#include "oauth/identity.h"
#include "oauth/login_links.h"
#include "oauth/login_listener.h"
#include "oauth/protocol.h"
#include "store/connections.h"
#include "store/oauth_states.h"
#include "vault/token_vault.h"

namespace deputy::oauth {

// What the browser is shown.
struct LoginPage {
  int status = 200;
  std::string title;
  std::string message;
  std::string one_time_code;  // shown large, to be sent back from Slack (identity_check: one_time_code)
  // Set: the browser is sent there instead, with `browser_secret` as its login cookie.
  std::string redirect_to;
  std::string browser_secret;
};

// The app's answer as the browser brought it back.
struct CallbackQuery {
  std::string state;
  std::string iss;
  std::string error;
  std::string code;
  std::string browser_secret;  // the cookie set by start()
};

class LoginFlow {
 public:
  LoginFlow(AppRegistry& apps, Protocol& protocol, store::Connections& connections, store::OAuthStates& states,
            vault::TokenVault& vault, SlackDirectory& slack, LoginListener& listener, Messenger& messenger, const Clock& clock,
            metrics::Registry& metrics, LoginOptions options);

  LoginPage start(const std::string& state);
  LoginPage callback(const CallbackQuery& answer);
  // The one-time code shown on the success page, sent back by the same Slack user.
  Result<Connected> confirm_code(const std::string& team_id, const std::string& user_id, const std::string& code);

 private:
  // Tells the person a login ended without a connection. The job parked for it is cancelled,
  // so that running the command again leaves no second copy waiting to run on a later login.
  void login_failed(const store::PendingLogin& login, const std::string& what_happened, const std::string& if_no_job = "");
  void finish_connected(const Connected& connected);
  void notify(const std::string& team_id, const std::string& user_id, const std::string& text, std::function<void()> then = {});
  void count(const std::string& event, const std::string& app);

  AppRegistry& apps_;
  Protocol& protocol_;
  store::Connections& connections_;
  store::OAuthStates& states_;
  vault::TokenVault& vault_;
  SlackDirectory& slack_;
  LoginListener& listener_;
  Messenger& messenger_;
  const Clock& clock_;
  metrics::Registry& metrics_;
  LoginOptions options_;
};

}  // namespace deputy::oauth
