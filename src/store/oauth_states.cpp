#include "store/oauth_states.h"

namespace deputy::store {

namespace {

PendingLogin pending_login_from_row(const Row& row) {
  return PendingLogin{row.text(0), row.text(1), row.text(2), row.text(3),  row.text(4),       row.text(5),
                      row.text(6), Blob{row.blob(7)}, Blob{row.blob(8)}, row.text(9), row.integer(10), row.integer(11)};
}

}  // namespace

OAuthStates::OAuthStates(Database& database, const Clock& clock) : database_(database), clock_(clock) {}

Status OAuthStates::create(const PendingLogin& p) {
  auto lease = database_.acquire();
  if (!lease) return lease.status();
  auto r = (*lease)->execute(
      "INSERT INTO oauth_states (state_hash, team_id, user_id, app, mode, job_id, key_id, nonce, sealed, created_at, expires_at) "
      "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
      {p.state_hash, p.team_id, p.user_id, p.app, p.mode, p.job_id, p.key_id, p.nonce, p.sealed, p.created_at, p.expires_at});
  return r ? Status::Ok() : r.status();
}

Result<std::pair<StateOutcome, std::optional<PendingLogin>>> OAuthStates::consume(const std::string& state_hash) {
  auto lease = database_.acquire();
  if (!lease) return lease.status();
  const int64_t now = clock_.unix_seconds();
  std::pair<StateOutcome, std::optional<PendingLogin>> result{StateOutcome::kUnknown, std::nullopt};
  Status s = with_write_transaction(**lease, [&](Connection& tx) -> Status {
    // The UPDATE is the single-use gate: of two concurrent callbacks only one changes the row.
    auto claimed = tx.query(
        "UPDATE oauth_states SET used_at = ? WHERE state_hash = ? AND used_at = 0 "
        "RETURNING state_hash, team_id, user_id, app, mode, job_id, key_id, nonce, sealed, browser_hash, created_at, expires_at",
        {now, state_hash});
    if (!claimed) return claimed.status();
    if (claimed->empty()) {
      auto known = tx.query("SELECT used_at FROM oauth_states WHERE state_hash = ?", {state_hash});
      if (!known) return known.status();
      result.first = known->empty() ? StateOutcome::kUnknown : StateOutcome::kAlreadyUsed;
      return Status::Ok();
    }
    const Row& row = claimed->front();
    PendingLogin p = pending_login_from_row(row);
    result.first = p.expires_at < now ? StateOutcome::kExpired : StateOutcome::kConsumed;
    result.second = std::move(p);
    return Status::Ok();
  });
  if (!s.ok()) return s;
  return result;
}

Result<std::pair<StateOutcome, std::optional<PendingLogin>>> OAuthStates::start(const std::string& state_hash,
                                                                                  const std::string& browser_hash) {
  auto lease = database_.acquire();
  if (!lease) return lease.status();
  const int64_t now = clock_.unix_seconds();
  std::pair<StateOutcome, std::optional<PendingLogin>> result{StateOutcome::kUnknown, std::nullopt};
  Status s = with_write_transaction(**lease, [&](Connection& tx) -> Status {
    auto started = tx.query(
        "UPDATE oauth_states SET started_at = ?, browser_hash = ? WHERE state_hash = ? AND started_at = 0 AND used_at = 0 "
        "AND expires_at >= ? "
        "RETURNING state_hash, team_id, user_id, app, mode, job_id, key_id, nonce, sealed, browser_hash, created_at, expires_at",
        {now, browser_hash, state_hash, now});
    if (!started) return started.status();
    if (!started->empty()) {
      result = {StateOutcome::kConsumed, pending_login_from_row(started->front())};
      return Status::Ok();
    }
    auto known = tx.query("SELECT expires_at FROM oauth_states WHERE state_hash = ?", {state_hash});
    if (!known) return known.status();
    if (known->empty()) result.first = StateOutcome::kUnknown;
    else result.first = known->front().integer(0) < now ? StateOutcome::kExpired : StateOutcome::kAlreadyUsed;
    return Status::Ok();
  });
  if (!s.ok()) return s;
  return result;
}

Result<int64_t> OAuthStates::cancel_pending(const std::string& team_id, const std::string& user_id) {
  auto lease = database_.acquire();
  if (!lease) return lease.status();
  const int64_t now = clock_.unix_seconds();
  return (*lease)->execute("UPDATE oauth_states SET used_at = ? WHERE team_id = ? AND user_id = ? AND used_at = 0 AND expires_at >= ?",
                           {now, team_id, user_id, now});
}

Status OAuthStates::purge_expired() {
  auto lease = database_.acquire();
  if (!lease) return lease.status();
  // Used and expired states are kept a day so a replay is recognised as a replay, then dropped.
  auto r = (*lease)->execute("DELETE FROM oauth_states WHERE expires_at < ?", {clock_.unix_seconds() - 86400});
  return r ? Status::Ok() : r.status();
}

}  // namespace deputy::store
