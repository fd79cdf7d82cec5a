// Personal and shared connections: the login flow (start, callback, identity check),
// tokens on demand (refresh once at a time per connection, also across processes),
// and disconnect with revocation at the app.
#pragma once

#include <chrono>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>

#include "common/clock.h"
#include "http/server.h"
#include "metrics/metrics.h"
#include "oauth/apps.h"
#include "oauth/protocol.h"
#include "slack/web_api.h"
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

struct Connected {
  std::string team_id;
  std::string user_id;
  std::string app;
  std::string job_id;
  std::string account;
};

// A login that ended without a connection.
struct FailedLogin {
  std::string team_id;
  std::string user_id;
  std::string app;
  std::string job_id;
  int64_t started_at = 0;  // when its Connect link was made
};

// What an action needs to call the app as the connection's owner.
struct AccessGrant {
  std::string connection_id;
  std::string access_token;
  std::string api_base_url;
  std::string account;
  int64_t version = 0;
};

struct ServiceOptions {
  std::string public_url;  // e.g. https://deputy.example.com
  std::chrono::seconds state_lifetime{600};
  std::chrono::seconds refresh_skew{60};
  int refresh_attempts = 3;
  std::chrono::milliseconds refresh_backoff{500};
};

class ConnectionService {
 public:
  using Sleeper = std::function<void(std::chrono::milliseconds)>;

  ConnectionService(std::map<std::string, App> apps, Protocol& protocol, store::Connections& connections,
                    store::OAuthStates& states, vault::TokenVault& vault, slack::WebApi& slack, const Clock& clock,
                    metrics::Registry& metrics, ServiceOptions options, Sleeper sleeper = {});

  void on_connected(std::function<void(const Connected&)> hook) { on_connected_ = std::move(hook); }
  // A login that ended without a connection: the job parked for it is given up, and the
  // hook returns its command if it was cancelled.
  using LoginFailedHook = std::function<std::optional<std::string>(const FailedLogin&)>;
  void on_login_failed(LoginFailedHook hook) { on_login_failed_ = std::move(hook); }
  // Where the service's direct messages go (the outbox, so Slack being down loses none);
  // without one they are posted once, straight to Slack.
  using Messenger = std::function<void(const std::string& team_id, const std::string& user_id, const slack::Message& message)>;
  void set_messenger(Messenger messenger) { messenger_ = std::move(messenger); }

  // How long a Connect link works.
  std::chrono::seconds link_lifetime() const { return options_.state_lifetime; }
  // The link behind a Connect button; valid once, for state_lifetime.
  Result<std::string> connect_link(const LoginRequest& request);

  void handle_start(const http::Request& request, http::Reply reply);
  void handle_callback(const http::Request& request, http::Reply reply);

  // A valid access token for the owner's connection, refreshed first when it is about to expire.
  // kNotFound: no connection; kUnauthenticated: it needs a new login.
  Result<AccessGrant> access(const std::string& team_id, const std::string& user_id, const std::string& app,
                             store::ConnectionMode mode);
  // After the app refused `rejected` (HTTP 401): refresh unless someone already did.
  Result<AccessGrant> refresh_after_rejection(const AccessGrant& rejected);

  // The same without holding the caller's thread through a renewal. A token that needs one
  // is renewed on the renewal executor (set_renewals), once per connection in this process
  // however many jobs wait for it: they subscribe to that renewal's answer. `granted` runs
  // at once when no renewal is needed, else on the renewal thread.
  using Granted = std::function<void(Result<AccessGrant>)>;
  void start_access(const std::string& team_id, const std::string& user_id, const std::string& app, store::ConnectionMode mode,
                    Granted granted);
  void start_refresh_after_rejection(const AccessGrant& rejected, Granted granted);
  // Where renewals run (a few threads that may wait on token endpoints); unset, on the
  // caller's thread.
  using Post = std::function<void(std::function<void()>)>;
  void set_renewals(Post post) { renewals_ = std::move(post); }
  // Renewals running or waiting to run in this process, for tests and metrics.
  size_t renewals_in_flight();

  // Asks the app who the person's connection is, using (and renewing) their token: refresh
  // before expiry, and once more after a 401.
  Result<std::string> whoami(const std::string& team_id, const std::string& user_id, const std::string& app);

