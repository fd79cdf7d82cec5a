// A native stand-in for the business apps `bench/jobs` calls, fast enough not to be the limit:
// it answers Salesforce's `POST …/sobjects/Opportunity` and ServiceNow's
// `POST /api/now/table/incident` after a set delay, without a thread per call.
//
// Every call must carry a bearer token that the authorization server says is active
// (RFC 7662 introspection, answers cached for a minute as API gateways do), as the Node fake
// in tests/support/fake-apps.mjs checks it. It keeps no records, only counts:
// `GET /_stats` answers {"created":{…},"in_flight":{…},"rejected":n}.
//
// Usage: deputy_fake_app --introspection-url URL --client-id ID --client-secret SECRET
//          [--port 0] [--delay-ms 250] [--delay PREFIX=MS]… [--threads 1]
// It prints {"port":N} on one line once it listens, and exits on SIGINT or SIGTERM.
#include <atomic>
#include <chrono>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <iostream>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <unordered_map>
#include <vector>

#include <boost/asio/io_context.hpp>
#include <boost/asio/signal_set.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/executor_work_guard.hpp>
#include <nlohmann/json.hpp>

#include "common/encoding.h"
#include "http/client_beast.h"
#include "http/server.h"

namespace {

using namespace deputy;
using Clock = std::chrono::steady_clock;

struct Options {
  uint16_t port = 0;
  std::string introspection_url;
  std::string client_id;
  std::string client_secret;
  std::chrono::milliseconds delay{0};
  std::vector<std::pair<std::string, std::chrono::milliseconds>> delay_by_prefix;
  unsigned threads = 1;
};

// The created record of each kind of call, by path.
struct Endpoint {
  std::string path;
  std::string object;
  std::string prefix;  // the app's prefix, for in-flight counts and delays
};

const std::vector<Endpoint>& endpoints() {
  static const std::vector<Endpoint> all = {
      {"/services/data/v60.0/sobjects/Opportunity", "Opportunity", "/services/data/v60.0"},
      {"/api/now/table/incident", "incident", "/api/now"},
  };
  return all;
}

class FakeApp {
 public:
  explicit FakeApp(Options options)
      : options_(std::move(options)), timer_work_(boost::asio::make_work_guard(timers_)) {
    for (const Endpoint& e : endpoints()) {
      counts_[e.object];
      in_flight_[e.prefix];
    }
    credentials_ = "Basic " + base64_encode(url_encode(options_.client_id) + ":" + url_encode(options_.client_secret));
  }

  http::Router router() {
    http::Router router;
    for (const Endpoint& e : endpoints()) {
      router.add("POST", e.path, [this, &e](http::Request&& request, http::Reply reply) {
        answer(e, std::move(request), std::move(reply));
      });
    }
    router.add("GET", "/_stats", [this](http::Request&&, http::Reply reply) { reply(http::Response::json(200, stats())); });
    return router;
  }

  void run_timers() {
    std::thread([this] { timers_.run(); }).detach();
  }

 private:
  void answer(const Endpoint& endpoint, http::Request&& request, http::Reply reply) {
    const std::string auth = request.header("authorization");
    if (auth.rfind("Bearer ", 0) != 0) return reject(std::move(reply));
    std::string token = auth.substr(7);
    auto proceed = [this, &endpoint, body = std::move(request.body), reply](bool active) mutable {
      if (!active) return reject(std::move(reply));
      if (nlohmann::json::parse(body, nullptr, false).is_discarded())
        return reply(http::Response::json(400, R"([{"errorCode":"JSON_PARSER_ERROR","message":"malformed JSON"}])"));
      later(endpoint, std::move(reply));
    };
    if (std::optional<bool> known = cached(token)) return proceed(*known);
    introspect(std::move(token), std::move(proceed));
  }

  void reject(http::Reply reply) {
    rejected_.fetch_add(1);
    reply(http::Response::json(401, R"([{"errorCode":"INVALID_SESSION_ID","message":"Session expired or invalid"}])"));
  }

  // Answers after the endpoint's delay, counting the call as in flight meanwhile.
  void later(const Endpoint& endpoint, http::Reply reply) {
    std::chrono::milliseconds delay = options_.delay;
    for (const auto& [prefix, ms] : options_.delay_by_prefix)
      if (endpoint.path.rfind(prefix, 0) == 0) delay = ms;
    in_flight_.at(endpoint.prefix).fetch_add(1);
    auto timer = std::make_shared<boost::asio::steady_timer>(timers_, delay);
    timer->async_wait([this, timer, &endpoint, reply = std::move(reply)](boost::system::error_code) {
      in_flight_.at(endpoint.prefix).fetch_sub(1);
      const uint64_t n = counts_.at(endpoint.object).fetch_add(1) + 1;
      if (endpoint.object == "Opportunity") {
        char id[19];
        std::snprintf(id, sizeof id, "006%015llu", static_cast<unsigned long long>(n));
        return reply(http::Response::json(201, std::string(R"({"id":")") + id + R"(","success":true,"errors":[]})"));
      }
      char sys_id[33];
      std::snprintf(sys_id, sizeof sys_id, "%032llx", static_cast<unsigned long long>(n));
      reply(http::Response::json(201, std::string(R"({"result":{"sys_id":")") + sys_id + R"(","number":"INC)" +
                                          std::to_string(10000000 + n) + R"(","state":"1"}})"));
    });
  }

