#include "store/connections.h"

#include <spdlog/spdlog.h>

#include <thread>

#include "common/encoding.h"

namespace deputy::store {
namespace {

constexpr const char* kColumns =
    "id, team_id, user_id, app, mode, status, account, subject, key_id, nonce, sealed, access_expires_at, api_base_url, "
    "verification_hash, created_at, updated_at, last_used_at, version";

ConnectionRecord from_row(const Row& row) {
  ConnectionRecord r;
  r.id = row.text(0);
  r.team_id = row.text(1);
  r.user_id = row.text(2);
  r.app = row.text(3);
  r.mode = row.text(4) == "shared" ? ConnectionMode::kShared : ConnectionMode::kPersonal;
  r.status = row.text(5);
  r.account = row.text(6);
  r.subject = row.text(7);
  r.key_id = row.text(8);
  r.nonce = Blob{row.blob(9)};
  r.sealed = Blob{row.blob(10)};
  r.access_expires_at = row.integer(11);
  r.api_base_url = row.text(12);
  r.verification_hash = row.text(13);
  r.created_at = row.integer(14);
  r.updated_at = row.integer(15);
  r.last_used_at = row.integer(16);
  r.version = row.integer(17);
  return r;
}

Result<std::vector<ConnectionRecord>> select(Database& database, const std::string& where, const Params& params) {
  auto lease = database.acquire();
  if (!lease) return lease.status();
  auto rows = (*lease)->query(std::string("SELECT ") + kColumns + " FROM connections " + where, params);
  if (!rows) return rows.status();
  std::vector<ConnectionRecord> out;
  for (const Row& row : *rows) out.push_back(from_row(row));
  return out;
}

}  // namespace

const char* mode_name(ConnectionMode mode) { return mode == ConnectionMode::kShared ? "shared" : "personal"; }

Status append_audit(Connection& tx, const AuditEvent& e, int64_t at) {
  auto r = tx.execute(
      "INSERT INTO audit_log (at, team_id, event, actor, acting_as, app, connection_id, recipe, detail) "
      "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
      {at, e.team_id, e.event, e.actor, e.acting_as, e.app, e.connection_id, e.recipe, e.detail});
  return r ? Status::Ok() : r.status();
}

Connections::Connections(Database& database, const Clock& clock) : database_(database), clock_(clock) {}

Status Connections::upsert(const ConnectionRecord& r, const std::optional<AuditEvent>& audit) {
  auto lease = database_.acquire();
  if (!lease) return lease.status();
  const int64_t now = clock_.unix_seconds();
  return with_write_transaction(
      **lease,
      [&](Connection& tx) -> Status {
        auto removed = tx.execute("DELETE FROM connections WHERE team_id = ? AND user_id = ? AND app = ? AND mode = ?",
                                  {r.team_id, r.user_id, r.app, std::string(mode_name(r.mode))});
        if (!removed) return removed.status();
        auto inserted = tx.execute(
            std::string("INSERT INTO connections (") + kColumns + ") VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            {r.id, r.team_id, r.user_id, r.app, std::string(mode_name(r.mode)), r.status, r.account, r.subject, r.key_id,
             r.nonce, r.sealed, r.access_expires_at, r.api_base_url, r.verification_hash, now, now, int64_t{0}, int64_t{1}});
        if (!inserted) return inserted.status();
        return audit ? append_audit(tx, *audit, now) : Status::Ok();
      },
      Durability::kDurable);
}

Result<std::optional<ConnectionRecord>> Connections::find(const std::string& team_id, const std::string& user_id,
                                                          const std::string& app, ConnectionMode mode) {
  auto rows = select(database_, "WHERE team_id = ? AND user_id = ? AND app = ? AND mode = ?",
                     {team_id, user_id, app, std::string(mode_name(mode))});
  if (!rows) return rows.status();
  if (rows->empty()) return std::optional<ConnectionRecord>();
  return std::optional<ConnectionRecord>(std::move(rows->front()));
}

