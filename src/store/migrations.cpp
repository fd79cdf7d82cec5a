#include "store/migrations.h"

#include <algorithm>
#include <ctime>
#include <optional>
#include <string>
#include <vector>

namespace deputy::store {
namespace {

struct Migration {
  int version;
  const char* sql;  // statements separated by ';', with {id} and {blob} filled per dialect
  std::optional<Dialect> only = std::nullopt;  // elsewhere the version is recorded, nothing run
};

// Append only: a released migration is never edited, a change is a new version.
const std::vector<Migration>& migrations() {
  static const std::vector<Migration> kMigrations = {
      {1, R"SQL(
CREATE TABLE slack_dedupe (
  dedupe_key TEXT PRIMARY KEY,
  expires_at BIGINT NOT NULL
);
CREATE INDEX slack_dedupe_expiry ON slack_dedupe (expires_at);
CREATE TABLE inbox (
  id {id},
  team_id TEXT NOT NULL,
  kind TEXT NOT NULL,
  payload TEXT NOT NULL,
  state TEXT NOT NULL,
  attempts INTEGER NOT NULL DEFAULT 0,
  received_at BIGINT NOT NULL,
  due_at BIGINT NOT NULL,
  error TEXT
);
CREATE INDEX inbox_due ON inbox (state, due_at, id)
)SQL"},
      {2, R"SQL(
CREATE TABLE connections (
  id TEXT PRIMARY KEY,
  team_id TEXT NOT NULL,
  user_id TEXT NOT NULL,
  app TEXT NOT NULL,
  mode TEXT NOT NULL,
  status TEXT NOT NULL,
  account TEXT NOT NULL,
  subject TEXT NOT NULL,
  key_id TEXT NOT NULL,
  nonce {blob} NOT NULL,
  sealed {blob} NOT NULL,
  access_expires_at BIGINT NOT NULL DEFAULT 0,
  api_base_url TEXT NOT NULL DEFAULT '',
  verification_hash TEXT NOT NULL DEFAULT '',
  created_at BIGINT NOT NULL,
  updated_at BIGINT NOT NULL,
  last_used_at BIGINT NOT NULL DEFAULT 0,
  version BIGINT NOT NULL DEFAULT 1
);
CREATE UNIQUE INDEX connections_owner ON connections (team_id, user_id, app, mode);
CREATE INDEX connections_key ON connections (key_id);
CREATE TABLE oauth_states (
  state_hash TEXT PRIMARY KEY,
  team_id TEXT NOT NULL,
  user_id TEXT NOT NULL,
  app TEXT NOT NULL,
  mode TEXT NOT NULL,
  job_id TEXT NOT NULL DEFAULT '',
  key_id TEXT NOT NULL,
  nonce {blob} NOT NULL,
  sealed {blob} NOT NULL,
  browser_hash TEXT NOT NULL DEFAULT '',
  created_at BIGINT NOT NULL,
  expires_at BIGINT NOT NULL,
  started_at BIGINT NOT NULL DEFAULT 0,
  used_at BIGINT NOT NULL DEFAULT 0
);
CREATE TABLE vault_canary (
  key_id TEXT PRIMARY KEY,
  nonce {blob} NOT NULL,
  sealed {blob} NOT NULL,
  created_at BIGINT NOT NULL
);
CREATE TABLE audit_log (
  id {id},
  at BIGINT NOT NULL,
  team_id TEXT NOT NULL,
  event TEXT NOT NULL,
  actor TEXT NOT NULL,
  acting_as TEXT NOT NULL,
  app TEXT NOT NULL,
  connection_id TEXT NOT NULL,
  recipe TEXT NOT NULL,
  detail TEXT NOT NULL
);
CREATE INDEX audit_log_team_at ON audit_log (team_id, at)
)SQL"},
      {3, R"SQL(
CREATE TABLE jobs (
  id TEXT PRIMARY KEY,
  origin TEXT NOT NULL,
  team_id TEXT NOT NULL,
  requester TEXT NOT NULL,
  recipe TEXT NOT NULL,
  params TEXT NOT NULL,
  reply_to TEXT NOT NULL,
  state TEXT NOT NULL,
  step INTEGER NOT NULL DEFAULT 0,
  context TEXT NOT NULL DEFAULT '{}',
  waiting_user TEXT NOT NULL DEFAULT '',
  waiting_app TEXT NOT NULL DEFAULT '',
  outcome TEXT NOT NULL DEFAULT '',
  created_at BIGINT NOT NULL,
  updated_at BIGINT NOT NULL,
  lease_until BIGINT NOT NULL DEFAULT 0
);
CREATE UNIQUE INDEX jobs_origin ON jobs (origin);
CREATE INDEX jobs_waiting ON jobs (team_id, waiting_user, waiting_app, state);
CREATE INDEX jobs_state ON jobs (state);
CREATE TABLE job_steps (
  job_id TEXT NOT NULL,
  step INTEGER NOT NULL,
  state TEXT NOT NULL,
  result TEXT NOT NULL DEFAULT '{}',
  actor TEXT NOT NULL DEFAULT '',
  acting_as TEXT NOT NULL DEFAULT '',
  started_at BIGINT NOT NULL,
  finished_at BIGINT NOT NULL DEFAULT 0,
  PRIMARY KEY (job_id, step)
)
)SQL"},
      // On SQLite the dedupe keys are purged in the table's own order (rowid), which is the
      // order they expire in (see Inbox::purge_expired_dedupe_keys): the index by expiry only
      // cost every admission an insert. PostgreSQL, whose rows have no such order, keeps it.
      {4, R"SQL(
DROP INDEX IF EXISTS slack_dedupe_expiry
)SQL",
       Dialect::kSqlite},
      // Who renews a connection's tokens, across processes: a lease row with PostgreSQL's
      // clock instead of a session lock held during the token call (SQLite has one process).
      {5, R"SQL(
CREATE TABLE refresh_leases (
  connection_id TEXT PRIMARY KEY,
  holder TEXT NOT NULL,
  expires_at TIMESTAMPTZ NOT NULL
)
)SQL",
       Dialect::kPostgres},
      // Only jobs waiting for a login are ever looked up by who must log in: the index holds
      // those alone, so a job that never waits (nearly all) costs it nothing on insert and on
      // each change of state.
      {6, R"SQL(
DROP INDEX jobs_waiting;
CREATE INDEX jobs_waiting ON jobs (team_id, waiting_user, waiting_app) WHERE state = 'awaiting_auth'
)SQL"},
      // Each run of a Deputy process, with its heartbeat (milliseconds by the database's own
      // clock). A claim on a delivery or a job carries the epoch of the run that holds it, and
      // every change its holder makes is conditional on it: a run whose heartbeats stopped is
      // taken over by the others, and can change nothing it held once it comes back. A lease
      // names the one run that does a task for all (housekeeping), until it stops renewing it.
      {7, R"SQL(
CREATE TABLE processes (
  epoch {id},
  host TEXT NOT NULL,
  pid BIGINT NOT NULL,
  takeover_ms BIGINT NOT NULL,
  started_at BIGINT NOT NULL,
  heartbeat_at BIGINT NOT NULL,
  ended_at BIGINT
);
CREATE INDEX processes_alive ON processes (heartbeat_at) WHERE ended_at IS NULL;
ALTER TABLE inbox ADD COLUMN owner_epoch BIGINT;
ALTER TABLE jobs ADD COLUMN owner_epoch BIGINT;
CREATE INDEX inbox_owner ON inbox (owner_epoch) WHERE state = 'working';
CREATE INDEX jobs_owner ON jobs (owner_epoch) WHERE state = 'running';
CREATE TABLE leases (
  name TEXT PRIMARY KEY,
  holder BIGINT NOT NULL,
  until_ms BIGINT NOT NULL
)
)SQL"},
  };
  return kMigrations;
}

