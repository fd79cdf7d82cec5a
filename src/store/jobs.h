// Durable jobs: one run of a recipe, with each step's outcome recorded so a job cut off by a
// crash finishes or fails visibly after restart and never repeats a step it may have done.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "common/clock.h"
#include "store/connections.h"
#include "store/database.h"
#include "store/ownership.h"
#include "store/writes.h"

namespace deputy::store {

namespace job_state {
inline constexpr const char* kQueued = "queued";
inline constexpr const char* kAwaitingAuth = "awaiting_auth";
inline constexpr const char* kRunning = "running";
inline constexpr const char* kAwaitingApproval = "awaiting_approval";
inline constexpr const char* kSucceeded = "succeeded";
inline constexpr const char* kFailed = "failed";
inline constexpr const char* kCancelled = "cancelled";
}  // namespace job_state

struct JobRecord {
  std::string id;
  std::string origin;  // what created it (the Slack delivery); a job is created once per origin
  std::string team_id;
  std::string requester;
  std::string recipe;    // the recipe's command words
  std::string params;    // JSON object of parsed parameters
  std::string reply_to;  // JSON: where the requester's answers go
  std::string state = job_state::kQueued;
  int step = 0;                  // the next step to run
  std::string context = "{}";    // JSON: what earlier steps kept, who acts
  std::string waiting_user;      // awaiting_auth: who must log in; awaiting_approval: the approver
  std::string waiting_app;
  std::string outcome;           // the final message, for people and the audit
  int64_t created_at = 0;
  int64_t updated_at = 0;
  // The epoch of the claim this process holds it under (a claimed job only): the holder's
  // changes below are made only while that claim stands.
  int64_t epoch = 0;
};

namespace step_state {
inline constexpr const char* kStarted = "started";  // the call may have reached the app
inline constexpr const char* kDone = "done";
inline constexpr const char* kApproved = "approved";
inline constexpr const char* kRejected = "rejected";
}  // namespace step_state

struct StepRecord {
  int step = 0;
  std::string state;
  std::string result = "{}";
  std::string actor;
  std::string acting_as;
};

enum class Decision { kRecorded, kNotTheApprover, kAlreadyDecided, kNotWaiting };

class Jobs {
 public:
  using Written = Writes::Written;
  using Claimed = std::function<void(Result<std::optional<JobRecord>>)>;

  // Claims are stamped with `owner`'s epoch at the moment they are made.
  Jobs(Database& database, const Clock& clock, std::chrono::seconds lease = std::chrono::seconds(300), const Ownership& owner = unowned());

  // Where the asynchronous forms below write (the single writer on SQLite); until set, each
  // writes in a transaction of its own on the calling thread.
  void set_writes(Writes& writes) { writes_ = &writes; }
  // Whose claims this store makes.
  const Ownership& owner() const { return owner_; }
  Writes& writes() { return *writes_; }

  // Stores a new job unless one exists for the same origin; returns the stored one.
  Result<JobRecord> create(const JobRecord& job);
  Result<std::optional<JobRecord>> get(const std::string& id);
  // Takes the job for running: a queued one, or a running one whose runner's lease ran out.
  Result<std::optional<JobRecord>> claim(const std::string& id);
  // create() and claim() in one transaction: the job stored once per origin, and taken for
  // running unless another runner holds it (or it is parked or finished).
  Result<std::optional<JobRecord>> create_and_claim(const JobRecord& job);
  void create_and_claim(const JobRecord& job, Claimed claimed);

  Result<std::optional<StepRecord>> step(const std::string& job_id, int step);

  // What the holder of a claimed job does with it. Each fails with Aborted, and
  // changes nothing, once the claim no longer stands (the job was taken over).
  //
  // Records that a step is about to call the app. Durable, so a crash after the call
  // cannot forget that it may have happened.
  Status begin_step(const JobRecord& job, int step, const std::string& actor, const std::string& acting_as);
  void begin_step(const JobRecord& job, int step, const std::string& actor, const std::string& acting_as, Written written);
  // The step's result and the job's new context, in one transaction; the job moves to step + 1.
  // `audit`, when given, is appended to the audit log in the same transaction.
  Status finish_step(const JobRecord& job, int step, const std::string& result, const std::string& context,
                     const std::optional<AuditEvent>& audit = std::nullopt);
  void finish_step(const JobRecord& job, int step, const std::string& result, const std::string& context,
                   std::optional<AuditEvent> audit, Written written);
  // The app refused the call (it did not happen): the step may run again.
  Status abandon_step(const JobRecord& job, int step);
  void abandon_step(const JobRecord& job, int step, Written written);
  // Moves past a step that needs no app call (a decided approval).
  Status advance(const JobRecord& job, int next_step, const std::string& context);
  Status park(const JobRecord& job, const std::string& state, const std::string& waiting_user, const std::string& waiting_app,
              const std::string& context);
  Status finish(const JobRecord& job, const std::string& state, const std::string& outcome);
  void finish(const JobRecord& job, const std::string& state, const std::string& outcome, Written written);
  // A transient failure: back to queued, to be driven again by a retried delivery.
  Status requeue(const JobRecord& job);
  void requeue(const JobRecord& job, Written written);

  // An audit entry about a job, written in order with that job's writes around it. It is a
  // record of what happened, so it is kept whoever holds the job now.
  void audit(const std::string& job_id, AuditEvent event, Written written);

  // Jobs parked for this person's login to `app` go back to the queue, each with an inbox
  // delivery that drives it, in the same transaction. Returns their ids.
  Result<std::vector<std::string>> resume_after_login(const std::string& team_id, const std::string& user_id,
                                                      const std::string& app);
  // The person's own job, parked for their login to `app` since before `login_started_at`,
  // is cancelled because that login failed: its recipe command if it was, nothing if it no
  // longer waits for that login (resumed, or parked again for a newer link since). A job
  // parked for someone else's login (an approver's) is never cancelled by it.
  Result<std::optional<std::string>> cancel_waiting(const std::string& job_id, const std::string& team_id, const std::string& user_id,
                                                    const std::string& app, int64_t login_started_at, const std::string& why);
  // Records an approver's decision on the step the job waits at; only the approver, once.
  // A recorded decision puts the job back in the queue.
  // A click from another workspace than the job's is not the approver's, whoever it names.
  Result<Decision> decide(const std::string& job_id, int step, const std::string& team_id, const std::string& user_id,
                          bool approved);

  // After a crash of the only process (SQLite), running jobs are free to be claimed again.
  Status release_all_running();
  // Inside the caller's transaction: every job the run `epoch` held goes back to the queue, each
  // with a job delivery that drives it. Returns how many.
  static Result<int64_t> release_held_by_in(Connection& tx, int64_t epoch, int64_t now);
  Result<std::map<std::string, int64_t>> count_by_state();
  Result<std::vector<JobRecord>> recent(const std::string& team_id, size_t limit);

 private:
  Database& database_;
  const Clock& clock_;
  std::chrono::seconds lease_;
  const Ownership& owner_;
  DirectWrites direct_;
  Writes* writes_ = &direct_;
};

}  // namespace deputy::store
