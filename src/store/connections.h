// Stored OAuth grants ("connections"). Tokens are only ever stored sealed by the vault;
// this layer moves opaque bytes and the metadata people and schedulers need.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "common/clock.h"
#include "store/database.h"
#include "store/ownership.h"

namespace deputy::store {

enum class ConnectionMode { kPersonal, kShared };
const char* mode_name(ConnectionMode mode);

struct ConnectionRecord {
  std::string id;
  std::string team_id;
  std::string user_id;  // empty for shared
  std::string app;
  ConnectionMode mode = ConnectionMode::kPersonal;
  std::string status;  // active, needs_reauth, pending_code
  std::string account;
  std::string subject;
  std::string key_id;
  Blob nonce;
  Blob sealed;
  int64_t access_expires_at = 0;
  std::string api_base_url;
  std::string verification_hash;
  int64_t created_at = 0;
  int64_t updated_at = 0;
  int64_t last_used_at = 0;
  int64_t version = 1;
};

struct AuditEvent {
  std::string team_id;
  std::string event;      // connected, refreshed, refresh_failed, disconnected, revoked_by_admin, action, …
  std::string actor;      // who asked (Slack user id, or "system")
  std::string acting_as;  // whose connection acted
  std::string app;
  std::string connection_id;
  std::string recipe;
  std::string detail;
};

struct AuditRecord {
  int64_t id = 0;
  int64_t at = 0;
  AuditEvent event;
};

struct ConnectionFilter {
  std::string team_id;  // empty: every workspace
  std::string user_id;  // empty: everyone (shared connections have no user)
  std::string app;      // empty: every app
};

class Connections {
 public:
  Connections(Database& database, const Clock& clock);

  // Replaces any earlier grant of the same owner and app. Durable: a grant the app has
  // issued is never lost to a crash after this returns.
  Status upsert(const ConnectionRecord& record, const std::optional<AuditEvent>& audit);
  Result<std::optional<ConnectionRecord>> find(const std::string& team_id, const std::string& user_id,
                                               const std::string& app, ConnectionMode mode);
  Result<std::optional<ConnectionRecord>> by_id(const std::string& id);
  Result<std::vector<ConnectionRecord>> of_user(const std::string& team_id, const std::string& user_id);
  Result<std::vector<ConnectionRecord>> all(const std::string& team_id);
  Result<std::vector<ConnectionRecord>> list(const ConnectionFilter& filter);
  // Stores a refreshed token bundle if nobody changed the record since `expected_version`.
  // Returns false when the record moved on (another refresh won).
  Result<bool> replace_tokens(const ConnectionRecord& updated, int64_t expected_version, const std::optional<AuditEvent>& audit);
  Status set_status(const std::string& id, const std::string& status, const std::optional<AuditEvent>& audit);
  Status touch(const std::string& id);
  Result<bool> remove(const std::string& id, const std::optional<AuditEvent>& audit);
  // Records sealed under keys other than `key_id`, for re-encryption.
  Result<std::vector<ConnectionRecord>> sealed_with_other_key(const std::string& key_id, size_t limit);
  Result<std::vector<std::string>> key_ids_in_use();

  // Runs `work` while holding the connection's renewal lease that other processes respect too
  // (a row in refresh_leases on PostgreSQL; waits while another process holds it). SQLite has
  // one process, whose callers take turns in memory.
  Status with_refresh_lock(const std::string& connection_id, const std::function<Status()>& work);
  // The run whose renewal leases these are: a run taken over lets go of them at once
  // (cluster/membership.h), instead of making the others wait out kRefreshLease.
  void set_owner(const Ownership& owner) { owner_ = &owner; }
  // How long a process may hold a connection's renewal before another may take it over: more
  // than a renewal's token calls and their retries take.
  static constexpr std::chrono::seconds kRefreshLease{90};

  Status audit(const AuditEvent& event);
  // Newest first. `person` matches who asked or whose connection acted; empty: everyone.
  Result<std::vector<AuditRecord>> read_audit(const std::string& team_id, const std::string& person, size_t limit);
  Database& database() { return database_; }

 private:
  Database& database_;
  const Clock& clock_;
  const Ownership* owner_ = &unowned();
};

// Appends to the audit log inside an open transaction.
Status append_audit(Connection& tx, const AuditEvent& event, int64_t at);

}  // namespace deputy::store