Result<std::optional<ConnectionRecord>> Connections::by_id(const std::string& id) {
  auto rows = select(database_, "WHERE id = ?", {id});
  if (!rows) return rows.status();
  if (rows->empty()) return std::optional<ConnectionRecord>();
  return std::optional<ConnectionRecord>(std::move(rows->front()));
}

Result<std::vector<ConnectionRecord>> Connections::of_user(const std::string& team_id, const std::string& user_id) {
  return select(database_, "WHERE team_id = ? AND user_id = ? AND mode = 'personal' ORDER BY app", {team_id, user_id});
}

Result<std::vector<ConnectionRecord>> Connections::all(const std::string& team_id) {
  if (team_id.empty()) return select(database_, "ORDER BY team_id, user_id, app", {});
  return select(database_, "WHERE team_id = ? ORDER BY user_id, app", {team_id});
}

Result<std::vector<ConnectionRecord>> Connections::list(const ConnectionFilter& filter) {
  std::string where = "WHERE 1 = 1";
  Params params;
  if (!filter.team_id.empty()) {
    where += " AND team_id = ?";
    params.emplace_back(filter.team_id);
  }
  if (!filter.user_id.empty()) {
    where += " AND user_id = ?";
    params.emplace_back(filter.user_id);
  }
  if (!filter.app.empty()) {
    where += " AND app = ?";
    params.emplace_back(filter.app);
  }
  return select(database_, where + " ORDER BY team_id, user_id, app", params);
}

Result<std::vector<AuditRecord>> Connections::read_audit(const std::string& team_id, const std::string& person, size_t limit) {
  auto lease = database_.acquire();
  if (!lease) return lease.status();
  std::string sql =
      "SELECT id, at, team_id, event, actor, acting_as, app, connection_id, recipe, detail FROM audit_log WHERE 1 = 1";
  Params params;
  if (!team_id.empty()) {
    sql += " AND team_id = ?";
    params.emplace_back(team_id);
  }
  if (!person.empty()) {
    sql += " AND (actor = ? OR acting_as = ?)";
    params.emplace_back(person);
    params.emplace_back(person);
  }
  sql += " ORDER BY id DESC LIMIT ?";
  params.emplace_back(static_cast<int64_t>(limit));
  auto rows = (*lease)->query(sql, params);
  if (!rows) return rows.status();
  std::vector<AuditRecord> out;
  for (const Row& r : *rows)
    out.push_back({r.integer(0), r.integer(1), {r.text(2), r.text(3), r.text(4), r.text(5), r.text(6), r.text(7), r.text(8), r.text(9)}});
  return out;
}

Result<bool> Connections::replace_tokens(const ConnectionRecord& r, int64_t expected_version, const std::optional<AuditEvent>& audit) {
  auto lease = database_.acquire();
  if (!lease) return lease.status();
  const int64_t now = clock_.unix_seconds();
  bool replaced = false;
  Status s = with_write_transaction(
      **lease,
      [&](Connection& tx) -> Status {
        auto changed = tx.execute(
            "UPDATE connections SET key_id = ?, nonce = ?, sealed = ?, access_expires_at = ?, api_base_url = ?, status = ?, "
            "updated_at = ?, version = version + 1 WHERE id = ? AND version = ?",
            {r.key_id, r.nonce, r.sealed, r.access_expires_at, r.api_base_url, r.status, now, r.id, expected_version});
        if (!changed) return changed.status();
        replaced = *changed == 1;
        if (replaced && audit) return append_audit(tx, *audit, now);
        return Status::Ok();
      },
      Durability::kDurable);
  if (!s.ok()) return s;
  return replaced;
}

Status Connections::set_status(const std::string& id, const std::string& status, const std::optional<AuditEvent>& audit) {
  auto lease = database_.acquire();
  if (!lease) return lease.status();
  const int64_t now = clock_.unix_seconds();
  return with_write_transaction(**lease, [&](Connection& tx) -> Status {
    auto changed = tx.execute("UPDATE connections SET status = ?, updated_at = ?, version = version + 1 WHERE id = ?", {status, now, id});
    if (!changed) return changed.status();
    return audit ? append_audit(tx, *audit, now) : Status::Ok();
  });
}

