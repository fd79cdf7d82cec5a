#include "server/app.h"

#include <spdlog/spdlog.h>

#include <condition_variable>
#include <cstdio>
#include <deque>
#include <functional>
#include <mutex>
#include <optional>
#include <string>
#include <thread>

#include <unistd.h>

#include "bot/bot.h"
#include "cluster/membership.h"
#include "common/threads.h"
#include "engine/dispatch.h"
#include "engine/executor.h"
#include "common/limits.h"
#include "engine/ingest.h"
#include "engine/job_runner.h"
#include "engine/workers.h"
#include "http/client.h"
#include "http/server.h"
#include "metrics/metrics.h"
#include "recipes/recipe.h"
#include "oauth/apps.h"
#include "oauth/protocol.h"
#include "oauth/identity.h"
#include "oauth/login_flow.h"
#include "server/core.h"
#include "server/login_pages.h"
#include "server/slack_endpoint.h"
#include "store/connections.h"
#include "store/oauth_states.h"
#include "vault/token_vault.h"
#include "slack/web_api.h"
#include "store/database.h"
#include "store/inbox.h"
#include "store/jobs.h"

namespace deputy::server {
namespace {

class RecipeCatalog final : public bot::CommandCatalog {
 public:
  std::vector<bot::CommandInfo> commands() const override {
    std::vector<bot::CommandInfo> out;
    for (const auto& r : recipes) out.push_back({r.command, r.usage(), r.description, r.app, r.verify_user_access_at_runtime});
    return out;
  }
  std::vector<recipes::Recipe> recipes;
};

// The declared home of HTTP handlers that block: on the database (a login's state, readiness,
// the queue gauges in /metrics) or on other servers (OAuth token endpoints). The I/O threads
// never wait; what waits here is bounded by these few threads.
class BlockingPool final : public engine::Executor {
 public:
  // `name` shows in top -H and profilers (at most 15 characters).
  BlockingPool(unsigned threads, std::string name) {
    for (unsigned i = 0; i < threads; ++i) {
      threads_.emplace_back([this, name] {
        name_this_thread(name);
        loop();
      });
    }
  }
  ~BlockingPool() override { stop(); }
  void post(std::function<void()> task) override {
    {
      std::lock_guard lock(mutex_);
      tasks_.push_back(std::move(task));
    }
    wake_.notify_one();
  }
  void stop() {
    {
      std::lock_guard lock(mutex_);
      stopping_ = true;
    }
    wake_.notify_all();
    for (auto& t : threads_) {
      if (t.joinable()) t.join();
    }
  }

