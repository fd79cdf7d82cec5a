// Runs recipes as durable jobs: each HTTP step with the right connection (the asker's own,
// the approver's after an approval, or the shared one), parking for a login or a decision
// and resuming by itself. Every step's outcome is recorded before the next begins.
#pragma once

#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json_fwd.hpp>

#include "engine/bulkhead.h"
#include "engine/executor.h"
#include "http/client.h"
#include "metrics/metrics.h"
#include "oauth/app_registry.h"
#include "oauth/login_links.h"
#include "oauth/login_listener.h"
#include "oauth/token_source.h"
#include "engine/outbox.h"
#include "recipes/recipe.h"
#include "slack/requests.h"
#include "slack/web_api.h"
#include "store/connections.h"
#include "store/jobs.h"

namespace deputy::engine {

namespace job_actions {
inline constexpr const char* kApprove = "job.approve";
inline constexpr const char* kReject = "job.reject";
}  // namespace job_actions

class JobRunner final : public oauth::LoginListener {
 public:
  // How a job run ends for the delivery that ran it; called once, perhaps later, from a
  // worker thread (an app's answer arrived) or the calling one.
  using Done = std::function<void(Status)>;

  JobRunner(const std::vector<recipes::Recipe>& recipes, store::Jobs& jobs, oauth::AppRegistry& apps, oauth::TokenSource& tokens,
            oauth::LoginLinks& links, store::Connections& audit, http::Client& http, slack::WebApi& slack, Outbox& outbox,
            metrics::Registry& metrics, int max_attempts = 3);

  // A recipe command: stores the job once per Slack delivery, then runs it. `attempt` counts
  // deliveries of the same work; transient trouble is an Unavailable status until the last one.
  // While an app call is in flight the job holds no thread: it resumes on the answer.
  void start(const recipes::Recipe& recipe, const std::map<std::string, std::string>& params,
             const slack::CommandRequest& request, int64_t delivery_id, int attempt, Done done);
  // Drives a job that was queued again (after a login or a decision, or after a crash).
  void run(const std::string& job_id, int attempt, Done done);
  // An Approve or Reject click: only the named approver's counts, once.
  void decide(const slack::ActionRequest& click, bool approved, int attempt, Done done);
  // Blocking forms (tests, tools): wait for the job to stop or park.
  Status run(const std::string& job_id, int attempt);
  Status decide(const slack::ActionRequest& click, bool approved, int attempt);

  // Where a job continues when its app call is answered: the workers (they run the
  // database work and templates). Without one, it continues on the client's thread.
  void set_executor(std::shared_ptr<Executor> executor) { executor_ = std::move(executor); }
  // App calls in flight per app and per person (set before the first job runs). A job
  // whose app or person is full goes back to the queue for a while.
  void set_limits(BulkheadLimits limits) { bulkhead_ = std::make_unique<Bulkhead>(limits, clock_); }
  // How long after its command a job may still be waiting out rate limits and full
  // bulkheads; past it, the person is told and the job stops.
  void set_max_wait(std::chrono::seconds wait) { max_wait_ = wait; }
  // The longest Retry-After an app's answer is taken at.
  static constexpr std::chrono::seconds kMaxRetryAfter{300};

  // After a person connects an app: their parked jobs go back to the queue.
  void on_connected(const oauth::Connected& connected) override;
  // After a login for a parked job failed: the job is cancelled; its command if it was.
  std::optional<std::string> on_login_failed(const oauth::FailedLogin& login) override;
  // Called when resumed jobs were queued, to wake the workers.
  void set_wake(std::function<void()> wake) { wake_ = std::move(wake); }

 private:
  struct Run;
  using RunPtr = std::shared_ptr<Run>;
  struct Call;
  enum class Next { kContinue, kStop };
  using Then = std::function<void(Result<Next>)>;
  // A step's continuation as the end of the job: Ok stops it, anything else is its status.
  static Done stopped(Then then);