Status Connections::touch(const std::string& id) {
  auto lease = database_.acquire();
  if (!lease) return lease.status();
  auto r = (*lease)->execute("UPDATE connections SET last_used_at = ? WHERE id = ?", {clock_.unix_seconds(), id});
  return r ? Status::Ok() : r.status();
}

Result<bool> Connections::remove(const std::string& id, const std::optional<AuditEvent>& audit) {
  auto lease = database_.acquire();
  if (!lease) return lease.status();
  bool removed = false;
  Status s = with_write_transaction(
      **lease,
      [&](Connection& tx) -> Status {
        auto deleted = tx.execute("DELETE FROM connections WHERE id = ?", {id});
        if (!deleted) return deleted.status();
        removed = *deleted > 0;
        return removed && audit ? append_audit(tx, *audit, clock_.unix_seconds()) : Status::Ok();
      },
      Durability::kDurable);
  if (!s.ok()) return s;
  return removed;
}

Result<std::vector<ConnectionRecord>> Connections::sealed_with_other_key(const std::string& key_id, size_t limit) {
  return select(database_, "WHERE key_id <> ? ORDER BY id LIMIT ?", {key_id, static_cast<int64_t>(limit)});
}

Result<std::vector<std::string>> Connections::key_ids_in_use() {
  auto lease = database_.acquire();
  if (!lease) return lease.status();
  auto rows = (*lease)->query("SELECT DISTINCT key_id FROM connections UNION SELECT DISTINCT key_id FROM oauth_states "
      "UNION SELECT key_id FROM vault_canary");
  if (!rows) return rows.status();
  std::vector<std::string> ids;
  for (const Row& row : *rows) ids.push_back(row.text(0));
  return ids;
}

Status Connections::with_refresh_lock(const std::string& connection_id, const std::function<Status()>& work) {
  if (database_.dialect() != Dialect::kPostgres) return work();
  // A lease row, timed by PostgreSQL's clock: no database session is held while the token
  // endpoint answers, and a lease left by a process that died runs out by itself.
  // Named by the run that holds it (epoch:random), so a run taken over lets go of it.
  const std::string holder = std::to_string(owner_->epoch()) + ":" + to_hex(SecureRandom::instance().bytes(12));
  const auto give_up_at = std::chrono::steady_clock::now() + kRefreshLease + std::chrono::seconds(30);
  while (true) {
    {
      auto lease = database_.acquire();
      if (!lease) return lease.status();
      auto taken = (*lease)->query(
          "INSERT INTO refresh_leases (connection_id, holder, expires_at) VALUES (?, ?, now() + make_interval(secs => ?)) "
          "ON CONFLICT (connection_id) DO UPDATE SET holder = excluded.holder, expires_at = excluded.expires_at "
          "WHERE refresh_leases.expires_at < now() RETURNING holder",
          {connection_id, holder, static_cast<int64_t>(kRefreshLease.count())});
      if (!taken) return taken.status();
      if (!taken->empty()) break;
    }
    // Another process is renewing: its answer will be in the record once it lets go.
    if (std::chrono::steady_clock::now() > give_up_at) return Unavailable("another Deputy process is still renewing this login");
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  Status result = work();
  auto lease = database_.acquire();
  if (lease) {
    if (auto released = (*lease)->execute("DELETE FROM refresh_leases WHERE connection_id = ? AND holder = ?", {connection_id, holder});
        !released)
      spdlog::warn("a renewal lease stays until it runs out: {}", released.status().message());
  }
  return result;
}

Status Connections::audit(const AuditEvent& event) {
  auto lease = database_.acquire();
  if (!lease) return lease.status();
  return with_write_transaction(**lease, [&](Connection& tx) { return append_audit(tx, event, clock_.unix_seconds()); });
}

}  // namespace deputy::store
