#include "store/jobs.h"
#include "common/delivery_kind.h"

#include <memory>

#include "store/inbox.h"

namespace deputy::store {
namespace {

constexpr const char* kJobColumns =
    "id, origin, team_id, requester, recipe, params, reply_to, state, step, context, waiting_user, waiting_app, outcome, "
    "created_at, updated_at";

JobRecord job_from_row(const Row& row) {
  JobRecord j;
  j.id = row.text(0);
  j.origin = row.text(1);
  j.team_id = row.text(2);
  j.requester = row.text(3);
  j.recipe = row.text(4);
  j.params = row.text(5);
  j.reply_to = row.text(6);
  j.state = row.text(7);
  j.step = static_cast<int>(row.integer(8));
  j.context = row.text(9);
  j.waiting_user = row.text(10);
  j.waiting_app = row.text(11);
  j.outcome = row.text(12);
  j.created_at = row.integer(13);
  j.updated_at = row.integer(14);
  return j;
}

Result<std::optional<JobRecord>> select_job(Connection& c, const std::string& where, const Params& params) {
  auto rows = c.query(std::string("SELECT ") + kJobColumns + " FROM jobs WHERE " + where, params);
  if (!rows) return rows.status();
  if (rows->empty()) return std::optional<JobRecord>{};
  return std::optional<JobRecord>{job_from_row(rows->front())};
}

Status changed_one(const Result<int64_t>& r, const std::string& what) {
  if (!r) return r.status();
  if (*r != 1) return FailedPrecondition(what);
  return Status::Ok();
}

// Stores the job unless one exists for its origin (a delivery handled again).
Status insert_once(Connection& tx, const JobRecord& job, int64_t now) {
  auto inserted = tx.execute(
      "INSERT INTO jobs (id, origin, team_id, requester, recipe, params, reply_to, state, step, context, created_at, updated_at) "
      "VALUES (?, ?, ?, ?, ?, ?, ?, ?, 0, ?, ?, ?) ON CONFLICT (origin) DO NOTHING",
      {job.id, job.origin, job.team_id, job.requester, job.recipe, job.params, job.reply_to, job.state, job.context, now, now});
  return inserted ? Status::Ok() : inserted.status();
}

}  // namespace

Jobs::Jobs(Database& database, const Clock& clock, std::chrono::seconds lease, const Ownership& owner)
    : database_(database), clock_(clock), lease_(lease), owner_(owner), direct_(database) {}

Result<JobRecord> Jobs::create(const JobRecord& job) {
  auto lease = database_.acquire();
  if (!lease) return lease.status();
  const int64_t now = clock_.unix_seconds();
  std::optional<JobRecord> stored;
  Status s = with_write_transaction(**lease, [&](Connection& tx) -> Status {
    if (Status stored = insert_once(tx, job, now); !stored.ok()) return stored;
    auto found = select_job(tx, "origin = ?", {job.origin});
    if (!found) return found.status();
    stored = std::move(*found);
    return Status::Ok();
  });
  if (!s.ok()) return s;
  if (!stored) return Internal("the job just stored cannot be read back");
  return std::move(*stored);
}

Result<std::optional<JobRecord>> Jobs::get(const std::string& id) {
  auto lease = database_.acquire();
  if (!lease) return lease.status();
  return select_job(**lease, "id = ?", {id});
}

namespace {

Result<std::optional<JobRecord>> claim_in(Connection& tx, const char* where, const std::string& key, int64_t now,
                                          std::chrono::seconds lease, int64_t epoch) {
  auto rows = tx.query(std::string("UPDATE jobs SET state = 'running', lease_until = ?, updated_at = ?, owner_epoch = ? WHERE ") + where +
                           " AND (state = 'queued' OR (state = 'running' AND lease_until < ?)) RETURNING " + kJobColumns,
                       {now + lease.count(), now, epoch, key, now});
  if (!rows) return rows.status();
  if (rows->empty()) return std::optional<JobRecord>{};
  JobRecord claimed = job_from_row(rows->front());
  claimed.epoch = epoch;
  return std::optional<JobRecord>{std::move(claimed)};
}

}  // namespace

Result<std::optional<JobRecord>> Jobs::claim(const std::string& id) {
  auto lease = database_.acquire();
  if (!lease) return lease.status();
  const int64_t now = clock_.unix_seconds();
  std::optional<JobRecord> claimed;
  const int64_t epoch = owner_.epoch();
  Status s = with_write_transaction(**lease, [&](Connection& tx) -> Status {
    auto taken = claim_in(tx, "id = ?", id, now, lease_, epoch);
    if (!taken) return taken.status();
    claimed = std::move(*taken);
    return Status::Ok();
  });
  if (!s.ok()) return s;
  return claimed;
}

namespace {

// Each write below is made once as work for a transaction, then run either at once (the
// blocking form) or by the Writes (the asynchronous one).
// A new job goes in already running under this runner's lease: one row written once. Only a
// delivery handled again finds its job there, and claims it as any other runner would.
Writes::Work create_and_claim_work(JobRecord job, int64_t now, std::chrono::seconds lease, int64_t epoch,
                                   std::shared_ptr<std::optional<JobRecord>> claimed) {
  return [job = std::move(job), now, lease, epoch, claimed](Connection& tx) -> Status {
    auto inserted = tx.execute(
        "INSERT INTO jobs (id, origin, team_id, requester, recipe, params, reply_to, state, step, context, created_at, updated_at, "
        "lease_until, owner_epoch) VALUES (?, ?, ?, ?, ?, ?, ?, 'running', 0, ?, ?, ?, ?, ?) ON CONFLICT (origin) DO NOTHING",
        {job.id, job.origin, job.team_id, job.requester, job.recipe, job.params, job.reply_to, job.context, now, now, now + lease.count(),
         epoch});
    if (!inserted) return inserted.status();
    if (*inserted == 1) {
      JobRecord running = job;
      running.state = job_state::kRunning;
      running.step = 0;
      running.waiting_user.clear();
      running.waiting_app.clear();
      running.outcome.clear();
      running.created_at = running.updated_at = now;
      running.epoch = epoch;
      *claimed = std::move(running);
      return Status::Ok();
    }
    auto taken = claim_in(tx, "origin = ?", job.origin, now, lease, epoch);
    if (!taken) return taken.status();
    *claimed = std::move(*taken);
    return Status::Ok();
  };
}

}  // namespace

Result<std::optional<JobRecord>> Jobs::create_and_claim(const JobRecord& job) {
  auto claimed = std::make_shared<std::optional<JobRecord>>();
  if (Status s = direct_.write_now(create_and_claim_work(job, clock_.unix_seconds(), lease_, owner_.epoch(), claimed), Durability::kNormal);
      !s.ok())
    return s;
  return std::move(*claimed);
}

void Jobs::create_and_claim(const JobRecord& job, Claimed done) {
  auto claimed = std::make_shared<std::optional<JobRecord>>();
  writes_->write_for(job.id, create_and_claim_work(job, clock_.unix_seconds(), lease_, owner_.epoch(), claimed), Durability::kNormal,
                 [claimed, done = std::move(done)](Status s) {
                   if (!s.ok()) return done(std::move(s));
                   done(std::move(*claimed));
                 });
}

Result<std::optional<StepRecord>> Jobs::step(const std::string& job_id, int step) {
  auto lease = database_.acquire();
  if (!lease) return lease.status();
  auto rows = (*lease)->query("SELECT step, state, result, actor, acting_as FROM job_steps WHERE job_id = ? AND step = ?",
                              {job_id, int64_t{step}});
  if (!rows) return rows.status();
  if (rows->empty()) return std::optional<StepRecord>{};
  const Row& r = rows->front();
  return std::optional<StepRecord>{StepRecord{static_cast<int>(r.integer(0)), r.text(1), r.text(2), r.text(3), r.text(4)}};
}

namespace {

constexpr const char* kNoLongerHeld = "the job is no longer this process's to run (it was taken over)";

// A holder's change made no row: its claim no longer stands.
Status still_held(const Result<int64_t>& r) {
  if (!r) return r.status();
  return *r == 1 ? Status::Ok() : Aborted(kNoLongerHeld);
}

// Whether the claim on `job_id` under `epoch` still stands, inside the transaction.
Status still_held(Connection& tx, const std::string& job_id, int64_t epoch) {
  // Locked until the transaction ends (PostgreSQL; SQLite's writer holds the whole database):
  // a takeover committed between this check and the write after it would otherwise go unseen.
  auto rows = tx.query(tx.dialect() == Dialect::kPostgres ? "SELECT 1 FROM jobs WHERE id = ? AND owner_epoch = ? FOR UPDATE"
                                                          : "SELECT 1 FROM jobs WHERE id = ? AND owner_epoch = ?",
                       {job_id, epoch});
  if (!rows) return rows.status();
  return rows->empty() ? Aborted(kNoLongerHeld) : Status::Ok();
}

Writes::Work begin_step_work(std::string job_id, int64_t epoch, int step, std::string actor, std::string acting_as, int64_t now) {
  return [job_id = std::move(job_id), epoch, step, actor = std::move(actor), acting_as = std::move(acting_as), now](Connection& tx) -> Status {
    if (Status held = still_held(tx, job_id, epoch); !held.ok()) return held;
    // A repeated idempotent step overwrites its earlier start.
    auto r = tx.execute(
        "INSERT INTO job_steps (job_id, step, state, actor, acting_as, started_at) VALUES (?, ?, 'started', ?, ?, ?) "
        "ON CONFLICT (job_id, step) DO UPDATE SET state = 'started', actor = excluded.actor, acting_as = excluded.acting_as, "
        "started_at = excluded.started_at WHERE job_steps.state = 'started'",
        {job_id, int64_t{step}, actor, acting_as, now});
    return changed_one(r, "step " + std::to_string(step) + " of job " + job_id + " has already finished");
  };
}

Writes::Work finish_step_work(std::string job_id, int64_t epoch, int step, std::string result, std::string context,
                              std::optional<AuditEvent> audit, int64_t now) {
  return [job_id = std::move(job_id), epoch, step, result = std::move(result), context = std::move(context), audit = std::move(audit),
          now](Connection& tx) -> Status {
    if (Status s = still_held(tx.execute("UPDATE jobs SET step = ?, context = ?, updated_at = ? WHERE id = ? AND owner_epoch = ?",
                                          {int64_t{step + 1}, context, now, job_id, epoch}));
        !s.ok())
      return s;
    auto r = tx.execute("UPDATE job_steps SET state = 'done', result = ?, finished_at = ? WHERE job_id = ? AND step = ?",
                        {result, now, job_id, int64_t{step}});
    if (Status s = changed_one(r, "step was not begun"); !s.ok()) return s;
    return audit ? append_audit(tx, *audit, now) : Status::Ok();
  };
}

Writes::Work abandon_step_work(std::string job_id, int64_t epoch, int step) {
  return [job_id = std::move(job_id), epoch, step](Connection& tx) -> Status {
    if (Status held = still_held(tx, job_id, epoch); !held.ok()) return held;
    auto r = tx.execute("DELETE FROM job_steps WHERE job_id = ? AND step = ? AND state = 'started'", {job_id, int64_t{step}});
    return r ? Status::Ok() : r.status();
  };
}

Writes::Work finish_work(std::string job_id, int64_t epoch, std::string state, std::string outcome, int64_t now) {
  return [job_id = std::move(job_id), epoch, state = std::move(state), outcome = std::move(outcome), now](Connection& tx) -> Status {
    return still_held(tx.execute("UPDATE jobs SET state = ?, outcome = ?, waiting_user = '', waiting_app = '', updated_at = ?, "
                                  "lease_until = 0, owner_epoch = NULL WHERE id = ? AND owner_epoch = ?",
                                  {state, outcome, now, job_id, epoch}));
  };
}

Writes::Work requeue_work(std::string job_id, int64_t epoch, int64_t now) {
  return [job_id = std::move(job_id), epoch, now](Connection& tx) -> Status {
    auto r = tx.execute("UPDATE jobs SET state = 'queued', lease_until = 0, owner_epoch = NULL, updated_at = ? "
                        "WHERE id = ? AND state = 'running' AND owner_epoch = ?",
                        {now, job_id, epoch});
    return r ? Status::Ok() : r.status();
  };
}

}  // namespace

// A crash after the app call must not forget that it may have happened: the start of a step
// and its end are durable.
Status Jobs::begin_step(const JobRecord& job, int step, const std::string& actor, const std::string& acting_as) {
  return direct_.write_now(begin_step_work(job.id, job.epoch, step, actor, acting_as, clock_.unix_seconds()), Durability::kDurable);
}

void Jobs::begin_step(const JobRecord& job, int step, const std::string& actor, const std::string& acting_as, Written written) {
  writes_->write_for(job.id, begin_step_work(job.id, job.epoch, step, actor, acting_as, clock_.unix_seconds()), Durability::kDurable,
                     std::move(written));
}

Status Jobs::finish_step(const JobRecord& job, int step, const std::string& result, const std::string& context,
                         const std::optional<AuditEvent>& audit) {
  return direct_.write_now(finish_step_work(job.id, job.epoch, step, result, context, audit, clock_.unix_seconds()), Durability::kDurable);
}

void Jobs::finish_step(const JobRecord& job, int step, const std::string& result, const std::string& context,
                       std::optional<AuditEvent> audit, Written written) {
  writes_->write_for(job.id, finish_step_work(job.id, job.epoch, step, result, context, std::move(audit), clock_.unix_seconds()),
                     Durability::kDurable, std::move(written));
}

Status Jobs::abandon_step(const JobRecord& job, int step) {
  return direct_.write_now(abandon_step_work(job.id, job.epoch, step), Durability::kNormal);
}

void Jobs::abandon_step(const JobRecord& job, int step, Written written) {
  writes_->write_for(job.id, abandon_step_work(job.id, job.epoch, step), Durability::kNormal, std::move(written));
}

void Jobs::audit(const std::string& job_id, AuditEvent event, Written written) {
  writes_->write_for(job_id, [event = std::move(event), now = clock_.unix_seconds()](Connection& tx) { return append_audit(tx, event, now); },
                 Durability::kNormal, std::move(written));
}

Status Jobs::advance(const JobRecord& job, int next_step, const std::string& context) {
  auto lease = database_.acquire();
  if (!lease) return lease.status();
  return still_held((*lease)->execute("UPDATE jobs SET step = ?, context = ?, updated_at = ? WHERE id = ? AND owner_epoch = ?",
                                       {int64_t{next_step}, context, clock_.unix_seconds(), job.id, job.epoch}));
}

Status Jobs::park(const JobRecord& job, const std::string& state, const std::string& waiting_user, const std::string& waiting_app,
                  const std::string& context) {
  auto lease = database_.acquire();
  if (!lease) return lease.status();
  return still_held((*lease)->execute("UPDATE jobs SET state = ?, waiting_user = ?, waiting_app = ?, context = ?, updated_at = ?, "
                                       "lease_until = 0, owner_epoch = NULL WHERE id = ? AND owner_epoch = ?",
                                       {state, waiting_user, waiting_app, context, clock_.unix_seconds(), job.id, job.epoch}));
}

Status Jobs::finish(const JobRecord& job, const std::string& state, const std::string& outcome) {
  return direct_.write_now(finish_work(job.id, job.epoch, state, outcome, clock_.unix_seconds()), Durability::kNormal);
}

void Jobs::finish(const JobRecord& job, const std::string& state, const std::string& outcome, Written written) {
  writes_->write_for(job.id, finish_work(job.id, job.epoch, state, outcome, clock_.unix_seconds()), Durability::kNormal,
                     std::move(written));
}

Result<std::optional<std::string>> Jobs::cancel_waiting(const std::string& job_id, const std::string& team_id,
                                                        const std::string& user_id, const std::string& app,
                                                        int64_t login_started_at, const std::string& why) {
  auto lease = database_.acquire();
  if (!lease) return lease.status();
  auto rows = (*lease)->query(
      "UPDATE jobs SET state = 'cancelled', outcome = ?, waiting_user = '', waiting_app = '', updated_at = ?, lease_until = 0 "
      "WHERE id = ? AND team_id = ? AND requester = ? AND state = 'awaiting_auth' AND waiting_user = ? AND waiting_app = ? "
      "AND updated_at <= ? RETURNING recipe",
      {why, clock_.unix_seconds(), job_id, team_id, user_id, user_id, app, login_started_at});
  if (!rows) return rows.status();
  if (rows->empty()) return std::optional<std::string>{};
  return std::optional<std::string>{rows->front().text(0)};
}

Status Jobs::requeue(const JobRecord& job) {
  return direct_.write_now(requeue_work(job.id, job.epoch, clock_.unix_seconds()), Durability::kNormal);
}

void Jobs::requeue(const JobRecord& job, Written written) {
  writes_->write_for(job.id, requeue_work(job.id, job.epoch, clock_.unix_seconds()), Durability::kNormal, std::move(written));
}

Result<std::vector<std::string>> Jobs::resume_after_login(const std::string& team_id, const std::string& user_id,
                                                          const std::string& app) {
  auto lease = database_.acquire();
  if (!lease) return lease.status();
  const int64_t now = clock_.unix_seconds();
  std::vector<std::string> resumed;
  Status s = with_write_transaction(**lease, [&](Connection& tx) -> Status {
    resumed.clear();
    auto rows = tx.query(
        "UPDATE jobs SET state = 'queued', waiting_user = '', waiting_app = '', updated_at = ? "
        "WHERE team_id = ? AND waiting_user = ? AND waiting_app = ? AND state = 'awaiting_auth' RETURNING id",
        {now, team_id, user_id, app});
    if (!rows) return rows.status();
    for (const Row& row : *rows) {
      resumed.push_back(row.text(0));
      if (Status queued = Inbox::enqueue_in(tx, team_id, kind_name(DeliveryKind::kJob), row.text(0), now, now); !queued.ok()) return queued;
    }
    return Status::Ok();
  });
  if (!s.ok()) return s;
  return resumed;
}

Result<Decision> Jobs::decide(const std::string& job_id, int step, const std::string& team_id, const std::string& user_id,
                              bool approved) {
  auto lease = database_.acquire();
  if (!lease) return lease.status();
  const int64_t now = clock_.unix_seconds();
  Decision decision = Decision::kNotWaiting;
  Status s = with_write_transaction(**lease, [&](Connection& tx) -> Status {
    auto job = select_job(tx, "id = ?", {job_id});
    if (!job) return job.status();
    if (!job->has_value()) return Status::Ok();
    const JobRecord& j = **job;
    if (j.team_id != team_id) {
      decision = Decision::kNotTheApprover;
      return Status::Ok();
    }
    auto earlier = tx.query("SELECT state FROM job_steps WHERE job_id = ? AND step = ?", {job_id, int64_t{step}});
    if (!earlier) return earlier.status();
    if (!earlier->empty()) {
      decision = Decision::kAlreadyDecided;
      return Status::Ok();
    }
    if (j.state != job_state::kAwaitingApproval || j.step != step) return Status::Ok();
    if (j.waiting_user != user_id) {
      decision = Decision::kNotTheApprover;
      return Status::Ok();
    }
    auto recorded = tx.execute(
        "INSERT INTO job_steps (job_id, step, state, actor, acting_as, started_at, finished_at) VALUES (?, ?, ?, ?, ?, ?, ?)",
        {job_id, int64_t{step}, std::string(approved ? step_state::kApproved : step_state::kRejected), user_id, user_id, now, now});
    if (!recorded) return recorded.status();
    auto queued = tx.execute(
        "UPDATE jobs SET state = 'queued', waiting_user = '', waiting_app = '', updated_at = ? WHERE id = ?", {now, job_id});
    if (!queued) return queued.status();
    decision = Decision::kRecorded;
    return Status::Ok();
  });
  if (!s.ok()) return s;
  return decision;
}

Result<int64_t> Jobs::release_held_by_in(Connection& tx, int64_t epoch, int64_t now) {
  auto released = tx.query("UPDATE jobs SET state = 'queued', lease_until = 0, owner_epoch = NULL, updated_at = ? "
                           "WHERE state = 'running' AND owner_epoch = ? RETURNING id, team_id",
                           {now, epoch});
  if (!released) return released.status();
  // Each with a delivery of its own that drives it: the one it came with may be another run's
  // by now, or gone. A job driven twice runs once (the second finds it claimed or finished).
  for (const Row& row : *released) {
    if (Status s = Inbox::enqueue_in(tx, row.text(1), kind_name(DeliveryKind::kJob), row.text(0), now, now); !s.ok()) return s;
  }
  return static_cast<int64_t>(released->size());
}

Status Jobs::release_all_running() {
  auto lease = database_.acquire();
  if (!lease) return lease.status();
  auto r = (*lease)->execute("UPDATE jobs SET lease_until = 0, owner_epoch = NULL WHERE state = 'running'");
  return r ? Status::Ok() : r.status();
}

Result<std::map<std::string, int64_t>> Jobs::count_by_state() {
  auto lease = database_.acquire();
  if (!lease) return lease.status();
  auto rows = (*lease)->query("SELECT state, COUNT(*) FROM jobs GROUP BY state");
  if (!rows) return rows.status();
  std::map<std::string, int64_t> out;
  for (const Row& row : *rows) out[row.text(0)] = row.integer(1);
  return out;
}

Result<std::vector<JobRecord>> Jobs::recent(const std::string& team_id, size_t limit) {
  auto lease = database_.acquire();
  if (!lease) return lease.status();
  auto rows = (*lease)->query(std::string("SELECT ") + kJobColumns + " FROM jobs WHERE team_id = ? ORDER BY created_at DESC, id LIMIT ?",
                              {team_id, static_cast<int64_t>(limit)});
  if (!rows) return rows.status();
  std::vector<JobRecord> out;
  for (const Row& row : *rows) out.push_back(job_from_row(row));
  return out;
}

}  // namespace deputy::store