  std::optional<bool> cached(const std::string& token) {
    std::lock_guard lock(cache_mutex_);
    auto it = cache_.find(token);
    if (it == cache_.end() || it->second.until < Clock::now()) return std::nullopt;
    return it->second.active;
  }

  template <typename Then>
  void introspect(std::string token, Then then) {
    http::ClientRequest request;
    request.method = "POST";
    request.url = options_.introspection_url;
    request.headers = {{"Content-Type", "application/x-www-form-urlencoded"}, {"Authorization", credentials_}};
    request.body = "token=" + url_encode(token) + "&token_type_hint=access_token";
    request.idempotent = true;
    request.timeout = std::chrono::seconds(10);
    client_.start(std::move(request), [this, token = std::move(token), then = std::move(then)](http::ClientOutcome outcome) mutable {
      bool active = false;
      if (outcome.reached == http::Reached::kAnswered && outcome.response.status == 200) {
        const auto info = nlohmann::json::parse(outcome.response.body, nullptr, false);
        active = info.is_object() && info.value("active", false);
      }
      {
        std::lock_guard lock(cache_mutex_);
        cache_[token] = {active, Clock::now() + std::chrono::minutes(1)};
      }
      then(active);
    });
  }

  std::string stats() const {
    nlohmann::json created = nlohmann::json::object(), in_flight = nlohmann::json::object();
    for (const auto& [object, n] : counts_) created[object] = n.load();
    for (const auto& [prefix, n] : in_flight_) in_flight[prefix] = n.load();
    return nlohmann::json{{"created", created}, {"in_flight", in_flight}, {"rejected", rejected_.load()}}.dump();
  }

  struct Introspected {
    bool active = false;
    Clock::time_point until;
  };

  Options options_;
  std::string credentials_;
  http::BeastClient client_;
  boost::asio::io_context timers_;
  boost::asio::executor_work_guard<boost::asio::io_context::executor_type> timer_work_;
  // Keys are fixed at construction; only the counts change.
  std::map<std::string, std::atomic<uint64_t>> counts_;
  std::map<std::string, std::atomic<int64_t>> in_flight_;
  std::atomic<uint64_t> rejected_{0};
  std::mutex cache_mutex_;
  std::unordered_map<std::string, Introspected> cache_;
};

[[noreturn]] void usage(const std::string& problem) {
  std::cerr << "deputy_fake_app: " << problem
            << "\nusage: deputy_fake_app --introspection-url URL --client-id ID --client-secret SECRET"
               " [--port N] [--delay-ms MS] [--delay PREFIX=MS]... [--threads N]\n";
  std::exit(2);
}

Options parse(int argc, char** argv) {
  Options o;
  for (int i = 1; i < argc; ++i) {
    const std::string flag = argv[i];
    if (i + 1 >= argc) usage(flag + " needs a value");
    const std::string value = argv[++i];
    try {
      if (flag == "--port") o.port = static_cast<uint16_t>(std::stoul(value));
      else if (flag == "--introspection-url") o.introspection_url = value;
      else if (flag == "--client-id") o.client_id = value;
      else if (flag == "--client-secret") o.client_secret = value;
      else if (flag == "--delay-ms") o.delay = std::chrono::milliseconds(std::stol(value));
      else if (flag == "--threads") o.threads = static_cast<unsigned>(std::stoul(value));
      else if (flag == "--delay") {
        const size_t eq = value.find('=');
        if (eq == std::string::npos) usage("--delay takes PREFIX=MS, not " + value);
        o.delay_by_prefix.emplace_back(value.substr(0, eq), std::chrono::milliseconds(std::stol(value.substr(eq + 1))));
      } else usage("unknown option " + flag);
    } catch (const std::logic_error&) {
      usage(flag + " takes a number, not " + value);
    }
  }
  if (o.introspection_url.empty() || o.client_id.empty()) usage("--introspection-url and --client-id are required");
  if (o.threads == 0) usage("--threads must be at least 1");
  return o;
}

}  // namespace

int main(int argc, char** argv) {
  Options options = parse(argc, argv);
  const unsigned threads = options.threads;
  const uint16_t port = options.port;
  FakeApp app(std::move(options));
  http::ServerOptions server_options;
  server_options.idle_timeout = std::chrono::seconds(120);
  http::Server server(server_options, app.router(), nullptr);
  if (Status listening = server.listen("127.0.0.1", port); !listening.ok()) {
    std::cerr << "deputy_fake_app: " << listening.message() << "\n";
    return 1;
  }
  std::cout << R"({"port":)" << server.port() << "}" << std::endl;

  // A bench tool: it stops at once, calls still waiting on their delay included.
  boost::asio::io_context signals_loop;
  boost::asio::signal_set signals(signals_loop, SIGINT, SIGTERM);
  signals.async_wait([](boost::system::error_code, int) { std::_Exit(0); });
  std::thread signal_thread([&] { signals_loop.run(); });
  app.run_timers();
  server.run(threads);
  signal_thread.join();
  return 0;
}
