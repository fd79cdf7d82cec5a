#include "engine/job_runner.h"

#include <cstdio>

#include <future>
#include <thread>

#include <spdlog/spdlog.h>

#include <nlohmann/json.hpp>

#include "common/encoding.h"
#include "recipes/template.h"
#include "slack/blocks.h"

namespace deputy::engine {

using nlohmann::json;
namespace js = store::job_state;

struct JobRunner::Run {
  store::JobRecord job;
  const recipes::Recipe* recipe = nullptr;
  slack::Conversation reply_to;
  json context;  // {"steps": {...}, "acting_user": "U…", "account": "…", "shared": bool}
  json scope;    // what templates read
  int attempt = 1;
};

// One app call of an HTTP step, kept while it is in flight.
struct JobRunner::Call {
  std::shared_ptr<Run> run;
  const recipes::Step* step = nullptr;
  http::ClientRequest request;  // without the Authorization header
  oauth::AccessGrant grant;
  bool personal = false;
  std::string acting_user;
  bool renewed = false;  // the grant was renewed after a 401 already
  Bulkhead::Slot slot;   // its place among the app's and the person's calls in flight
  Then then;
};

namespace {

// The time first (milliseconds, 12 hex digits), then 80 random bits: jobs started together
// sort together, so the jobs and job_steps indexes take each transaction's new rows on the
// same few pages instead of one page per job scattered over the whole index.
std::string new_job_id(int64_t unix_millis) {
  char time[13];
  std::snprintf(time, sizeof time, "%012llx", static_cast<unsigned long long>(unix_millis) & 0xffffffffffffULL);
  return "J" + std::string(time) + to_hex(SecureRandom::instance().bytes(10));
}

json typed_params(const recipes::Recipe& recipe, const json& params) {
  json out = json::object();
  for (const auto& p : recipe.parameters) {
    auto it = params.find(p.name);
    if (it == params.end() || !it->is_string()) continue;
    const std::string& raw = it->get_ref<const std::string&>();
    // A number stays the decimal text typed: the body gets it with every digit
    // (recipes::render_json), a reply shows it as typed.
    out[p.name] = raw;
  }
  return out;
}

// A short, human message from an app's error body (Salesforce: [{"message":…}], ServiceNow:
// {"error":{"message":…}}, OAuth-style error_description, or plain text).
std::string app_error_message(const http::ClientResponse& response) {
  auto body = json::parse(response.body, nullptr, false);
  for (const char* pointer : {"/0/message", "/error/message", "/message", "/error_description", "/error"}) {
    if (body.is_discarded()) break;
    auto ptr = json::json_pointer(pointer);
    if (body.contains(ptr) && body.at(ptr).is_string()) return slack::truncate_utf8(body.at(ptr).get<std::string>(), 300);
  }
  return "HTTP " + std::to_string(response.status);
}

// How long an app asks a turned-away call to wait: a 429, a 503 that says when to come back,
// or Salesforce's daily API limit (403 REQUEST_LIMIT_EXCEEDED, which carries no Retry-After).
std::optional<std::chrono::milliseconds> rate_limit_wait(const http::ClientResponse& response) {
  const auto asked = response.retry_after(std::chrono::system_clock::now(), JobRunner::kMaxRetryAfter);
  if (response.status == 429) return asked.value_or(std::chrono::seconds(5));
  if (response.status == 503 && asked) return *asked;
  if (response.status == 403 && response.body.find("REQUEST_LIMIT_EXCEEDED") != std::string::npos)
    return asked.value_or(std::chrono::seconds(60));
  return std::nullopt;
}

// Continues with the answer where it arrived if that is the asking thread (the answer was at
// hand), else on the executor's threads.
template <typename Answer, typename Next>
std::function<void(Answer)> continue_on(const std::shared_ptr<Executor>& executor, Next next) {
  return [next = std::move(next), caller = std::this_thread::get_id(), executor](Answer answer) mutable {
    if (std::this_thread::get_id() == caller || !executor) return next(std::move(answer));
    executor->post([next = std::move(next), answer = std::move(answer)]() mutable { next(std::move(answer)); });
  };
}

// What is written on the side (an audit entry, a step given back) is logged when it fails;
// the writes after it are committed in order, so the job need not wait for it.
void log_failure(const std::string& what, const Status& s) {
  if (!s.ok()) spdlog::warn("could not record {}: {}", what, s.message());
}

slack::Message text_message(const std::string& text) {
  slack::Message m;
  m.text = text;
  m.blocks.section(text);
  return m;
}


}  // namespace

JobRunner::JobRunner(const std::vector<recipes::Recipe>& recipes, store::Jobs& jobs, oauth::AppRegistry& apps,
                     oauth::TokenSource& tokens, oauth::LoginLinks& links, store::Connections& audit, http::Client& http, slack::WebApi& slack, Outbox& outbox,
                     metrics::Registry& metrics, int max_attempts)
    : recipes_(recipes),
      jobs_(jobs),
      apps_(apps),
      tokens_(tokens),
      links_(links),
      audit_(audit),
      http_(http),
      slack_(slack),
      outbox_(outbox),
      metrics_(metrics),
      max_attempts_(max_attempts) {
  metrics_.describe("deputy_jobs_finished_total", "counter", "Jobs that ended, by outcome.");
  metrics_.describe("deputy_jobs_deferred_total", "counter",
                    "App calls put back in the queue for a while: the app or the person had no free place, or the app was limiting requests.");
}

const recipes::Recipe* JobRunner::recipe_named(const std::string& command) const {
  for (const auto& r : recipes_)
    if (r.command == command) return &r;
  return nullptr;
}

std::string JobRunner::app_name(const std::string& app_id) const {
  return apps_.display_name(app_id);
}

void JobRunner::count(const std::string& outcome) { metrics_.increment("deputy_jobs_finished_total", {{"outcome", outcome}}); }

void JobRunner::start(const recipes::Recipe& recipe, const std::map<std::string, std::string>& params,
                      const slack::CommandRequest& request, int64_t delivery_id, int attempt, Done done) {
  // The run is made from the command itself; the record is what is stored of it.
  auto made = std::make_shared<Run>();
  made->recipe = &recipe;
  made->reply_to = request.where;
  made->attempt = attempt;
  made->context = {{"steps", json::object()}, {"acting_user", request.where.user_id}};
  json given(params);
  made->scope = scope_of(recipe, given, request.where.user_id);
  store::JobRecord job;
  job.id = new_job_id(clock_.unix_millis());
  job.origin = "delivery:" + std::to_string(delivery_id);
  job.team_id = request.where.team_id;
  job.requester = request.where.user_id;
  job.recipe = recipe.command;
  job.params = given.dump();
  job.reply_to = slack::to_json(request.where);
  job.context = made->context.dump();
  // Stored and taken in one write: a retried delivery finds the job it already made.
  jobs_.create_and_claim(job, after_claim([this, made, id = job.id, attempt, done = std::move(done)](Result<std::optional<store::JobRecord>> claimed) {
    if (!claimed) return done(claimed.status());
    if (!claimed->has_value()) return done(Status::Ok());  // parked, finished, or another runner has it
    spdlog::debug("job {} ({}) for {} stored", (*claimed)->id, (*claimed)->recipe, (*claimed)->requester);
    // A retried delivery whose job was stored before runs that job, as read back.
    if ((*claimed)->id != id) return drive_claimed(std::move(**claimed), attempt, done);
    made->job = std::move(**claimed);
    begin(std::move(made), done);
  }));
}

void JobRunner::run(const std::string& job_id, int attempt, Done done) {
  auto found = jobs_.get(job_id);
  if (!found) return done(found.status());
  if (!found->has_value()) {
    spdlog::warn("job {} to run does not exist", job_id.substr(0, 64));
    return done(Status::Ok());
  }
  drive(std::move(**found), attempt, std::move(done));
}

namespace {
// Waits for an asynchronous run to end.
template <typename Start>
Status wait_for(Start start) {
  auto ended = std::make_shared<std::promise<Status>>();
  auto result = ended->get_future();
  start([ended](Status s) { ended->set_value(std::move(s)); });
  return result.get();
}
}  // namespace

Status JobRunner::run(const std::string& job_id, int attempt) {
  return wait_for([&](Done done) { run(job_id, attempt, std::move(done)); });
}

Status JobRunner::decide(const slack::ActionRequest& click, bool approved, int attempt) {
  return wait_for([&](Done done) { decide(click, approved, attempt, std::move(done)); });
}

void JobRunner::drive(store::JobRecord stored, int attempt, Done done, bool* ran) {
  auto claimed = jobs_.claim(stored.id);
  if (!claimed) return done(claimed.status());
  if (!claimed->has_value()) return done(Status::Ok());  // parked, finished, or another runner has it
  if (ran) *ran = true;
  drive_claimed(std::move(**claimed), attempt, std::move(done));
}

json JobRunner::scope_of(const recipes::Recipe& recipe, const json& params, const std::string& requester) {
  return {{"params", typed_params(recipe, params.is_object() ? params : json::object())},
          {"user", {{"id", requester}}},
          {"requester", {{"id", requester}}}};
}

void JobRunner::drive_claimed(store::JobRecord claimed, int attempt, Done done) {
  auto shared_run = std::make_shared<Run>();
  Run& run = *shared_run;
  run.job = std::move(claimed);
  run.attempt = attempt;
  auto where = slack::conversation_from_json(run.job.reply_to);
  if (!where) return fail(shared_run, "its reply address is unreadable", std::move(done));
  run.reply_to = *where;
  run.context = json::parse(run.job.context, nullptr, false);
  if (!run.context.is_object()) run.context = json{{"steps", json::object()}, {"acting_user", run.job.requester}};
  run.recipe = recipe_named(run.job.recipe);
  if (!run.recipe) return fail(shared_run, "the recipe *" + run.job.recipe + "* is no longer loaded", std::move(done));
  run.scope = scope_of(*run.recipe, json::parse(run.job.params, nullptr, false), run.job.requester);
  if (run.context.contains("approver")) run.scope["approver"] = {{"id", run.context["approver"]}};
  begin(std::move(shared_run), std::move(done));
}

void JobRunner::begin(RunPtr shared_run, Done done) {
  Run& run = *shared_run;
  if (recipes::mentions_profile(*run.recipe)) {
    // The job waits for Slack's answer without a worker, and goes on on the workers.
    return slack_.start_users_info(
        run.job.requester, continue_on<Result<slack::UserProfile>>(executor_, [this, shared_run, done = std::move(done)](
                                                                                  Result<slack::UserProfile> profile) mutable {
          if (!profile) return transient(shared_run, profile.status(), std::move(done));
          shared_run->scope["user"] = {{"id", profile->id}, {"name", profile->name}, {"real_name", profile->real_name}, {"email", profile->email}};
          advance(std::move(shared_run), std::move(done));
        }));
  }
  advance(std::move(shared_run), std::move(done));
}

void JobRunner::advance(std::shared_ptr<Run> run, Done done) {
  for (size_t i = static_cast<size_t>(run->job.step); i < run->recipe->steps.size(); ++i) {
    run->job.step = static_cast<int>(i);
    run->scope["steps"] = run->context["steps"];
    const recipes::Step& step = run->recipe->steps[i];
    // The job yields here while the app (or Slack) answers, and goes on from the next step.
    Then next_step = [this, run, done = std::move(done)](Result<Next> next) {
      if (!next) return done(next.status());
      if (*next == Next::kStop) return done(Status::Ok());
      run->job.step += 1;
      advance(run, done);
    };
    if (step.approval) return approval_step(run, step, std::move(next_step));
    return http_step(run, step, std::move(next_step));
  }
  run->scope["steps"] = run->context["steps"];
  succeed(run, std::move(done));
}

JobRunner::Done JobRunner::stopped(Then then) {
  return [then = std::move(then)](Status s) {
    if (s.ok()) return then(Next::kStop);
    then(std::move(s));
  };
}

void JobRunner::approval_step(const RunPtr& shared_run, const recipes::Step& step, Then then) {
  Run& run = *shared_run;
  auto recorded = jobs_.step(run.job.id, run.job.step);
  if (!recorded) return then(recorded.status());
  if (recorded->has_value()) {
    const std::string& approver = (*recorded)->actor;
    if ((*recorded)->state == store::step_state::kRejected) {
      std::string text = "<@" + approver + "> rejected your request *" + slack::escape_mrkdwn(run.recipe->command) + "*.";
      return finish(shared_run, text_message(text), js::kCancelled, "rejected by " + approver, "rejected", stopped(std::move(then)));
    }
    run.context["steps"][step.id] = {{"decision", "approved"}, {"by", approver}};
    // From here the recipe acts as the approver, when it acts as people at all.
    if (run.recipe->verify_user_access_at_runtime) run.context["acting_user"] = approver;
    run.context["approver"] = approver;
    run.scope["approver"] = {{"id", approver}};
    if (Status s = jobs_.advance(run.job, run.job.step + 1, run.context.dump()); !s.ok()) return then(s);
    return then(Next::kContinue);
  }

  std::string approver = recipes::render(step.approval->approver, run.scope);
  if (approver.rfind("<@", 0) == 0) approver = approver.substr(2, approver.find_first_of("|>") - 2);
  if (approver.empty()) return fail(shared_run, "the approval step names no approver", stopped(std::move(then)));
  // Values as typed (Tom & Jerry) are escaped into mrkdwn; the recipe's own text is mrkdwn already.
  std::string ask = recipes::render(step.approval->text, run.scope, slack::escape_mrkdwn);
  std::string value = run.job.id + ":" + std::to_string(run.job.step);

  slack::Message request;
  request.text = "Approval requested by <@" + run.job.requester + ">: " + ask;
  request.blocks.section("*<@" + run.job.requester + "> asks for your approval*\n" + ask);
  std::string details;
  for (const auto& [name, v] : run.scope["params"].items())
    details += "*" + name + "*: " + slack::escape_mrkdwn(v.is_string() ? v.get<std::string>() : v.dump()) + "\n";
  if (!details.empty()) request.blocks.section(details);
  request.blocks.context({"Recipe: " + run.recipe->command + (run.recipe->verify_user_access_at_runtime
                                                                   ? " · approving acts in " + app_name(run.recipe->app) + " as you"
                                                                   : "")});
  request.blocks.actions(
      {slack::Button{"Approve", job_actions::kApprove, value, "", "primary", std::nullopt},
       slack::Button{"Reject", job_actions::kReject, value, "", "danger",
                     slack::Confirm{"Reject this request?", "<@" + run.job.requester + "> will be told you rejected it.", "Reject", "Cancel"}}},
      "job.decision");
  // Posting to a user id lands in the app's direct messages with that person. The job is
  // parked once Slack has the request: a request Slack did not take is asked again later.
  // A process that may have been taken over asks nobody: the job's new holder asks.
  if (!jobs_.owner().may_act_for(run.job.epoch)) return not_held(shared_run, stopped(std::move(then)));
  slack_.start_call_json(
      "chat.postMessage", slack::message_json(request, {{"channel", approver}}),
      continue_on<Result<json>>(executor_, [this, shared_run, approver, then = std::move(then)](Result<json> posted) mutable {
        Run& run = *shared_run;
        if (!posted) return transient(shared_run, posted.status(), stopped(std::move(then)));
        if (Status s = jobs_.park(run.job, js::kAwaitingApproval, approver, "", run.context.dump()); !s.ok()) return then(s);
        tell_requester(run, text_message("I asked <@" + approver + "> to approve *" + slack::escape_mrkdwn(run.recipe->command) +
                                         "*. I will tell you what they decide."));
        then(Next::kStop);
      }));
}

void JobRunner::http_step(const std::shared_ptr<Run>& shared_run, const recipes::Step& step, Then then) {
  Run& run = *shared_run;
  const recipes::HttpStep& h = *step.http;
  const recipes::Recipe& recipe = *run.recipe;
  auto earlier = jobs_.step(run.job.id, run.job.step);
  if (!earlier) return then(earlier.status());
  if (earlier->has_value() && (*earlier)->state == store::step_state::kStarted && !h.idempotent) {
    // The call may have reached the app before Deputy stopped; repeating it could do the work twice.
    return fail(shared_run, "Deputy stopped while step *" + step.id + "* was talking to " + app_name(recipe.app) +
                                      ", so I cannot tell whether it happened. Check " + app_name(recipe.app) +
                                      " before you try again; I did not repeat it", stopped(then));
  }

  // Before anything else is spent on it: a call that cannot go now waits, in the app's line
  // (in memory, resumed on the workers when a place frees) or, past it, in the queue.
  auto entered = bulkhead_->enter(recipe.app, run.job.team_id + ":" + run.job.requester,
                                  [this, shared_run, &step, then, executor = executor_](Bulkhead::Slot slot) {
                                    auto place = std::make_shared<Bulkhead::Slot>(std::move(slot));
                                    auto go = [this, shared_run, &step, then, place] { with_slot(shared_run, step, std::move(*place), then); };
                                    if (executor) executor->post(std::move(go));
                                    else go();
                                  });
  if (std::holds_alternative<Bulkhead::Waiting>(entered)) return;
  if (auto* full = std::get_if<Bulkhead::Full>(&entered)) {
    const bool app_full = full->who == Bulkhead::Full::Who::kApp;
    metrics_.increment("deputy_jobs_deferred_total", {{"reason", app_full ? "app_busy" : "person_busy"}});
    return wait_and_retry(shared_run, full->wait,
                               app_full ? app_name(recipe.app) + " has as many calls in flight as it may have"
                                        : "this person has as many calls in flight as they may have",
                               app_full ? app_name(recipe.app) + " was too busy with other requests"
                                        : "you had too many other requests running", stopped(then));
  }
  with_slot(shared_run, step, std::move(std::get<Bulkhead::Slot>(entered)), std::move(then));
}

void JobRunner::with_slot(const RunPtr& shared_run, const recipes::Step& step, Bulkhead::Slot place, Then then) {
  Run& run = *shared_run;
  const recipes::Recipe& recipe = *run.recipe;
  const bool personal = recipe.verify_user_access_at_runtime;
  const std::string acting_user = run.context.value("acting_user", run.job.requester);
  auto slot = std::make_shared<Bulkhead::Slot>(std::move(place));
  // A token that needs renewing is renewed off the workers, once for all who wait on it.
  tokens_.start_access(run.job.team_id, acting_user, recipe.app,
                            personal ? store::ConnectionMode::kPersonal : store::ConnectionMode::kShared,
                            on_workers([this, shared_run, &step, slot, then = std::move(then)](Result<oauth::AccessGrant> grant) mutable {
                              with_grant(shared_run, step, std::move(*slot), std::move(grant), std::move(then));
                            }));
}

void JobRunner::with_grant(const std::shared_ptr<Run>& shared_run, const recipes::Step& step, Bulkhead::Slot slot,
                           Result<oauth::AccessGrant> grant, Then then) {
  Run& run = *shared_run;
  const recipes::HttpStep& h = *step.http;
  const recipes::Recipe& recipe = *run.recipe;
  const bool personal = recipe.verify_user_access_at_runtime;
  const std::string acting_user = run.context.value("acting_user", run.job.requester);
  if (!grant) {
    auto code = grant.status().code();
    if (personal && (code == ErrorCode::kNotFound || code == ErrorCode::kUnauthenticated)) {
      return then(park_for_login(run, acting_user, code == ErrorCode::kUnauthenticated ? "has ended and could not be renewed" : ""));
    }
    if (code == ErrorCode::kNotFound)
      return fail(shared_run, "no shared " + app_name(recipe.app) + " account is connected yet; an admin connects one with `connect shared " +
                                        recipe.app + "`", stopped(then));
    if (code == ErrorCode::kUnauthenticated)
      return fail(shared_run, "the shared " + app_name(recipe.app) + " account needs a new login; an admin reconnects it with `connect shared " +
                                        recipe.app + "`", stopped(then));
    return transient(shared_run, grant.status(), stopped(then));
  }

  if (auto empty = recipes::empty_placeholders(h.path, run.scope); !empty.empty()) {
    // An empty id in a path would address a whole collection instead of one record.
    return fail(shared_run, "step *" + step.id + "* needs " + empty.front() + ", which is empty (did an earlier step find nothing?)", stopped(then));
  }
  http::ClientRequest call;
  call.method = h.method;
  call.url = grant->api_base_url + recipes::render(h.path, run.scope, url_encode);
  std::string query;
  for (const auto& [name, value] : h.query)
    query += (query.empty() ? "?" : "&") + url_encode(name) + "=" + url_encode(recipes::render(value, run.scope));
  call.url += query;
  call.headers = {{"Accept", "application/json"}};
  if (h.body) {
    call.body = recipes::render_json(*h.body, run.scope, recipes::number_paths(recipe));
    call.headers.emplace_back("Content-Type", "application/json");
  }
  if (auto app = apps_.all().find(recipe.app); app != apps_.all().end()) call.timeout = app->second.timeout;

  call.idempotent = h.idempotent;
  auto pending = std::make_shared<Call>();
  pending->run = shared_run;
  pending->step = &step;
  pending->request = std::move(call);
  pending->grant = std::move(*grant);
  pending->personal = personal;
  pending->acting_user = acting_user;
  pending->slot = std::move(slot);
  pending->then = std::move(then);
  // The call goes out only once its start is on disk.
  jobs_.begin_step(run.job, run.job.step, run.job.requester, pending->grant.account, after_write([this, pending](Status started) {
    if (!started.ok()) {
      pending->slot.leave();
      return pending->then(started);
    }
    send(pending);
  }));
}

void JobRunner::send(std::shared_ptr<Call> call) {
  // Its start is written under this process's claim; the call goes out only if no other
  // process can have taken the job over since (a paused process that comes back sends nothing).
  if (!jobs_.owner().may_act_for(call->run->job.epoch)) {
    call->slot.leave();
    // Not sent: the step may run again, whoever runs it.
    give_back_step(*call->run);
    return not_held(call->run, stopped(call->then));
  }
  http::ClientRequest authorized = call->request;
  authorized.headers.emplace_back("Authorization", "Bearer " + call->grant.access_token);
  // The executor is taken now: the answer may come after this runner has stopped, and then
  // the closed executor drops the resumption instead of running it.
  http_.start(std::move(authorized), [this, call, executor = executor_](http::ClientOutcome outcome) {
    // The place is free as soon as the app has answered, not when the workers get to it.
    if (!(outcome.reached == http::Reached::kAnswered && outcome.response.status == 401 && !call->renewed)) call->slot.leave();
    // On the client's loop: the rest (database, templates, Slack) is the workers' to do.
    auto resume = [this, call, outcome = std::move(outcome)]() mutable { answered(call, std::move(outcome)); };
    if (executor) executor->post(std::move(resume));
    else resume();
  });
}

void JobRunner::answered(const std::shared_ptr<Call>& call, http::ClientOutcome outcome) {
  Run& run = *call->run;
  const recipes::Step& step = *call->step;
  const recipes::HttpStep& h = *step.http;
  const recipes::Recipe& recipe = *run.recipe;
  const bool personal = call->personal;
  const std::string& acting_user = call->acting_user;
  const Then& then = call->then;
  if (outcome.reached == http::Reached::kAnswered && outcome.response.status == 401 && !call->renewed) {
    return tokens_.start_refresh_after_rejection(call->grant, on_workers([this, call](Result<oauth::AccessGrant> renewed) {
      renewed_after_rejection(call, std::move(renewed));
    }));
  }
  if (outcome.reached != http::Reached::kAnswered) {
    if (h.idempotent || outcome.reached == http::Reached::kNotSent) {
      give_back_step(run);
      return transient(call->run, outcome.error, stopped(then));
    }
    return fail(call->run, "the call to " + app_name(recipe.app) + " in step *" + step.id + "* got no answer" +
                              (outcome.deadline_passed
                                   ? " within " + std::to_string(std::chrono::duration_cast<std::chrono::seconds>(call->request.timeout).count()) + " s"
                                   : "") +
                              ", so I cannot tell whether it happened. Check " + app_name(recipe.app) + " before you try again", stopped(then));
  }
  const http::ClientResponse* response = &outcome.response;
  const oauth::AccessGrant* grant = &call->grant;
  if (auto limited = rate_limit_wait(*response)) {
    // Turned away before it was acted on: the step runs again once the app allows it.
    give_back_step(run);
    metrics_.increment("deputy_jobs_deferred_total", {{"reason", "rate_limited"}});
    return wait_and_retry(call->run, *limited,
                               app_name(recipe.app) + " is limiting requests (HTTP " + std::to_string(response->status) + ")",
                               app_name(recipe.app) + " kept limiting requests (HTTP " + std::to_string(response->status) + ")", stopped(then));
  }
  store::AuditEvent action{run.job.team_id, "action", run.job.requester, personal ? acting_user : "shared", recipe.app, grant->connection_id,
                           recipe.command, step.id + ": " + h.method + " " + h.path + " -> " + std::to_string(response->status) + " as " + grant->account};
  // A call the app answered with success is audited with the step's end, in one write.
  if (response->status < 200 || response->status >= 300) jobs_.audit(run.job.id, action, [](Status s) { log_failure("an app call in the audit log", s); });
  if (response->status == 401) {
    give_back_step(run);
    if (personal) return then(park_for_login(run, acting_user, "was refused"));
    return fail(call->run, app_name(recipe.app) + " refused the shared account", stopped(then));
  }
  if (response->status >= 500 && h.idempotent) {
    give_back_step(run);
    return transient(call->run, Unavailable(app_name(recipe.app) + " answered " + std::to_string(response->status)), stopped(then));
  }
  if (response->status >= 500) {
    // The app may have done the work before it failed; repeating it could do it twice.
    return fail(call->run, app_name(recipe.app) + " answered HTTP " + std::to_string(response->status) + " in step *" + step.id +
                              "* (" + slack::escape_mrkdwn(app_error_message(*response)) + "), so I cannot tell whether it happened. Check " +
                              app_name(recipe.app) + " before you try again; I did not repeat it", stopped(then));
  }
  if (response->status >= 400) {
    give_back_step(run);
    return fail(call->run, app_name(recipe.app) + " said: " + slack::escape_mrkdwn(app_error_message(*response)), stopped(then));
  }

  json kept = json::object();
  auto body = json::parse(response->body, nullptr, false);
  for (const auto& [name, pointer] : h.keep) {
    auto ptr = json::json_pointer(pointer);
    if (!body.is_discarded() && body.contains(ptr)) kept[name] = body.at(ptr);
  }
  run.context["steps"][step.id] = kept;
  run.context["account"] = grant->account;
  run.context["shared"] = !personal;
  std::optional<store::AuditEvent> audited;
  if (response->status >= 200 && response->status < 300) audited = std::move(action);
  jobs_.finish_step(run.job, run.job.step, kept.dump(), run.context.dump(), std::move(audited), after_write([call](Status finished) {
    if (!finished.ok()) return call->then(finished);
    call->then(Next::kContinue);
  }));
}

void JobRunner::renewed_after_rejection(const std::shared_ptr<Call>& call, Result<oauth::AccessGrant> renewed) {
  Run& run = *call->run;
  const Then& then = call->then;
  if (!renewed) {
    call->slot.leave();
    give_back_step(run);
    if (call->personal && renewed.status().code() == ErrorCode::kUnauthenticated)
      return then(park_for_login(run, call->acting_user, "has ended and could not be renewed"));
    if (renewed.status().code() == ErrorCode::kUnavailable) return transient(call->run, renewed.status(), stopped(then));
    return fail(call->run, app_name(run.recipe->app) + " refused the login: " + slack::escape_mrkdwn(renewed.status().message()),
                stopped(then));
  }
  call->grant = std::move(*renewed);
  call->renewed = true;
  send(call);
}

JobRunner::Granted JobRunner::on_workers(Granted next) {
  // Answered at once on this thread (no renewal was needed), it goes on here; answered on
  // the renewal thread, it goes back to the workers.
  return continue_on<Result<oauth::AccessGrant>>(executor_, std::move(next));
}

store::Jobs::Written JobRunner::after_write(store::Jobs::Written next) { return continue_on<Status>(executor_, std::move(next)); }

store::Jobs::Claimed JobRunner::after_claim(store::Jobs::Claimed next) {
  return continue_on<Result<std::optional<store::JobRecord>>>(executor_, std::move(next));
}

void JobRunner::give_back_step(const Run& run) {
  jobs_.abandon_step(run.job, run.job.step, [](Status s) { log_failure("that a step may run again", s); });
}

Status JobRunner::park_for_login(Run& run, const std::string& user_id, const std::string& reason) {
  const recipes::Recipe& recipe = *run.recipe;
  std::string name = app_name(recipe.app);
  if (Status s = jobs_.park(run.job, js::kAwaitingAuth, user_id, recipe.app, run.context.dump()); !s.ok()) return s;
  auto link = links_.connect_link({run.job.team_id, user_id, recipe.app, store::ConnectionMode::kPersonal, run.job.id});
  if (!link) return link.status();
  slack::Message prompt;
  std::string why = reason.empty() ? "" : " (your " + name + " login " + reason + ")";
  prompt.text = "To run " + recipe.command + " connect your " + name + " account";
  std::string body = "To run *" + slack::escape_mrkdwn(recipe.command) + "* connect your " + slack::escape_mrkdwn(name) + " account" + why + ".";
  if (user_id != run.job.requester) body = "To decide on <@" + run.job.requester + ">'s request *" + slack::escape_mrkdwn(recipe.command) +
                                           "* as yourself, connect your " + slack::escape_mrkdwn(name) + " account.";
  prompt.blocks.section(body + " I will finish the job as soon as you are connected.",
                        slack::Button{"Connect " + name, "link.open.connect", recipe.app, *link, "primary", std::nullopt});
  prompt.blocks.context({"The link works once, for 10 minutes — don't share it."});
  // Kept while Slack is down, but not past the link's life: a dead button helps nobody.
  const auto link_works_for = links_.link_lifetime();
  if (user_id == run.job.requester) outbox_.post(run.reply_to, prompt, link_works_for);
  else outbox_.post_direct(run.job.team_id, user_id, prompt, link_works_for);
  count("awaiting_auth");
  return Status::Ok();
}

void JobRunner::not_held(const RunPtr& run, Done done) {
  if (jobs_.owner().epoch() != run->job.epoch) return done(Aborted("the job was taken over by another process"));
  // Still this run's, but its heartbeat is late: back to the queue, to run once it is not (by
  // this process or another). Not a failure, and not counted against the command's wait.
  jobs_.requeue(run->job, after_write([done = std::move(done)](Status s) {
    done(s.ok() ? Unavailable("this process's heartbeat to the database is late").with_retry_after(std::chrono::seconds(2)) : s);
  }));
}

void JobRunner::transient(const RunPtr& run, const Status& why, Done done) {
  // Trouble that says when it passes (a rate limit) is waited out without using a try.
  if (why.retry_after().count() > 0)
    return wait_and_retry(run, why.retry_after(), why.message(), slack::escape_mrkdwn(why.message()), std::move(done));
  if (run->attempt < max_attempts_) {
    spdlog::warn("job {} step {} hit a transient problem (attempt {}), will retry: {}", run->job.id, run->job.step, run->attempt,
                 why.message());
    return jobs_.requeue(run->job, after_write([why = why.message(), done = std::move(done)](Status s) {
      done(s.ok() ? Unavailable(why) : s);
    }));
  }
  fail(run, app_name(run->recipe ? run->recipe->app : "") + " could not be reached (" + slack::escape_mrkdwn(why.message()) + "), so I stopped there",
       std::move(done));
}

void JobRunner::wait_and_retry(const RunPtr& run, std::chrono::milliseconds wait, const std::string& why, const std::string& too_long,
                               Done done) {
  const auto waited_until = std::chrono::system_clock::time_point(std::chrono::seconds(run->job.created_at)) + max_wait_;
  if (clock_.now() + wait > waited_until) {
    const auto seconds = max_wait_.count();
    const std::string limit = seconds < 120 ? std::to_string(seconds) + " seconds" : std::to_string(seconds / 60) + " minutes";
    const auto step = static_cast<size_t>(run->job.step);
    const std::string where = run->recipe && step < run->recipe->steps.size() ? " before step *" + run->recipe->steps[step].id + "*" : "";
    return fail(run, too_long + " for longer than the " + limit + " I give a command, so I stopped" + where +
                         ". Nothing was done in that step; try again later",
                std::move(done));
  }
  // A wait of zero would read as an ordinary failure, which uses up a try.
  wait = std::max<std::chrono::milliseconds>(wait, std::chrono::seconds(1));
  spdlog::info("job {} step {} waits {} ms: {}", run->job.id, run->job.step, wait.count(), why);
  jobs_.requeue(run->job, after_write([why, wait, done = std::move(done)](Status s) {
    done(s.ok() ? Unavailable(why).with_retry_after(wait) : s);
  }));
}

void JobRunner::fail(const RunPtr& run, const std::string& why, Done done) {
  std::string command = run->recipe ? run->recipe->command : run->job.recipe;
  spdlog::warn("job {} ({}) failed: {}", run->job.id, command, why);
  std::string text = run->recipe && !run->recipe->reply_failure.empty()
                         ? recipes::render(run->recipe->reply_failure, run->scope, slack::escape_mrkdwn) + "\n" + why
                         : ":x: *" + slack::escape_mrkdwn(command) + "* failed: " + why + ".";
  finish(run, text_message(text), js::kFailed, why, "failed", std::move(done));
}

void JobRunner::succeed(const RunPtr& run, Done done) {
  const recipes::Recipe& recipe = *run->recipe;
  std::string text = recipe.reply_success.empty() ? ":white_check_mark: Done: *" + slack::escape_mrkdwn(recipe.command) + "*"
                                                  : recipes::render(recipe.reply_success, run->scope, slack::escape_mrkdwn);
  slack::Message message;
  message.text = text;
  message.blocks.section(text);
  std::string account = run->context.value("account", "");
  std::string acting_user = run->context.value("acting_user", run->job.requester);
  if (!account.empty()) {
    std::string who = run->context.value("shared", false) ? "the shared account " + account
                      : acting_user == run->job.requester ? "you (" + account + ")"
                                                           : "<@" + acting_user + "> (" + account + ")";
    message.blocks.context({"Acted in " + app_name(recipe.app) + " as " + who});
  }
  finish(run, message, js::kSucceeded, text, "succeeded", std::move(done));
}

void JobRunner::finish(const RunPtr& run, const slack::Message& message, const char* state, std::string outcome, const char* counted,
                       Done done) {
  // Told first, then recorded: a crash in between repeats the message rather than losing
  // it. The worker is free while Slack answers; the outbox keeps what Slack did not take.
  // A process that may have been taken over tells nobody: the job's new holder answers.
  if (!jobs_.owner().may_act_for(run->job.epoch)) return not_held(run, std::move(done));
  outbox_.start_send(run->reply_to, message, [this, run, state, outcome = std::move(outcome), counted, done = std::move(done)](Status) {
    jobs_.finish(run->job, state, outcome, after_write([this, counted, done](Status finished) {
      if (!finished.ok()) return done(finished);
      count(counted);
      done(Status::Ok());
    }));
  });
}

void JobRunner::tell_requester(Run& run, const slack::Message& message) {
  // The job's state is already decided; the message about it is the outbox's to deliver.
  outbox_.post(run.reply_to, message);
}

void JobRunner::decide(const slack::ActionRequest& click, bool approved, int attempt, Done done) {
  auto colon = click.value.rfind(':');
  if (colon == std::string::npos) return done(InvalidArgument("approval button without a job"));
  std::string job_id = click.value.substr(0, colon);
  int step = std::atoi(click.value.c_str() + colon + 1);
  auto decision = jobs_.decide(job_id, step, click.where.team_id, click.where.user_id, approved);
  if (!decision) return done(decision.status());
  switch (*decision) {
    case store::Decision::kNotTheApprover: {
      spdlog::warn("{} clicked {} on job {} but is not its approver", click.where.user_id, approved ? "approve" : "reject", job_id);
      (void)audit_.audit({click.where.team_id, "approval_refused", click.where.user_id, "", "", "", "", "job " + job_id.substr(0, 64)});
      return outbox_.start_send(click.where, text_message("Only the person asked to approve this request can decide it."), std::move(done));
    }
    case store::Decision::kNotWaiting: {
      // The approver may click before the job that asked has recorded that it waits (the
      // request reaches Slack first): while the job still runs, the click comes back shortly.
      auto job = jobs_.get(job_id);
      if (!job) return done(job.status());
      if (job->has_value() && ((*job)->state == js::kQueued || (*job)->state == js::kRunning))
        return done(Unavailable("job " + job_id.substr(0, 64) + " has not yet recorded that it waits for this decision")
                        .with_retry_after(std::chrono::milliseconds(500)));
      return outbox_.start_send(click.where, text_message("This request is no longer waiting for a decision."), std::move(done));
    }
    case store::Decision::kAlreadyDecided: {
      auto job = jobs_.get(job_id);
      if (!job) return done(job.status());
      // A retried click whose first delivery stopped before running the job: drive it now.
      // If another runner has it (a second click while the decided job is still running),
      // this click changes nothing and is told so like any other.
      if (job->has_value() && ((*job)->state == js::kQueued || (*job)->state == js::kRunning)) {
        // drive() says whether it claimed the job before it goes on; the flag outlives this call.
        auto ran = std::make_shared<bool>(false);
        drive(
            std::move(**job), attempt,
            [this, done, where = click.where, ran](Status driven) {
              if (*ran || !driven.ok()) return done(driven);
              outbox_.start_send(where, text_message("This request has already been decided; nothing changed."), done);
            },
            ran.get());
        return;
      }
      return outbox_.start_send(click.where, text_message("This request has already been decided; nothing changed."), std::move(done));
    }
    case store::Decision::kRecorded: break;
  }
  (void)audit_.audit({click.where.team_id, approved ? "approved" : "rejected", click.where.user_id, click.where.user_id, "", "", "",
                      "job " + job_id});
  slack::Message decided = text_message(approved ? ":white_check_mark: You approved this request. I am running it now."
                                                 : "You rejected this request. I have told the person who asked.");
  // The card is updated while the job runs: neither waits for the other.
  auto logged = [](Result<json> updated) {
    if (!updated) spdlog::warn("could not update the approval message: {}", updated.status().message());
  };
  if (click.where.via == slack::ReplyVia::kResponseUrl && !click.where.response_url.empty())
    slack_.start_respond(click.where.response_url, decided, true, true, logged);
  else if (!click.message_ts.empty())
    slack_.start_call_json("chat.update", slack::message_json(decided, {{"channel", click.where.channel_id}, {"ts", click.message_ts}}), logged);
  else
    slack::start_delivery(slack_, click.where, decided, [](Status updated) {
      if (!updated.ok()) spdlog::warn("could not update the approval message: {}", updated.message());
    });
  run(job_id, attempt, std::move(done));
}

std::optional<std::string> JobRunner::on_login_failed(const oauth::FailedLogin& login) {
  auto cancelled = jobs_.cancel_waiting(login.job_id, login.team_id, login.user_id, login.app, login.started_at,
                                        "the " + app_name(login.app) + " login failed");
  if (!cancelled) {
    spdlog::error("job {} stays parked after its failed login: {}", login.job_id, cancelled.status().message());
    return std::nullopt;
  }
  if (*cancelled) count("cancelled");
  return *cancelled;
}

void JobRunner::on_connected(const oauth::Connected& connected) {
  auto resumed = jobs_.resume_after_login(connected.team_id, connected.user_id, connected.app);
  if (!resumed) {
    spdlog::error("could not resume jobs waiting for {}'s {} login: {}", connected.user_id, connected.app, resumed.status().message());
    return;
  }
  if (!resumed->empty()) {
    spdlog::info("resuming {} job(s) after {} connected {}", resumed->size(), connected.user_id, connected.app);
    if (wake_) wake_();
  }
}

}  // namespace deputy::engine