  // Revokes at the app where possible, then deletes. `actor` is audited.
  Status disconnect(const std::string& connection_id, const std::string& actor, const std::string& reason);
  // Offboarding: revokes and deletes every personal connection the person holds in the
  // workspace (every workspace when team_id is empty). Returns the connections removed.
  Result<std::vector<store::ConnectionRecord>> offboard(const std::string& team_id, const std::string& user_id,
                                                         const std::string& actor);
  // The one-time code shown on the success page, sent back by the same Slack user.
  Result<Connected> confirm_code(const std::string& team_id, const std::string& user_id, const std::string& code);

  Result<std::vector<store::ConnectionRecord>> connections_of(const std::string& team_id, const std::string& user_id) {
    return connections_.of_user(team_id, user_id);
  }
  Result<std::optional<store::ConnectionRecord>> connection(const std::string& id) { return connections_.by_id(id); }
  Result<std::vector<store::ConnectionRecord>> list_connections(const store::ConnectionFilter& filter) {
    return connections_.list(filter);
  }
  Result<std::vector<store::AuditRecord>> read_audit(const std::string& team_id, const std::string& person, size_t limit) {
    return connections_.read_audit(team_id, person, limit);
  }
  Status audit_admin_refused(const std::string& team_id, const std::string& user_id, const std::string& command) {
    return connections_.audit({team_id, "admin_refused", user_id, "", "", "", "", "admin " + command.substr(0, 64)});
  }
  void audit_refused_disconnect(const std::string& team_id, const std::string& user_id, const std::string& connection_id);

  Result<const App*> app(const std::string& id);
  const std::map<std::string, App>& apps() const { return apps_; }
  std::string redirect_uri() const { return options_.public_url + "/oauth/callback"; }

 private:
  struct Bundle {
    std::string access_token;
    std::string refresh_token;
    std::string token_type;
    std::string scope;
  };
  struct Identity {
    std::string account;
    std::string subject;
    std::string email;
    bool email_verified = true;
  };

  Result<Identity> read_identity(const App& app, const TokenSet& tokens, const std::string& expected_nonce);
  Result<store::ConnectionRecord> seal_record(store::ConnectionRecord record, const Bundle& bundle);
  Result<Bundle> open_record(const store::ConnectionRecord& record);
  Result<AccessGrant> refresh_locked(const std::string& connection_id, const std::string& rejected_token, int64_t seen_version);
  bool expiring(const store::ConnectionRecord& record) const;
  // The caller's connection when it can be used (active), its last use noted.
  Result<store::ConnectionRecord> usable_record(const std::string& team_id, const std::string& user_id, const std::string& app,
                                                store::ConnectionMode mode);
  Result<AccessGrant> grant_of(const store::ConnectionRecord& record);
  void notify(const std::string& team_id, const std::string& user_id, const std::string& text);
  // Tells the person a login ended without a connection. The job parked for it is cancelled,
  // so that running the command again leaves no second copy waiting to run on a later login.
  void login_failed(const store::PendingLogin& login, const std::string& what_happened, const std::string& if_no_job = "");
  void finish_connected(const Connected& connected);
  std::string api_base(const App& app, const std::string& instance_url) const;
  // One per connection while anyone renews or waits to renew its tokens.
  struct RefreshTurn {
    std::mutex mutex;
    // The latest renewal that failed for a passing reason, kept under `mutex`: whoever was
    // already waiting for that renewal takes its answer instead of trying all over again,
    // so one slow token endpoint holds a worker per waiting job once, not once each in turn.
    std::chrono::steady_clock::time_point failed_at{};
    Status failure;
  };
  std::shared_ptr<RefreshTurn> refresh_turn(const std::string& connection_id);
  void count(const std::string& event, const std::string& app);

  std::map<std::string, App> apps_;
  std::mutex apps_mutex_;
  std::map<std::string, bool> iss_required_;
  Protocol& protocol_;
  store::Connections& connections_;
  store::OAuthStates& states_;
  vault::TokenVault& vault_;
  slack::WebApi& slack_;
  const Clock& clock_;
  metrics::Registry& metrics_;
  ServiceOptions options_;
  Sleeper sleep_;
  std::function<void(const Connected&)> on_connected_;
  LoginFailedHook on_login_failed_;
  Messenger messenger_;
  std::mutex locks_mutex_;
  std::map<std::string, std::weak_ptr<RefreshTurn>> locks_;
  // Renews `connection_id` on the renewal executor unless that is under way already; either
  // way `granted` gets the answer.
  void renew_once(const std::string& connection_id, const std::string& rejected_token, int64_t seen_version, Granted granted);
  Post renewals_;
  std::mutex renewing_mutex_;
  std::map<std::string, std::vector<Granted>> renewing_;  // connection id -> who waits for its renewal
};

}  // namespace deputy::oauth
