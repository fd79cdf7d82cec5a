#include "cluster/membership.h"

#include <spdlog/spdlog.h>

#include "common/clock.h"
#include "common/threads.h"
#include "store/inbox.h"
#include "store/jobs.h"

namespace deputy::cluster {

using store::Connection;
using store::Dialect;

const char* database_now_ms(Dialect dialect) {
  // clock_timestamp(), not now(): now() is the transaction's start, and a heartbeat written in
  // a transaction that waited on a lock would be dated too early.
  return dialect == Dialect::kPostgres ? "(EXTRACT(EPOCH FROM clock_timestamp()) * 1000)::BIGINT"
                                       : "CAST((julianday('now') - 2440587.5) * 86400000 AS INTEGER)";
}

namespace {

std::string sql(const char* pattern, Dialect dialect) {
  std::string out = pattern;
  const std::string now = database_now_ms(dialect);
  for (size_t at = out.find("{now}"); at != std::string::npos; at = out.find("{now}", at + now.size()))
    out.replace(at, 5, now);
  return out;
}

// A renewal lease's holder names the run that took it (Connections::with_refresh_lock).
std::string renewal_holder_prefix(int64_t epoch) { return std::to_string(epoch) + ":"; }

// Inside the caller's transaction, everything the run `epoch` holds goes back: its deliveries
// and jobs to the queue, its renewal leases let go. Counted into `counts`.
Status give_back_all_held_by(Connection& tx, int64_t epoch, int64_t now_seconds, TakenOver& counts) {
  auto deliveries = store::Inbox::release_held_by_in(tx, epoch, now_seconds);
  if (!deliveries) return deliveries.status();
  auto jobs = store::Jobs::release_held_by_in(tx, epoch, now_seconds);
  if (!jobs) return jobs.status();
  counts.deliveries = *deliveries;
  counts.jobs = *jobs;
  if (tx.dialect() == Dialect::kPostgres) {
    // A renewal it was making: the token endpoint may have answered it, but the refresh token
    // it would have stored is the one the app has now; the next renewal finds out.
    auto renewals = tx.execute("DELETE FROM refresh_leases WHERE holder LIKE ?", {renewal_holder_prefix(epoch) + "%"});
    if (!renewals) return renewals.status();
    counts.renewals = *renewals;
  }
  return Status::Ok();
}

}  // namespace

Membership::Membership(store::Database& database, MembershipSettings settings)
    : database_(database), settings_(std::move(settings)), name_(settings_.host + ":" + std::to_string(settings_.pid)) {}

Result<std::unique_ptr<Membership>> Membership::join(store::Database& database, MembershipSettings settings) {
  std::unique_ptr<Membership> membership(new Membership(database, std::move(settings)));
  if (Status s = membership->join_new_run(); !s.ok()) return s;
  return membership;
}

Membership::~Membership() {
  {
    std::lock_guard lock(mutex_);
    stopping_ = true;
  }
  wake_.notify_all();
  if (thread_.joinable()) thread_.join();
}

Status Membership::join_new_run() {
  const auto sent = Clock::now();
  auto lease = database_.acquire();
  if (!lease) return lease.status();
  const Dialect dialect = (*lease)->dialect();
  auto rows = (*lease)->query(sql("INSERT INTO processes (host, pid, takeover_ms, started_at, heartbeat_at) VALUES (?, ?, ?, {now}, {now}) "
                                      "RETURNING epoch",
                                      dialect),
                              {settings_.host, settings_.pid, static_cast<int64_t>(settings_.takeover.count())});
  if (!rows) return rows.status();
  if (rows->empty()) return Internal("joining the processes table returned no epoch");
  epoch_.store(rows->front().integer(0));
  last_beat_sent_.store(sent.time_since_epoch().count());
  if (settings_.alone) {
    // Any other run on this database was this process before a crash.
    auto ended = (*lease)->execute(sql("UPDATE processes SET ended_at = {now} WHERE ended_at IS NULL AND epoch <> ?", dialect), {epoch_.load()});
    if (!ended) return ended.status();
  }
  spdlog::info("this process ({}) runs as epoch {}", name_, epoch_.load());
  return Status::Ok();
}

bool Membership::fresh() const {
  if (settings_.alone) return true;
  const auto since = Clock::now() - Clock::time_point(Clock::duration(last_beat_sent_.load()));
  return since < settings_.takeover - 2 * settings_.heartbeat;
}

Status Membership::beat() {
  const auto sent = Clock::now();
  {
    auto lease = database_.acquire();
    if (!lease) return lease.status();
    auto updated = (*lease)->execute(sql("UPDATE processes SET heartbeat_at = {now} WHERE epoch = ? AND ended_at IS NULL", (*lease)->dialect()),
                                     {epoch_.load()});
    if (!updated) return updated.status();
    if (*updated == 1) {
      last_beat_sent_.store(sent.time_since_epoch().count());
      return Status::Ok();
    }
  }
  // Another process ended this run after it went silent, and gave back what it held: the
  // claims this process still has in memory are no longer its own (every write on them is
  // refused), so it starts over as a new run.
  spdlog::warn("this process ({}) was silent too long and its run {} was taken over by another process; joining again",
               name_, epoch_.load());
  return join_new_run();
}

Result<std::vector<TakenOver>> Membership::take_over_silent() {
  std::vector<TakenOver> taken;
  auto lease = database_.acquire();
  if (!lease) return lease.status();
  Connection& db = **lease;
  const Dialect dialect = db.dialect();
  const int64_t now_seconds = SystemClock::instance().unix_seconds();
  Status s = store::with_write_transaction(db, [&](Connection& tx) -> Status {
    taken.clear();
    if (dialect == Dialect::kPostgres) {
      // A row the silent run still has locked (it was paused mid-transaction) would hold this
      // thread, and its heartbeats, until the server ends that session: try again next round.
      if (auto set = tx.execute("SET LOCAL lock_timeout = '1s'"); !set) return set.status();
    }
    // The UPDATE is the gate: of two processes sweeping at once, one ends each silent run. Each
    // run is judged by the takeover time it stops itself by (its own setting, in its row), so a
    // change of the setting rolled out one process at a time never takes over a run too early.
    auto ended = tx.query(sql("UPDATE processes SET ended_at = {now} WHERE ended_at IS NULL AND epoch <> ? AND heartbeat_at < {now} - takeover_ms "
                              "RETURNING epoch, host, pid, {now} - heartbeat_at",
                              dialect),
                          {epoch_.load()});
    if (!ended) return ended.status();
    for (const store::Row& row : *ended) {
      TakenOver t{row.integer(0), row.text(1), row.integer(2), row.integer(3)};
      if (Status given = give_back_all_held_by(tx, t.epoch, now_seconds, t); !given.ok()) return given;
      taken.push_back(std::move(t));
    }
    // Claims made under a run that had already ended: a worker of it checked its heartbeat,
    // was paused, and claimed once it came back, before it found out it had been taken over.
    auto late = tx.query("SELECT DISTINCT owner_epoch FROM inbox WHERE state = 'working' AND owner_epoch IN "
                         "(SELECT epoch FROM processes WHERE ended_at IS NOT NULL) "
                         "UNION SELECT DISTINCT owner_epoch FROM jobs WHERE state = 'running' AND owner_epoch IN "
                         "(SELECT epoch FROM processes WHERE ended_at IS NOT NULL)");
    if (!late) return late.status();
    for (const store::Row& row : *late) {
      TakenOver t{row.integer(0), "", 0, 0};
      if (Status given = give_back_all_held_by(tx, t.epoch, now_seconds, t); !given.ok()) return given;
      taken.push_back(std::move(t));
    }
    return Status::Ok();
  });
  if (!s.ok()) return s;
  for (const auto& t : taken) {
    if (t.host.empty()) {
      spdlog::warn("gave back {} deliveries and {} jobs claimed under run {} after it had ended", t.deliveries, t.jobs, t.epoch);
      continue;
    }
    spdlog::warn("took over run {} ({}:{}), silent for {} ms: {} deliveries and {} jobs back to the queue, {} renewals let go", t.epoch,
                 t.host, t.pid, t.silent_ms, t.deliveries, t.jobs, t.renewals);
  }
  return taken;
}

Result<bool> Membership::hold_lease(const std::string& task, std::chrono::milliseconds ttl) {
  auto lease = database_.acquire();
  if (!lease) return lease.status();
  const Dialect dialect = (*lease)->dialect();
  auto rows = (*lease)->query(
      sql("INSERT INTO leases (name, holder, until_ms) VALUES (?, ?, {now} + ?) "
          "ON CONFLICT (name) DO UPDATE SET holder = excluded.holder, until_ms = excluded.until_ms "
          "WHERE leases.until_ms < {now} OR leases.holder = excluded.holder RETURNING holder",
          dialect),
      {task, epoch_.load(), static_cast<int64_t>(ttl.count())});
  if (!rows) return rows.status();
  return !rows->empty();
}

Status Membership::forget_ended_before(std::chrono::hours age) {
  auto lease = database_.acquire();
  if (!lease) return lease.status();
  auto r = (*lease)->execute(sql("DELETE FROM processes WHERE ended_at IS NOT NULL AND ended_at < {now} - ?", (*lease)->dialect()),
                             {static_cast<int64_t>(std::chrono::duration_cast<std::chrono::milliseconds>(age).count())});
  return r ? Status::Ok() : r.status();
}

void Membership::start() {
  if (settings_.alone) return;
  thread_ = std::thread([this] {
    name_this_thread("deputy-members");
    loop();
  });
}

void Membership::loop() {
  std::unique_lock lock(mutex_);
  while (!stopping_) {
    lock.unlock();
    // At a fixed rate: the time a round takes (a slow sweep) does not stretch the gap
    // between heartbeats.
    const auto round = Clock::now();
    if (Status s = beat(); !s.ok()) spdlog::warn("heartbeat failed: {}", s.message());
    // Only a run that holds its own heartbeat judges others: one that was itself cut off
    // would otherwise take over the healthy.
    if (fresh()) {
      if (auto taken = take_over_silent(); !taken) spdlog::warn("looking for silent processes failed: {}", taken.status().message());
    }
    lock.lock();
    wake_.wait_until(lock, round + settings_.heartbeat, [&] { return stopping_; });
  }
}

Result<HandedBack> Membership::leave() {
  {
    std::lock_guard lock(mutex_);
    if (left_) return HandedBack{};
    left_ = stopping_ = true;
  }
  wake_.notify_all();
  if (thread_.joinable()) thread_.join();
  HandedBack back;
  auto lease = database_.acquire();
  if (!lease) return lease.status();
  const Dialect dialect = (*lease)->dialect();
  const int64_t epoch = epoch_.load();
  Status s = store::with_write_transaction(**lease, [&](Connection& tx) -> Status {
    auto ended = tx.execute(sql("UPDATE processes SET ended_at = {now} WHERE epoch = ? AND ended_at IS NULL", dialect), {epoch});
    if (!ended) return ended.status();
    // Taken over already: what it held is someone else's now.
    if (*ended == 0) return Status::Ok();
    TakenOver own{epoch};
    if (Status given = give_back_all_held_by(tx, epoch, SystemClock::instance().unix_seconds(), own); !given.ok()) return given;
    back = HandedBack{own.deliveries, own.jobs};
    auto leases = tx.execute("DELETE FROM leases WHERE holder = ?", {epoch});
    return leases ? Status::Ok() : leases.status();
  });
  if (!s.ok()) return s;
  return back;
}

}  // namespace deputy::cluster
