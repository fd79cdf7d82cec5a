// Tokens on demand: a connection's access token, renewed first when it is about to expire or
// after the app refused it. One renewal at a time per connection, also across processes
// (a lease row on PostgreSQL); jobs waiting for the same renewal share its answer.
#pragma once

#include <chrono>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "common/clock.h"
#include "common/result.h"
#include "metrics/metrics.h"
#include "oauth/app_registry.h"
#include "oauth/protocol.h"
#include "store/connections.h"
#include "vault/token_vault.h"

namespace deputy::oauth {

// What an action needs to call the app as the connection's owner.
struct AccessGrant {
  std::string connection_id;
  std::string access_token;
  std::string api_base_url;
  std::string account;
  int64_t version = 0;
};

struct RenewalOptions {
  std::chrono::seconds refresh_skew{60};
  int refresh_attempts = 3;
  std::chrono::milliseconds refresh_backoff{500};
};

class TokenSource {
 public:
  using Sleeper = std::function<void(std::chrono::milliseconds)>;
  // Where renewals run (a few threads that may wait on token endpoints); empty: on the
  // caller's thread.
  using Post = std::function<void(std::function<void()>)>;

  TokenSource(AppRegistry& apps, Protocol& protocol, store::Connections& connections, vault::TokenVault& vault, const Clock& clock,
              metrics::Registry& metrics, RenewalOptions options = {}, Post renewals = {}, Sleeper sleeper = {});

  // A valid access token for the owner's connection, refreshed first when it is about to expire.
  // kNotFound: no connection; kUnauthenticated: it needs a new login.
  Result<AccessGrant> access(const std::string& team_id, const std::string& user_id, const std::string& app,
                             store::ConnectionMode mode);
  // After the app refused `rejected` (HTTP 401): refresh unless someone already did.
  Result<AccessGrant> refresh_after_rejection(const AccessGrant& rejected);

  // The same without holding the caller's thread through a renewal. A token that needs one
  // is renewed on the renewal executor, once per connection in this process however many
  // jobs wait for it: they subscribe to that renewal's answer. `granted` runs at once when no
  // renewal is needed, else on the renewal thread.
  using Granted = std::function<void(Result<AccessGrant>)>;
  void start_access(const std::string& team_id, const std::string& user_id, const std::string& app, store::ConnectionMode mode,
                    Granted granted);
  void start_refresh_after_rejection(const AccessGrant& rejected, Granted granted);
  // Renewals running or waiting to run in this process, for tests and metrics.
  size_t renewals_in_flight();

  // Asks the app who the person's connection is, using (and renewing) their token: refresh
  // before expiry, and once more after a 401.
  Result<std::string> whoami(const std::string& team_id, const std::string& user_id, const std::string& app);

 private:
  Result<AccessGrant> refresh_locked(const std::string& connection_id, const std::string& rejected_token, int64_t seen_version);
  bool expiring(const store::ConnectionRecord& record) const;
  // The caller's connection when it can be used (active), its last use noted.
  Result<store::ConnectionRecord> usable_record(const std::string& team_id, const std::string& user_id, const std::string& app,
                                                store::ConnectionMode mode);
  Result<AccessGrant> grant_of(const store::ConnectionRecord& record);
  // Renews `connection_id` on the renewal executor unless that is under way already; either
  // way `granted` gets the answer.
  void renew_once(const std::string& connection_id, const std::string& rejected_token, int64_t seen_version, Granted granted);
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

  AppRegistry& apps_;
  Protocol& protocol_;
  store::Connections& connections_;
  vault::TokenVault& vault_;
  const Clock& clock_;
  metrics::Registry& metrics_;
  RenewalOptions options_;
  Post renewals_;
  Sleeper sleep_;
  std::mutex locks_mutex_;
  std::map<std::string, std::weak_ptr<RefreshTurn>> locks_;
  std::mutex renewing_mutex_;
  std::map<std::string, std::vector<Granted>> renewing_;  // connection id -> who waits for its renewal
};

}  // namespace deputy::oauth