std::string fill(std::string sql, Dialect dialect) {
  auto replace_all = [&](const std::string& from, const std::string& to) {
    for (size_t at = sql.find(from); at != std::string::npos; at = sql.find(from, at + to.size())) sql.replace(at, from.size(), to);
  };
  replace_all("{id}", dialect == Dialect::kSqlite ? "INTEGER PRIMARY KEY AUTOINCREMENT" : "BIGSERIAL PRIMARY KEY");
  replace_all("{blob}", dialect == Dialect::kSqlite ? "BLOB" : "BYTEA");
  return sql;
}

std::vector<std::string> statements(const std::string& sql) {
  std::vector<std::string> out;
  size_t start = 0;
  while (start < sql.size()) {
    size_t end = sql.find(';', start);
    std::string one = sql.substr(start, end == std::string::npos ? std::string::npos : end - start);
    if (one.find_first_not_of(" \n\t\r") != std::string::npos) out.push_back(one);
    if (end == std::string::npos) break;
    start = end + 1;
  }
  return out;
}

}  // namespace

int latest_schema_version() { return migrations().back().version; }

Status migrate(Database& database) {
  auto lease = database.acquire();
  if (!lease) return lease.status();
  Connection& db = **lease;
  if (auto r = db.execute("CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY, applied_at BIGINT NOT NULL)");
      !r) {
    return r.status();
  }
  return with_write_transaction(db, [&](Connection& tx) -> Status {
    if (tx.dialect() == Dialect::kPostgres) {
      // Several processes may start together; one migrates, the others wait and see it done.
      if (auto r = tx.query("SELECT pg_advisory_xact_lock(7305400)"); !r) return r.status();
    }
    auto applied = tx.query("SELECT version FROM schema_migrations");
    if (!applied) return applied.status();
    std::vector<int64_t> done;
    for (const Row& row : *applied) done.push_back(row.integer(0));
    for (const Migration& m : migrations()) {
      if (std::find(done.begin(), done.end(), m.version) != done.end()) continue;
      if (m.only && *m.only != tx.dialect()) {
        if (auto r = tx.execute("INSERT INTO schema_migrations (version, applied_at) VALUES (?, ?)",
                                {int64_t{m.version}, int64_t{std::time(nullptr)}});
            !r) {
          return r.status();
        }
        continue;
      }
      for (const std::string& statement : statements(fill(m.sql, tx.dialect()))) {
        if (auto r = tx.execute(statement); !r) {
          return Internal("migration " + std::to_string(m.version) + " failed: " + r.status().message());
        }
      }
      if (auto r = tx.execute("INSERT INTO schema_migrations (version, applied_at) VALUES (?, ?)",
                              {int64_t{m.version}, int64_t{std::time(nullptr)}});
          !r) {
        return r.status();
      }
    }
    return Status::Ok();
  });
}

}  // namespace deputy::store