 private:
  void loop() {
    while (true) {
      std::function<void()> task;
      {
        std::unique_lock lock(mutex_);
        wake_.wait(lock, [&] { return stopping_ || !tasks_.empty(); });
        if (tasks_.empty()) return;
        task = std::move(tasks_.front());
        tasks_.pop_front();
      }
      task();
    }
  }
  std::mutex mutex_;
  std::condition_variable wake_;
  std::deque<std::function<void()>> tasks_;
  bool stopping_ = false;
  std::vector<std::thread> threads_;
};

unsigned io_threads(const config::Config& cfg) {
  return cfg.server.io_threads ? cfg.server.io_threads : std::max(1u, std::thread::hardware_concurrency());
}

unsigned workers(const config::Config& cfg) { return worker_threads(cfg, std::thread::hardware_concurrency()); }

// PostgreSQL: the job engine's writes run on this many lanes, each with a pooled connection
// besides the workers' own. SQLite has one writer, the ingest writer.
size_t database_lanes(const config::Config& cfg) { return on_postgres(cfg) ? workers(cfg) : 0; }

// Slack's last retry comes about five minutes after the first try; keep keys well past it.
constexpr std::chrono::seconds kDedupeWindow{3600};

}  // namespace

struct App::Parts {
  config::Config config;
  std::unique_ptr<Core> core;
  // This process's run: the epoch its claims carry. On PostgreSQL with a connection of its
  // own, so heartbeats never wait behind busy workers for a pooled one.
  std::unique_ptr<store::Database> membership_database;
  std::unique_ptr<cluster::Membership> membership;
  std::unique_ptr<store::Inbox> inbox;
  RecipeCatalog catalog;
  std::unique_ptr<store::Jobs> jobs;
  // PostgreSQL only: the job engine's writes, off the workers (each waits on a round trip).
  std::unique_ptr<store::LaneWrites> database_writes;
  std::unique_ptr<slack::WebApi> engine_slack;
  std::unique_ptr<engine::Outbox> outbox;
  std::unique_ptr<engine::JobRunner> runner;
  std::unique_ptr<oauth::WebApiDirectory> slack_directory;
  std::unique_ptr<oauth::LoginFlow> login_flow;
  std::unique_ptr<LoginPages> login_pages;
  std::unique_ptr<bot::Bot> bot;
  std::unique_ptr<engine::Workers> workers;
  std::unique_ptr<engine::Ingest> ingest;
  std::unique_ptr<SlackEndpoint> slack_endpoint;
  std::unique_ptr<http::Server> server;
  // /readyz and /metrics: short database reads, never queued behind a login.
  BlockingPool blocking_pool{2, "deputy-blocking"};
  // The login pages: they wait on the app's token and userinfo endpoints and on Slack.
  BlockingPool login_pool{4, "deputy-logins"};
  // The bot's commands that call an app directly (revocation on disconnect and offboarding,
  // `check`, discovery for a first connect link), so that no worker waits on an app.
  BlockingPool accounts_pool{2, "deputy-accounts"};
  // Token renewals for jobs: they may wait on a token endpoint, so not on a worker. Each
  // connection renews once however many jobs wait for it.
  BlockingPool renewal_pool{4, "deputy-renew"};
  std::thread housekeeping;
  std::mutex housekeeping_mutex;
  std::condition_variable housekeeping_wake;
  bool stopping = false;
};

App::App(config::Config config) : parts_(std::make_unique<Parts>()) { parts_->config = std::move(config); }

App::~App() = default;

Status App::start() {
  auto endpoint = parts_->config.listen_endpoint();
  if (!endpoint) return endpoint.status();
  if (Status s = start_storage(); !s.ok()) return s;
  if (Status s = start_engine(); !s.ok()) return s;
  return start_routes(endpoint->first, endpoint->second);
}

// The database, the recipes, and the queues kept in the database.
Status App::start_storage() {
  Parts& p = *parts_;
  const auto& cfg = p.config;
  spdlog::info("open files: up to {}", raise_open_file_limit());
  auto renewals = [&p](std::function<void()> renew) { p.renewal_pool.post(std::move(renew)); };
  auto core = open_core(cfg, workers(cfg) + 3 + database_lanes(cfg), /*create_keyring=*/true, renewals);
  if (!core) return core.status();
  p.core = std::move(core).value();
  if (Status s = join_cluster(); !s.ok()) return s;
  Core& c = *p.core;
  const auto& apps = c.apps->all();
  auto recipes = recipes::load_folder(cfg.recipes_dir);
  if (!recipes) return recipes.status();
  for (const auto& recipe : *recipes) {
    auto app = apps.find(recipe.app);
    if (app == apps.end()) return InvalidArgument(recipe.file + ": app: '" + recipe.app + "' is not configured under apps:");
    if (recipe.verify_user_access_at_runtime && !app->second.oauth2)
      return InvalidArgument(recipe.file + ": verify_user_access_at_runtime: " + app->second.display_name +
                             " is not an OAuth2 app, so it cannot act as each person; use a shared connection");
  }
  p.catalog.recipes = std::move(recipes).value();
  spdlog::info("loaded {} recipes from {}", p.catalog.recipes.size(), cfg.recipes_dir);
  p.inbox = std::make_unique<store::Inbox>(*c.database, SystemClock::instance(), kDedupeWindow, *p.membership);
  p.jobs = std::make_unique<store::Jobs>(*c.database, SystemClock::instance(), std::chrono::seconds(300), *p.membership);
  if (c.database->dialect() == store::Dialect::kSqlite) {
    // Only this process uses the file, so anything marked working was cut off by a crash.
    if (Status s = p.inbox->requeue_all_working(); !s.ok()) return s;
    if (Status s = p.jobs->release_all_running(); !s.ok()) return s;
  }

  c.metrics.describe("deputy_jobs", "gauge", "Queued Slack deliveries and jobs by state.");
  c.metrics.gauge_callback("deputy_jobs", [inbox = p.inbox.get(), jobs = p.jobs.get()] {
    std::vector<std::pair<metrics::Labels, double>> out;
    auto add = [&](const char* kind, std::initializer_list<const char*> states, const Result<std::map<std::string, int64_t>>& counts) {
      for (const char* state : states) {
        double value = 0;
        if (counts) {
          auto it = counts->find(state);
          if (it != counts->end()) value = static_cast<double>(it->second);
        }
        out.push_back({{{"kind", kind}, {"state", state}}, value});
      }
    };
    add("delivery", {"queued", "working", "failed"}, inbox->count_by_state());
    add("job", {"queued", "awaiting_auth", "running", "awaiting_approval", "succeeded", "failed", "cancelled"}, jobs->count_by_state());
    return out;
  });
  return Status::Ok();
}

Status App::join_cluster() {
  Parts& p = *parts_;
  const auto& cfg = p.config;
  Core& c = *p.core;
  char host[256] = {};
  if (gethostname(host, sizeof host - 1) != 0) std::snprintf(host, sizeof host, "unknown");
  cluster::MembershipSettings settings{std::chrono::seconds(cfg.server.heartbeat_seconds), std::chrono::seconds(cfg.server.takeover_seconds),
                                       host, static_cast<int64_t>(getpid())};
  store::Database* database = c.database.get();
  const bool alone = c.database->dialect() != store::Dialect::kPostgres;
  if (!alone) {
    auto own = store::open_unmigrated(cfg.database, 1);
    if (!own) return own.status();
    p.membership_database = std::move(own).value();
    database = p.membership_database.get();
  } else {
    // Only this process uses the file.
    settings.alone = true;
  }
  auto joined = cluster::Membership::join(*database, std::move(settings));
  if (!joined) return joined.status();
  p.membership = std::move(joined).value();
  c.connections->set_owner(*p.membership);
  // Which of the processes sharing the database a sample came from; one process alone on its
  // SQLite file keeps the label sets it always had.
  if (!alone) c.metrics.set_common_label("process", p.membership->name());
  return Status::Ok();
}

// Everything that runs deliveries and jobs: Slack, the outbox, the job runner, the bot,
// the workers and the ingest writer, and the endpoint Slack's requests come in by.
Status App::start_engine() {
  Parts& p = *parts_;
  const auto& cfg = p.config;
  Core& c = *p.core;
  c.metrics.describe("deputy_slack_api_calls_total", "counter", "Slack Web API calls by method and outcome.");
  // The workers' Slack: one try per call and never a sleep. What Slack does not take (a 429
  // included) waits in the queue for as long as Slack asked, so no worker is held by it.
  p.engine_slack = std::make_unique<slack::WebApi>(*c.http_client, slack::WebApiSettings{cfg.slack.api_url, cfg.slack.bot_token, 1},
                                                   &c.metrics);
  p.outbox = std::make_unique<engine::Outbox>(*p.engine_slack, *p.engine_slack, *p.inbox, SystemClock::instance());
  p.runner = std::make_unique<engine::JobRunner>(p.catalog.recipes, *p.jobs, *c.apps, *c.tokens, *c.login_links, *c.connections,
                                                 *c.http_client, *p.engine_slack, *p.outbox, c.metrics);
  // The identity check asks Slack with retries: it runs on the blocking pool, where the login
  // callback waits on the app anyway.
  p.slack_directory = std::make_unique<oauth::WebApiDirectory>(*c.slack);
  const std::string public_url = cfg.effective_public_url();
  p.login_flow = std::make_unique<oauth::LoginFlow>(*c.apps, *c.protocol, *c.connections, *c.oauth_states, *c.vault, *p.slack_directory,
                                                    *p.runner, *p.outbox, SystemClock::instance(), c.metrics,
                                                    oauth::LoginOptions{public_url});
  p.login_pages = std::make_unique<LoginPages>(*p.login_flow, public_url.rfind("https://", 0) == 0);
  p.bot = std::make_unique<bot::Bot>(*p.engine_slack, *p.outbox, p.catalog,
                                     bot::Accounts{*c.apps, *c.connection_service, *c.login_links, *p.login_flow, *c.tokens}, cfg.admins,
                                     p.runner.get(), &p.catalog.recipes, &p.accounts_pool);
  // Discovery before the first connect link needs it, so that link is not made on a worker
  // waiting on the app's well-known document; one that fails now is tried again on use.
  for (const auto& [id, app] : c.apps->all()) {
    if (!app.discover) continue;
    p.accounts_pool.post([apps = c.apps.get(), id = id] {
      if (auto found = apps->find(id); !found) spdlog::warn("{}; Deputy tries again when a connect link needs it", found.status().message());
    });
  }
  auto dispatch = std::make_shared<engine::Dispatch>();
  auto from_slack = [bot = p.bot.get()](const store::ClaimedDelivery& d, engine::Workers::Finish finish) { bot->handle(d, std::move(finish)); };
  for (DeliveryKind kind : {DeliveryKind::kSlashCommand, DeliveryKind::kEvent, DeliveryKind::kBlockActions}) dispatch->on(kind, from_slack);
  dispatch->on(DeliveryKind::kMessage, [outbox = p.outbox.get()](const store::ClaimedDelivery& d, engine::Workers::Finish finish) {
    outbox->start_resend(d, std::move(finish));
  });
  dispatch->on(DeliveryKind::kJob, [runner = p.runner.get()](const store::ClaimedDelivery& d, engine::Workers::Finish finish) {
    runner->run(d.delivery.payload, d.attempts, std::move(finish));
  });
  if (auto missing = dispatch->missing(); !missing.empty())
    return Internal(std::string("no handler for deliveries of kind ") + kind_name(missing.front()));
  p.workers = std::make_unique<engine::Workers>(
      *p.inbox,
      engine::Workers::StartHandle([dispatch](const store::ClaimedDelivery& d, engine::Workers::Finish finish) { (*dispatch)(d, std::move(finish)); }),
      workers(cfg));
  p.runner->set_executor(p.workers->executor());
  p.outbox->set_executor(p.workers->executor());
  p.runner->set_limits({cfg.server.jobs_in_flight_per_app, cfg.server.jobs_in_flight_per_person});
  p.runner->set_max_wait(std::chrono::seconds(cfg.server.job_max_wait_seconds));
  p.workers->set_max_in_flight(cfg.server.jobs_in_flight);
  engine::Ingest::Handoff handoff;
  // Only a single process (SQLite) runs admitted work from memory. With PostgreSQL several
  // processes share the queue, and work one of them holds in memory would be hidden from
  // the others for a whole lease if it crashed.
  const bool shared_queue = c.database->dialect() == store::Dialect::kPostgres;
  // For the same reason only a single process claims a backlog in batches.
  p.workers->set_claim_batch(shared_queue ? 1 : 16);
  p.workers->set_nice(cfg.server.worker_nice);
  p.workers->set_max_attempts(DeliveryKind::kMessage, engine::Outbox::kMaxAttempts);
  handoff.room = [workers = p.workers.get(), shared_queue] { return shared_queue ? size_t{0} : workers->room(); };
  handoff.hand_over = [workers = p.workers.get()](std::vector<store::ClaimedDelivery> claimed) {
    workers->hand_over(std::move(claimed));
  };
  handoff.notify = [workers = p.workers.get()] { workers->notify(); };
  p.ingest = std::make_unique<engine::Ingest>(*p.inbox, std::move(handoff));
  p.workers->set_complete([ingest = p.ingest.get()](store::Held delivery) { ingest->complete(delivery); });
  if (!shared_queue) {
    // The job engine's writes too: on SQLite a worker holding the only write lock would make
    // the acks wait, and many jobs' writes share one commit (and one fsync) this way.
    p.jobs->set_writes(*p.ingest);
    // The writer claims for the workers too: they run at a lower priority, and one of them
    // holding SQLite's only write lock while the scheduler keeps it waiting would stall the acks.
    p.workers->set_claim([ingest = p.ingest.get()](size_t limit, std::chrono::seconds lease) {
      return ingest->claim(limit, lease);
    });
  } else {
    // Each write is a network round trip on PostgreSQL: the workers hand it to the database
    // lanes and go on with other jobs; a job resumes on the workers once its write is in.
    p.database_writes = std::make_unique<store::LaneWrites>(*c.database, std::max<size_t>(database_lanes(cfg), 1));
    p.jobs->set_writes(*p.database_writes);
  }
  p.runner->set_wake([workers = p.workers.get()] { workers->notify(); });
  p.slack_endpoint = std::make_unique<SlackEndpoint>(cfg.slack.signing_secret, *p.ingest, SystemClock::instance(), c.metrics);
  return Status::Ok();
}

// The HTTP routes, each where it runs, and the listening socket.
Status App::start_routes(const std::string& host, uint16_t listen_port) {
  Parts& p = *parts_;
  const auto& cfg = p.config;
  Core& c = *p.core;
  http::Router router;
  router.add("POST", "/slack/events", [ep = p.slack_endpoint.get()](http::Request&& r, http::Reply reply) {
    ep->handle(std::move(r), std::move(reply));
  });
  // Where each route runs: /slack/events and /healthz on the I/O threads (they never block);
  // the login pages on the login pool; /readyz and /metrics on the blocking pool.
  auto on = [](BlockingPool& pool, auto handler) {
    return [&pool, handler](http::Request&& r, http::Reply reply) {
      pool.post([handler, r = std::move(r), reply = std::move(reply)]() mutable { handler(r, std::move(reply)); });
    };
  };
  auto blocking = [&p, on](auto handler) { return on(p.blocking_pool, handler); };
  auto logins = [&p, on](auto handler) { return on(p.login_pool, handler); };
  // The start writes the login's state and may run OIDC discovery.
  router.add("GET", "/oauth/start", logins([pages = p.login_pages.get()](http::Request& r, http::Reply reply) {
    pages->handle_start(r, std::move(reply));
  }));
  // The callback talks to the app's token endpoint.
  router.add("GET", "/oauth/callback", logins([pages = p.login_pages.get()](http::Request& r, http::Reply reply) {
    pages->handle_callback(r, std::move(reply));
  }));
  router.add("GET", "/healthz", [](http::Request&&, http::Reply reply) { reply(http::Response::text(200, "ok\n")); });
  // A pooled connection, waited for two seconds at most.
  // Ready when the database answers and this process holds its heartbeat: a process whose
  // heartbeat is late starts no work, and the others may be taking over what it held.
  router.add("GET", "/readyz", blocking([db = c.database.get(), membership = p.membership.get()](http::Request&, http::Reply reply) {
    Status s = db->ping(std::chrono::seconds(2));
    if (!s.ok()) {
      spdlog::warn("not ready: {}", s.message());
      return reply(http::Response::text(503, "database unreachable\n"));
    }
    if (!membership->fresh()) return reply(http::Response::text(503, "heartbeat lost: this process starts no work until its heartbeat is back\n"));
    reply(http::Response::text(200, "ready\n"));
  }));
  // The queue gauges count rows in the database.
  router.add("GET", "/metrics", blocking([m = &c.metrics](http::Request&, http::Reply reply) {
    auto r = http::Response::text(200, m->render());
    r.content_type = "text/plain; version=0.0.4; charset=utf-8";
    reply(std::move(r));
  }));

  http::ServerOptions options;
  options.max_body_bytes = cfg.server.max_body_bytes;
  options.header_limit_bytes = cfg.server.header_limit_bytes;
  options.header_timeout = std::chrono::seconds(cfg.server.header_timeout_seconds);
  options.read_timeout = std::chrono::seconds(cfg.server.read_timeout_seconds);
  options.idle_timeout = std::chrono::seconds(cfg.server.idle_timeout_seconds);
  // The membership's own connection and the ingest writer's are beside the pool.
  options.max_connections = inbound_connections(cfg, open_file_limit(), workers(cfg) + 5 + database_lanes(cfg));
  p.server = std::make_unique<http::Server>(options, std::move(router), &c.metrics);
  if (Status s = p.server->listen(host, listen_port); !s.ok()) return s;
  spdlog::info("Deputy listening on {}:{} ({} I/O threads, {} workers, at most {} connections, database {})", host,
               p.server->port(), io_threads(cfg), workers(cfg), options.max_connections,
               c.database->dialect() == store::Dialect::kSqlite ? "SQLite" : "PostgreSQL");
  return Status::Ok();
}

uint16_t App::port() const { return parts_->server->port(); }

void App::run() {
  Parts& p = *parts_;
  p.membership->start();
  p.workers->start();
  p.workers->notify();
  p.housekeeping = std::thread([&p] {
    name_this_thread("deputy-house");
    std::unique_lock lock(p.housekeeping_mutex);
    constexpr auto kEvery = std::chrono::minutes(5);
    while (!p.stopping) {
      lock.unlock();
      // One process at a time purges, whichever holds the lease; another takes it over when the
      // holder stops renewing it (three rounds without).
      auto elected = p.membership->hold_lease("housekeeping", 3 * kEvery);
      if (!elected) spdlog::warn("housekeeping: {}", elected.status().message());
      if (elected && *elected) {
        if (Status s = p.inbox->purge_expired_dedupe_keys(); !s.ok()) spdlog::warn("purging dedupe keys: {}", s.message());
        if (Status s = p.core->oauth_states->purge_expired(); !s.ok()) spdlog::warn("purging login states: {}", s.message());
        if (Status s = p.membership->forget_ended_before(std::chrono::hours(24 * 7)); !s.ok())
          spdlog::warn("purging ended processes: {}", s.message());
      }
      lock.lock();
      p.housekeeping_wake.wait_for(lock, kEvery, [&] { return p.stopping; });
    }
  });
  p.server->run(io_threads(p.config));
  // The server has stopped and every request in flight has its answer; now drain the rest.
  p.ingest->stop();
  p.blocking_pool.stop();
  p.login_pool.stop();
  // Before the workers: its commands end in a worker's Finish and the outbox's settling.
  p.accounts_pool.stop();
  p.workers->stop();
  p.renewal_pool.stop();
  if (p.database_writes) p.database_writes->stop();
  // What is still held (jobs whose app call outlived the grace, deliveries not finished) goes
  // back to the queue now, for the other processes to run at once instead of after a takeover.
  if (auto back = p.membership->leave(); !back) spdlog::warn("could not hand back this process's work: {}", back.status().message());
  else if (back->deliveries || back->jobs) spdlog::info("handed back {} deliveries and {} jobs to the other processes", back->deliveries, back->jobs);
  {
    std::lock_guard lock(p.housekeeping_mutex);
    p.stopping = true;
  }
  p.housekeeping_wake.notify_all();
  if (p.housekeeping.joinable()) p.housekeeping.join();
  p.core.reset();
  spdlog::info("Deputy stopped cleanly");
}

void App::stop() {
  if (parts_->server) parts_->server->stop();
}

}  // namespace deputy::server
