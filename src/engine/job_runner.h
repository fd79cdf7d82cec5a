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

#include "engine/executor.h"
#include "http/client.h"
#include "metrics/metrics.h"
#include "oauth/service.h"
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

class JobRunner {
 public:
  // How a job run ends for the delivery that ran it; called once, perhaps later, from a
  // worker thread (an app's answer arrived) or the calling one.
  using Done = std::function<void(Status)>;

  JobRunner(const std::vector<recipes::Recipe>& recipes, store::Jobs& jobs, oauth::ConnectionService& connections,
            store::Connections& audit, http::Client& http, slack::WebApi& slack, Outbox& outbox,
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

  // After a person connects an app: their parked jobs go back to the queue.
  void on_connected(const oauth::Connected& connected);
  // After a login for a parked job failed: the job is cancelled; its command if it was.
  std::optional<std::string> on_login_failed(const oauth::FailedLogin& login);
  // Called when resumed jobs were queued, to wake the workers.
  void set_wake(std::function<void()> wake) { wake_ = std::move(wake); }

 private:
  struct Run;
  struct Call;
  enum class Next { kContinue, kStop };
  using Then = std::function<void(Result<Next>)>;

  const recipes::Recipe* recipe_named(const std::string& command) const;
  // `ran` (when given) is set before this returns: whether this call claimed the job (false
  // when it is parked, finished, or another runner holds it).
  void drive(store::JobRecord job, int attempt, Done done, bool* ran = nullptr);
  // Runs the steps from run->job.step on, then the reply.
  void advance(std::shared_ptr<Run> run, Done done);
  Result<Next> approval_step(Run& run, const recipes::Step& step);
  void http_step(const std::shared_ptr<Run>& run, const recipes::Step& step, Then then);
  void send(std::shared_ptr<Call> call);
  void answered(const std::shared_ptr<Call>& call, http::ClientOutcome outcome);
  Status transient(Run& run, const Status& why);
  Status fail(Run& run, const std::string& why);
  Status succeed(Run& run);
  Status park_for_login(Run& run, const std::string& user_id, const std::string& reason);
  void tell_requester(Run& run, const slack::Message& message);
  std::string app_name(const std::string& app_id) const;
  void count(const std::string& outcome);

  const std::vector<recipes::Recipe>& recipes_;
  store::Jobs& jobs_;
  oauth::ConnectionService& connections_;
  store::Connections& audit_;
  http::Client& http_;
  slack::WebApi& slack_;
  Outbox& outbox_;
  metrics::Registry& metrics_;
  int max_attempts_;
  std::function<void()> wake_;
  std::shared_ptr<Executor> executor_;
};

}  // namespace deputy::engine
