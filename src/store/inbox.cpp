#include "store/inbox.h"

#include <algorithm>
#include <limits>

namespace deputy::store {

Inbox::Inbox(Database& database, const Clock& clock, std::chrono::seconds dedupe_window, const Ownership& owner)
    : database_(database), clock_(clock), dedupe_window_(dedupe_window), owner_(owner) {}

Result<std::vector<Admission>> Inbox::admit(const std::vector<Delivery>& deliveries) {
  InboxBatch batch;
  batch.deliveries = deliveries;
  auto written = write(batch);
  if (!written) return written.status();
  return std::move(written->admissions);
}

namespace {

constexpr size_t kRowsPerInsert = 16;

// The INSERT of `rows` queued deliveries (1 to kRowsPerInsert); its text is made once, so the
// connection's statement cache finds it again.
const std::string& queued_insert(size_t rows) {
  static const std::vector<std::string> kStatements = [] {
    std::vector<std::string> statements(kRowsPerInsert + 1);
    for (size_t n = 1; n <= kRowsPerInsert; ++n) {
      std::string& sql = statements[n];
      sql = "INSERT INTO inbox (team_id, kind, payload, state, attempts, received_at, due_at) VALUES ";
      for (size_t i = 0; i < n; ++i) sql += i ? ", (?, ?, ?, 'queued', 0, ?, ?)" : "(?, ?, ?, 'queued', 0, ?, ?)";
    }
    return statements;
  }();
  return kStatements[rows];
}

}  // namespace

Result<InboxBatchResult> Inbox::write(const InboxBatch& batch) {
  auto lease = database_.acquire();
  if (!lease) return lease.status();
  InboxBatchResult result;
  result.admissions.reserve(batch.deliveries.size());
  const int64_t now = clock_.unix_seconds();
  const int64_t expires = now + dedupe_window_.count();
  const int64_t epoch = owner_.epoch();
  Status s = with_write_transaction(**lease, [&](Connection& tx) -> Status {
    result.backlog.clear();
    result.admissions.clear();
    result.claimed.clear();
    // Before the new deliveries, so the claimed are the older ones and none of the new is among them.
    if (Status s = finish_and_claim_in(tx, batch.completed, batch.claim_queued, batch.lease, result.backlog); !s.ok()) return s;
    std::vector<size_t> queued;  // new deliveries that go in as queued, in order of arrival
    for (size_t i = 0; i < batch.deliveries.size(); ++i) {
      const Delivery& d = batch.deliveries[i];
      if (!d.dedupe_key.empty()) {
        Result<bool> claimed = claim_dedupe_key(tx, d.dedupe_key, now, expires);
        if (!claimed) return claimed.status();
        if (!*claimed) {
          result.admissions.push_back(Admission::kDuplicate);
          continue;
        }
      }
      result.admissions.push_back(Admission::kAccepted);
      if (result.claimed.size() < batch.claim_first) {
        // due_at of a working delivery is when its lease runs out (see claim).
        auto inserted = tx.query(
            "INSERT INTO inbox (team_id, kind, payload, state, attempts, received_at, due_at, owner_epoch) "
            "VALUES (?, ?, ?, 'working', 1, ?, ?, ?) RETURNING id",
            {d.team_id, d.kind, d.payload, now, now + batch.lease.count(), epoch});
        if (!inserted) return inserted.status();
        if (inserted->empty()) return Internal("inbox insert returned no id");
        result.claimed.emplace_back(i, Held{inserted->front().integer(0), epoch});
      } else {
        queued.push_back(i);
      }
    }
    // Several rows per statement: each statement run has its own fixed cost (and, with
    // AUTOINCREMENT, its own update of the sequence), which one row at a time paid per delivery.
    for (size_t from = 0; from < queued.size(); from += kRowsPerInsert) {
      const size_t rows = std::min(kRowsPerInsert, queued.size() - from);
      Params params;
      params.reserve(rows * 5);
      for (size_t k = from; k < from + rows; ++k) {
        const Delivery& d = batch.deliveries[queued[k]];
        params.insert(params.end(), {d.team_id, d.kind, d.payload, now, now});
      }
      auto inserted = tx.execute(queued_insert(rows), params);
      if (!inserted) return inserted.status();
    }
    return Status::Ok();
  });
  if (!s.ok()) return s;
  return result;
}

Result<bool> Inbox::claim_dedupe_key(Connection& tx, const std::string& key, int64_t now, int64_t expires) {
  const Params both = {key, expires};
  auto inserted = tx.execute("INSERT INTO slack_dedupe (dedupe_key, expires_at) VALUES (?, ?) ON CONFLICT (dedupe_key) DO NOTHING",
                             both);
  if (!inserted) return inserted.status();
  if (*inserted == 1) return true;
  // Seen before: a duplicate, unless its window has passed. An expired key is stored anew
  // rather than given a new expiry in place, so the table stays in the order keys expire.
  auto expired = tx.execute("DELETE FROM slack_dedupe WHERE dedupe_key = ? AND expires_at < ?", {key, now});
  if (!expired) return expired.status();
  if (*expired == 0) return false;
  auto again = tx.execute("INSERT INTO slack_dedupe (dedupe_key, expires_at) VALUES (?, ?)", both);
  if (!again) return again.status();
  return true;
}

Result<std::optional<ClaimedDelivery>> Inbox::claim(std::chrono::seconds lease_for) {
  auto claimed = claim_up_to(lease_for, 1);
  if (!claimed) return claimed.status();
  if (claimed->empty()) return std::optional<ClaimedDelivery>{};
  return std::optional<ClaimedDelivery>{std::move(claimed->front())};
}

Result<std::vector<ClaimedDelivery>> Inbox::claim_up_to(std::chrono::seconds lease_for, size_t limit) {
  std::vector<ClaimedDelivery> claimed;
  if (limit == 0) return claimed;
  auto lease = database_.acquire();
  if (!lease) return lease.status();
  const int64_t now = clock_.unix_seconds();
  Status s = with_write_transaction(**lease, [&](Connection& tx) -> Status {
    claimed.clear();
    return claim_in(tx, now, lease_for, limit, claimed);
  });
  if (!s.ok()) return s;
  return claimed;
}

Status Inbox::claim_in(Connection& tx, int64_t now, std::chrono::seconds lease_for, size_t limit,
                       std::vector<ClaimedDelivery>& claimed) {
  // due_at is when a queued delivery may run, and when a working one's lease runs out.
  // Two lookups on the (state, due_at, id) index instead of one OR: the first due queued
  // deliveries, else those whose worker's process died.
  const bool postgres = tx.dialect() == Dialect::kPostgres;
  const char* next_queued = postgres
                                ? "SELECT id FROM inbox WHERE state = 'queued' AND due_at <= ? ORDER BY due_at, id LIMIT ? "
                                  "FOR UPDATE SKIP LOCKED"
                                : "SELECT id FROM inbox WHERE state = 'queued' AND due_at <= ? ORDER BY due_at, id LIMIT ?";
  const char* next_abandoned =
      postgres ? "SELECT id FROM inbox WHERE state = 'working' AND due_at < ? ORDER BY due_at, id LIMIT ? "
                 "FOR UPDATE SKIP LOCKED"
               : "SELECT id FROM inbox WHERE state = 'working' AND due_at < ? ORDER BY due_at, id LIMIT ?";
  const int64_t count = static_cast<int64_t>(limit);
  auto found = tx.query(next_queued, {now, count});
  if (!found) return found.status();
  if (found->empty()) {
    found = tx.query(next_abandoned, {now, count});
    if (!found) return found.status();
  }
  const int64_t epoch = owner_.epoch();
  for (const Row& id : *found) {
    auto rows = tx.query(
        "UPDATE inbox SET state = 'working', attempts = attempts + 1, due_at = ?, owner_epoch = ? WHERE id = ? "
        "RETURNING id, attempts, team_id, kind, payload",
        {now + lease_for.count(), epoch, id.integer(0)});
    if (!rows) return rows.status();
    if (rows->empty()) continue;
    const Row& row = rows->front();
    claimed.push_back(ClaimedDelivery{row.integer(0), static_cast<int>(row.integer(1)),
                                      Delivery{row.text(2), row.text(3), row.text(4), {}}, epoch});
  }
  return Status::Ok();
}

Status Inbox::finish_and_claim_in(Connection& tx, const std::vector<Held>& finished, size_t limit, std::chrono::seconds lease,
                                  std::vector<ClaimedDelivery>& claimed) {
  for (const Held& held : finished) {
    auto deleted = tx.execute("DELETE FROM inbox WHERE id = ? AND owner_epoch = ?", {held.id, held.epoch});
    if (!deleted) return deleted.status();
  }
  if (limit == 0) return Status::Ok();
  return claim_in(tx, clock_.unix_seconds(), lease, limit, claimed);
}

Status Inbox::complete(Held held) {
  auto lease = database_.acquire();
  if (!lease) return lease.status();
  auto r = (*lease)->execute("DELETE FROM inbox WHERE id = ? AND owner_epoch = ?", {held.id, held.epoch});
  return r ? Status::Ok() : r.status();
}

Status Inbox::enqueue(const std::string& team_id, const std::string& kind, const std::string& payload, std::chrono::seconds delay) {
  auto lease = database_.acquire();
  if (!lease) return lease.status();
  const int64_t now = clock_.unix_seconds();
  return enqueue_in(**lease, team_id, kind, payload, now, now + delay.count());
}

Status Inbox::enqueue_in(Connection& tx, const std::string& team_id, const std::string& kind, const std::string& payload,
                         int64_t now, int64_t due_at) {
  auto r = tx.execute(
      "INSERT INTO inbox (team_id, kind, payload, state, attempts, received_at, due_at) VALUES (?, ?, ?, 'queued', 0, ?, ?)",
      {team_id, kind, payload, now, due_at});
  return r ? Status::Ok() : r.status();
}

Status Inbox::release(Held held, std::chrono::seconds delay) {
  auto lease = database_.acquire();
  if (!lease) return lease.status();
  auto r = (*lease)->execute("UPDATE inbox SET state = 'queued', due_at = ?, owner_epoch = NULL WHERE id = ? AND owner_epoch = ?",
                             {clock_.unix_seconds() + delay.count(), held.id, held.epoch});
  return r ? Status::Ok() : r.status();
}

Status Inbox::defer(Held held, std::chrono::milliseconds delay) {
  auto lease = database_.acquire();
  if (!lease) return lease.status();
  // due_at is in whole seconds and claims compare it with the second now is in: rounding the
  // moment up (not the delay) keeps the wait from ever being shorter than asked.
  const int64_t due_at = (clock_.unix_millis() + std::max<int64_t>(delay.count(), 0) + 999) / 1000;
  auto r = (*lease)->execute(
      "UPDATE inbox SET state = 'queued', due_at = ?, attempts = CASE WHEN attempts > 0 THEN attempts - 1 ELSE 0 END, "
      "owner_epoch = NULL WHERE id = ? AND state = 'working' AND owner_epoch = ?",
      {due_at, held.id, held.epoch});
  return r ? Status::Ok() : r.status();
}

Status Inbox::release_unstarted(Held held) {
  auto lease = database_.acquire();
  if (!lease) return lease.status();
  auto r = (*lease)->execute(
      "UPDATE inbox SET state = 'queued', due_at = received_at, attempts = attempts - 1, owner_epoch = NULL "
      "WHERE id = ? AND state = 'working' AND attempts > 0 AND owner_epoch = ?",
      {held.id, held.epoch});
  return r ? Status::Ok() : r.status();
}

Status Inbox::fail(Held held, const std::string& error) {
  auto lease = database_.acquire();
  if (!lease) return lease.status();
  auto r = (*lease)->execute("UPDATE inbox SET state = 'failed', error = ?, owner_epoch = NULL WHERE id = ? AND owner_epoch = ?",
                             {error, held.id, held.epoch});
  return r ? Status::Ok() : r.status();
}

Status Inbox::requeue_all_working() {
  auto lease = database_.acquire();
  if (!lease) return lease.status();
  auto r = (*lease)->execute("UPDATE inbox SET state = 'queued', due_at = 0, owner_epoch = NULL WHERE state = 'working'");
  return r ? Status::Ok() : r.status();
}

Result<int64_t> Inbox::release_held_by_in(Connection& tx, int64_t epoch, int64_t now) {
  // The try it was on stays counted: it may have got as far as acting.
  return tx.execute("UPDATE inbox SET state = 'queued', due_at = ?, owner_epoch = NULL WHERE state = 'working' AND owner_epoch = ?",
                    {now, epoch});
}

Status Inbox::purge_expired_dedupe_keys() {
  auto lease = database_.acquire();
  if (!lease) return lease.status();
  Connection& db = **lease;
  const int64_t now = clock_.unix_seconds();
  if (db.dialect() == Dialect::kPostgres) {
    auto r = db.execute("DELETE FROM slack_dedupe WHERE expires_at < ?", {now});
    return r ? Status::Ok() : r.status();
  }
  // Every key lives one window from when it was stored, and rowids follow storing order, so
  // the expired keys are the rows before the first live one: found by walking from the
  // oldest, with no index by expiry to keep up on every admission. Rows out of that order
  // (stored before the clock was set back, under a longer window, or re-armed in place
  // before migration 4) can keep expired rows behind them for up to one window; those go
  // in a later purge. A live key is never deleted.
  auto live = db.query("SELECT rowid FROM slack_dedupe WHERE expires_at >= ? ORDER BY rowid LIMIT 1", {now});
  if (!live) return live.status();
  const int64_t first_live = live->empty() ? std::numeric_limits<int64_t>::max() : live->front().integer(0);
  // A slice per transaction, so a large purge never holds the writers' turn for long.
  constexpr int64_t kSlice = 5000;
  while (true) {
    auto deleted = db.execute(
        "DELETE FROM slack_dedupe WHERE rowid IN "
        "(SELECT rowid FROM slack_dedupe WHERE rowid < ? AND expires_at < ? ORDER BY rowid LIMIT ?)",
        {first_live, now, kSlice});
    if (!deleted) return deleted.status();
    if (*deleted < kSlice) return Status::Ok();
  }
}

Result<std::map<std::string, int64_t>> Inbox::count_by_state() {
  auto lease = database_.acquire();
  if (!lease) return lease.status();
  auto rows = (*lease)->query("SELECT state, COUNT(*) FROM inbox GROUP BY state");
  if (!rows) return rows.status();
  std::map<std::string, int64_t> counts;
  for (const Row& row : *rows) counts[row.text(0)] = row.integer(1);
  return counts;
}

}  // namespace deputy::store
