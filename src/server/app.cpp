#include "server/app.h"

#include <spdlog/spdlog.h>

#include <thread>

#include "bot/bot.h"
#include "engine/ingest.h"
#include "engine/workers.h"
#include "http/client.h"
#include "http/server.h"
#include "metrics/metrics.h"
#include "recipes/recipe.h"
#include "server/slack_endpoint.h"
#include "slack/web_api.h"
#include "store/database.h"
#include "store/inbox.h"

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
  std::unique_ptr<bot::Bot> bot;
  std::unique_ptr<engine::Workers> workers;
  std::unique_ptr<engine::Ingest> ingest;
  std::unique_ptr<SlackEndpoint> slack_endpoint;
  std::unique_ptr<http::Server> server;
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
  auto recipes = recipes::load_folder(cfg.recipes_dir);
  if (!recipes) return recipes.status();
  p.catalog.recipes = std::move(recipes).value();
  spdlog::info("loaded {} recipes from {}", p.catalog.recipes.size(), cfg.recipes_dir);
  auto database = store::open(cfg.database, cfg.server.workers + 3);
  if (!database) return database.status();
  p.database = std::move(database).value();
  p.inbox = std::make_unique<store::Inbox>(*p.database, SystemClock::instance(), kDedupeWindow);
  if (p.database->dialect() == store::Dialect::kSqlite) {
    // Only this process uses the file, so anything marked working was cut off by a crash.
    if (Status s = p.inbox->requeue_all_working(); !s.ok()) return s;
  }

  p.metrics.describe("deputy_slack_api_calls_total", "counter", "Slack Web API calls by method and outcome.");
  p.metrics.describe("deputy_jobs", "gauge", "Queued Slack deliveries and jobs by state.");
  p.metrics.gauge_callback("deputy_jobs", [inbox = p.inbox.get()] {
    std::vector<std::pair<metrics::Labels, double>> out;
    for (const char* state : {"queued", "working", "failed"}) out.push_back({{{"kind", "delivery"}, {"state", state}}, 0});
    if (auto counts = inbox->count_by_state()) {
      for (auto& [labels, value] : out) {
        auto it = counts->find(labels[1].second);
        if (it != counts->end()) value = static_cast<double>(it->second);
      }
    }
    return out;
  });

  p.slack = std::make_unique<slack::WebApi>(p.http_client, slack::WebApiSettings{cfg.slack.api_url, cfg.slack.bot_token},
                                            &p.metrics);
  p.bot = std::make_unique<bot::Bot>(*p.slack, p.catalog);
  p.workers = std::make_unique<engine::Workers>(
      *p.inbox, [bot = p.bot.get()](const store::ClaimedDelivery& d) { return bot->handle(d); }, cfg.server.workers);
  p.ingest = std::make_unique<engine::Ingest>(*p.inbox, [workers = p.workers.get()] { workers->notify(); });
  p.slack_endpoint = std::make_unique<SlackEndpoint>(cfg.slack.signing_secret, *p.ingest, SystemClock::instance(), p.metrics);

  http::Router router;
  router.add("POST", "/slack/events", [ep = p.slack_endpoint.get()](http::Request&& r, http::Reply reply) {
    ep->handle(std::move(r), std::move(reply));
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
      lock.lock();
      p.housekeeping_wake.wait_for(lock, std::chrono::minutes(5), [&] { return p.stopping; });
    }
  });
  unsigned io_threads = p.config.server.io_threads ? p.config.server.io_threads : std::max(1u, std::thread::hardware_concurrency());
  p.server->run(io_threads);
  // The server has stopped and every request in flight has its answer; now drain the rest.
  p.ingest->stop();
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