  const recipes::Recipe* recipe_named(const std::string& command) const;
  // `ran` (when given) is set before this returns: whether this call claimed the job (false
  // when it is parked, finished, or another runner holds it).
  void drive(store::JobRecord job, int attempt, Done done, bool* ran = nullptr);
  // The same for a job this runner has just claimed: its run is read from the record.
  void drive_claimed(store::JobRecord claimed, int attempt, Done done);
  // What templates read of a job before its first step.
  static nlohmann::json scope_of(const recipes::Recipe& recipe, const nlohmann::json& params, const std::string& requester);
  // Runs a job whose run is ready: the requester's profile if the recipe reads it, then the steps.
  void begin(RunPtr run, Done done);
  // Runs the steps from run->job.step on, then the reply.
  void advance(std::shared_ptr<Run> run, Done done);
  void approval_step(const RunPtr& run, const recipes::Step& step, Then then);
  void http_step(const std::shared_ptr<Run>& run, const recipes::Step& step, Then then);
  // The step's call has its place among the app's and the person's calls: its token next.
  void with_slot(const RunPtr& run, const recipes::Step& step, Bulkhead::Slot place, Then then);
  // The rest of an HTTP step once the token is at hand.
  void with_grant(const std::shared_ptr<Run>& run, const recipes::Step& step, Bulkhead::Slot slot, Result<oauth::AccessGrant> grant,
                  Then then);
  void renewed_after_rejection(const std::shared_ptr<Call>& call, Result<oauth::AccessGrant> renewed);
  using Granted = oauth::TokenSource::Granted;
  Granted on_workers(Granted next);
  // A write's answer comes from the database's writer thread: the job goes on on the workers
  // (at once when it was written on this thread).
  store::Jobs::Written after_write(store::Jobs::Written next);
  store::Jobs::Claimed after_claim(store::Jobs::Claimed next);
  // The step did not happen at the app: it may run again (written in order before what follows).
  void give_back_step(const Run& run);
  void send(std::shared_ptr<Call> call);
  void answered(const std::shared_ptr<Call>& call, http::ClientOutcome outcome);
  // The ends of a run: each calls `done` once, perhaps after Slack has answered.
  // What happens to a job this process may not act on now: left to whoever took it over, or
  // put back in the queue while this process's heartbeat is late.
  void not_held(const RunPtr& run, Done done);
  void transient(const RunPtr& run, const Status& why, Done done);
  // Back to the queue for `wait`, as no try (a rate limit, a full bulkhead), unless that
  // would keep the person waiting past max_wait.
  void wait_and_retry(const RunPtr& run, std::chrono::milliseconds wait, const std::string& why, const std::string& too_long, Done done);
  void fail(const RunPtr& run, const std::string& why, Done done);
  void succeed(const RunPtr& run, Done done);
  // Tells the requester, then records the job's end (`counted` is its outcome in metrics).
  void finish(const RunPtr& run, const slack::Message& message, const char* state, std::string outcome, const char* counted, Done done);
  Status park_for_login(Run& run, const std::string& user_id, const std::string& reason);
  void tell_requester(Run& run, const slack::Message& message);
  std::string app_name(const std::string& app_id) const;
  void count(const std::string& outcome);

  const std::vector<recipes::Recipe>& recipes_;
  store::Jobs& jobs_;
  oauth::AppRegistry& apps_;
  oauth::TokenSource& tokens_;
  oauth::LoginLinks& links_;
  store::Connections& audit_;
  http::Client& http_;
  slack::WebApi& slack_;
  Outbox& outbox_;
  metrics::Registry& metrics_;
  int max_attempts_;
  std::function<void()> wake_;
  std::shared_ptr<Executor> executor_;
  const Clock& clock_ = SystemClock::instance();
  std::unique_ptr<Bulkhead> bulkhead_ = std::make_unique<Bulkhead>(BulkheadLimits{}, clock_);
  std::chrono::seconds max_wait_{900};
};

}  // namespace deputy::engine
