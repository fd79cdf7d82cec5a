#include "server/app.h"

#include <spdlog/spdlog.h>

#include <condition_variable>
#include <deque>
#include <functional>
#include <mutex>
#include <optional>
#include <thread>

#include "bot/bot.h"
#include "engine/ingest.h"
#include "engine/job_runner.h"
#include "engine/workers.h"
#include "http/client.h"
#include "http/server.h"
#include "metrics/metrics.h"
#include "recipes/recipe.h"
#include "oauth/apps.h"
#include "oauth/protocol.h"
#include "oauth/service.h"
#include "server/keys.h"
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

// A few threads for HTTP handlers that must wait on other servers (OAuth token endpoints).
class BlockingPool {
 public:
  explicit BlockingPool(unsigned threads) {
    for (unsigned i = 0; i < threads; ++i) threads_.emplace_back([this] { loop(); });
  }
  ~BlockingPool() { stop(); }
  void post(std::function<void()> task) {
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

// Slack's last retry comes about five minutes after the first try; keep keys well past it.
constexpr std::chrono::seconds kDedupeWindow{3600};

}  // namespace

struct App::Parts {
  config::Config config;
  metrics::Registry metrics;
  std::unique_ptr<store::Database> database;
  std::unique_ptr<store::Inbox> inbox;
  http::CurlClient http_client;
  std::unique_ptr<slack::WebApi> slack;
  RecipeCatalog catalog;
  std::unique_ptr<vault::TokenVault> vault;
  std::unique_ptr<store::Connections> connections;
  std::unique_ptr<store::OAuthStates> oauth_states;
  std::unique_ptr<oauth::Protocol> protocol;
  std::unique_ptr<oauth::ConnectionService> connection_service;
  std::unique_ptr<store::Jobs> jobs;
  std::unique_ptr<engine::JobRunner> runner;
  std::unique_ptr<bot::Bot> bot;
  std::unique_ptr<engine::Workers> workers;
  std::unique_ptr<engine::Ingest> ingest;
  std::unique_ptr<SlackEndpoint> slack_endpoint;
  std::unique_ptr<http::Server> server;
  BlockingPool oauth_pool{2};
  std::thread housekeeping;
  std::mutex housekeeping_mutex;
  std::condition_variable housekeeping_wake;
  bool stopping = false;
};

App::App(config::Config config) : parts_(std::make_unique<Parts>()) { parts_->config = std::move(config); }

App::~App() = default;

Status App::start() {
  Parts& p = *parts_;
  const auto& cfg = p.config;
  auto endpoint = cfg.listen_endpoint();
  if (!endpoint) return endpoint.status();

  unsigned io_threads = cfg.server.io_threads ? cfg.server.io_threads : std::max(1u, std::thread::hardware_concurrency());
  auto apps = oauth::build_catalogue(cfg.apps);
  if (!apps) return apps.status();
  auto recipes = recipes::load_folder(cfg.recipes_dir);
  if (!recipes) return recipes.status();
  for (const auto& recipe : *recipes) {
    auto app = apps->find(recipe.app);
    if (app == apps->end()) return InvalidArgument(recipe.file + ": app: '" + recipe.app + "' is not configured under apps:");
    if (recipe.verify_user_access_at_runtime && !app->second.oauth2)
      return InvalidArgument(recipe.file + ": verify_user_access_at_runtime: " + app->second.display_name +
                             " is not an OAuth2 app, so it cannot act as each person; use a shared connection");
  }
  p.catalog.recipes = std::move(recipes).value();
  spdlog::info("loaded {} recipes from {}", p.catalog.recipes.size(), cfg.recipes_dir);
  auto database = store::open(cfg.database, cfg.server.workers + 3);
  if (!database) return database.status();
  p.database = std::move(database).value();
  p.inbox = std::make_unique<store::Inbox>(*p.database, SystemClock::instance(), kDedupeWindow);
  p.jobs = std::make_unique<store::Jobs>(*p.database, SystemClock::instance());
  if (p.database->dialect() == store::Dialect::kSqlite) {
    // Only this process uses the file, so anything marked working was cut off by a crash.
    if (Status s = p.inbox->requeue_all_working(); !s.ok()) return s;
    if (Status s = p.jobs->release_all_running(); !s.ok()) return s;
  }

  p.metrics.describe("deputy_slack_api_calls_total", "counter", "Slack Web API calls by method and outcome.");
  p.metrics.describe("deputy_jobs", "gauge", "Queued Slack deliveries and jobs by state.");
  p.metrics.gauge_callback("deputy_jobs", [inbox = p.inbox.get(), jobs = p.jobs.get()] {
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

  // The keyring: from DEPUTY_KEYRING, or the key file (created on first start). Anything
  // wrong with an existing one stops the start: better down than handing out garbage.
  std::optional<vault::Keyring> keyring;
  if (!cfg.keyring_json.empty()) {
    auto parsed = vault::Keyring::parse(cfg.keyring_json, "DEPUTY_KEYRING");
    if (!parsed) return parsed.status();
    keyring = std::move(parsed).value();
    p.vault = std::make_unique<vault::TokenVault>(*keyring, "");
  } else {
    auto loaded = vault::load_or_create(cfg.keys_file, SystemClock::instance().unix_seconds());
    if (!loaded) return loaded.status();
    if (loaded->created)
      spdlog::warn("created a new encryption keyring at {} (mode 0600). Back it up: without it the stored logins cannot be read.",
                   cfg.keys_file);
    keyring = loaded->keyring;
    p.vault = std::make_unique<vault::TokenVault>(*keyring, cfg.keys_file);
  }
  if (Status s = verify_keyring(*p.vault, *keyring, *p.database, SystemClock::instance()); !s.ok()) return s;

  p.slack = std::make_unique<slack::WebApi>(p.http_client, slack::WebApiSettings{cfg.slack.api_url, cfg.slack.bot_token},
                                            &p.metrics);
  p.connections = std::make_unique<store::Connections>(*p.database, SystemClock::instance());
  p.oauth_states = std::make_unique<store::OAuthStates>(*p.database, SystemClock::instance());
  p.protocol = std::make_unique<oauth::Protocol>(p.http_client);
  p.connection_service = std::make_unique<oauth::ConnectionService>(
      std::move(apps).value(), *p.protocol, *p.connections, *p.oauth_states, *p.vault, *p.slack, SystemClock::instance(),
      p.metrics, oauth::ServiceOptions{cfg.effective_public_url()});
  p.runner = std::make_unique<engine::JobRunner>(p.catalog.recipes, *p.jobs, *p.connection_service, *p.connections, p.http_client,
                                                 *p.slack, p.metrics);
  p.connection_service->on_connected([runner = p.runner.get()](const oauth::Connected& c) { runner->on_connected(c); });
  p.bot = std::make_unique<bot::Bot>(*p.slack, p.catalog, *p.connection_service, cfg.admins, p.runner.get(), &p.catalog.recipes);
  p.workers = std::make_unique<engine::Workers>(
      *p.inbox, [bot = p.bot.get()](const store::ClaimedDelivery& d) { return bot->handle(d); }, cfg.server.workers);
  p.ingest = std::make_unique<engine::Ingest>(*p.inbox, [workers = p.workers.get()] { workers->notify(); });
  p.runner->set_wake([workers = p.workers.get()] { workers->notify(); });
  p.slack_endpoint = std::make_unique<SlackEndpoint>(cfg.slack.signing_secret, *p.ingest, SystemClock::instance(), p.metrics);

  http::Router router;
  router.add("POST", "/slack/events", [ep = p.slack_endpoint.get()](http::Request&& r, http::Reply reply) {
    ep->handle(std::move(r), std::move(reply));
  });
  router.add("GET", "/oauth/start", [svc = p.connection_service.get()](http::Request&& r, http::Reply reply) {
    svc->handle_start(r, std::move(reply));
  });
  // The callback talks to the app's token endpoint; that blocking work stays off the I/O threads.
  router.add("GET", "/oauth/callback", [&p](http::Request&& r, http::Reply reply) {
    p.oauth_pool.post([svc = p.connection_service.get(), r = std::move(r), reply = std::move(reply)]() mutable {
      svc->handle_callback(r, std::move(reply));
    });
  });
  router.add("GET", "/healthz", [](http::Request&&, http::Reply reply) { reply(http::Response::text(200, "ok\n")); });
  router.add("GET", "/readyz", [db = p.database.get()](http::Request&&, http::Reply reply) {
    Status s = db->ping();
    reply(s.ok() ? http::Response::text(200, "ready\n") : http::Response::text(503, "database unreachable\n"));
  });
  router.add("GET", "/metrics", [m = &p.metrics](http::Request&&, http::Reply reply) {
    auto r = http::Response::text(200, m->render());
    r.content_type = "text/plain; version=0.0.4; charset=utf-8";
    reply(std::move(r));
  });

  http::ServerOptions options;
  options.max_body_bytes = cfg.server.max_body_bytes;
  options.header_limit_bytes = cfg.server.header_limit_bytes;
  options.read_timeout = std::chrono::seconds(cfg.server.read_timeout_seconds);
  options.idle_timeout = std::chrono::seconds(cfg.server.idle_timeout_seconds);
  p.server = std::make_unique<http::Server>(options, std::move(router), &p.metrics);
  if (Status s = p.server->listen(endpoint->first, endpoint->second); !s.ok()) return s;
  spdlog::info("Deputy listening on {}:{} ({} I/O threads, {} workers, database {})", endpoint->first, p.server->port(),
               io_threads, cfg.server.workers, p.database->dialect() == store::Dialect::kSqlite ? "SQLite" : "PostgreSQL");
  return Status::Ok();
}

uint16_t App::port() const { return parts_->server->port(); }

void App::run() {
  Parts& p = *parts_;
  p.workers->start();
  p.workers->notify();
  p.housekeeping = std::thread([&p] {
    std::unique_lock lock(p.housekeeping_mutex);
    while (!p.stopping) {
      lock.unlock();
      if (Status s = p.inbox->purge_expired_dedupe_keys(); !s.ok()) spdlog::warn("purging dedupe keys: {}", s.message());
      if (Status s = p.oauth_states->purge_expired(); !s.ok()) spdlog::warn("purging login states: {}", s.message());
      lock.lock();
      p.housekeeping_wake.wait_for(lock, std::chrono::minutes(5), [&] { return p.stopping; });
    }
  });
  unsigned io_threads = p.config.server.io_threads ? p.config.server.io_threads : std::max(1u, std::thread::hardware_concurrency());
  p.server->run(io_threads);
  // The server has stopped and every request in flight has its answer; now drain the rest.
  p.ingest->stop();
  p.oauth_pool.stop();
  p.workers->stop();
  {
    std::lock_guard lock(p.housekeeping_mutex);
    p.stopping = true;
  }
  p.housekeeping_wake.notify_all();
  if (p.housekeeping.joinable()) p.housekeeping.join();
  p.database.reset();
  spdlog::info("Deputy stopped cleanly");
}

void App::stop() {
  if (parts_->server) parts_->server->stop();
}

}  // namespace deputy::server
