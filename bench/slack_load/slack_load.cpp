// The Slack side of `bench/jobs`, native, so that the benchmark measures Deputy rather than
// Node: it sends signed slash commands to Deputy as Slack does (form body, v0 signature,
// X-Slack-Request-Timestamp) and is the `response_url` each command names, answering after
// the set Slack latency. A lane sends its next command once its previous one was answered.
//
// Usage: deputy_slack_load --deputy-url URL --signing-secret S --team T --app A
//          --users ID:NAME[,ID:NAME…] --text 'create opportunity bench-{i} {i} 2026-12-31'
//          --expect 'Created opportunity' [--jobs 1000] [--warmup 0] [--concurrency 32]
//          [--slack-delay-ms 0]
// It runs the warm-up, prints {"event":"warm"}, waits for a line on stdin (the caller takes
// its readings, or sends more work through its own fake), runs the measured jobs and prints
// one JSON line: seconds, the latencies' percentiles, and how many answers came twice.
// An answer without the expected text stops it with exit code 1.
#include <algorithm>
#include <atomic>
#include <chrono>
#include <cmath>
#include <condition_variable>
#include <cstdio>
#include <cstdlib>
#include <iostream>
#include <memory>
#include <mutex>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>
#include <nlohmann/json.hpp>

#include "common/encoding.h"
#include "http/client_beast.h"
#include "http/server.h"
#include "slack/signature.h"

namespace {

using namespace deputy;
using Clock = std::chrono::steady_clock;

struct Options {
  std::string deputy_url;
  std::string signing_secret;
  std::string team = "T0DEPUTY";
  std::string app = "A0DEPUTY";
  std::vector<std::pair<std::string, std::string>> users;
  std::string text;
  std::string expect;
  size_t jobs = 1000;
  size_t warmup = 0;
  size_t concurrency = 32;
  std::chrono::milliseconds slack_delay{0};
};

[[noreturn]] void fail(const std::string& problem) {
  std::cerr << "deputy_slack_load: " << problem << "\n";
  std::_Exit(1);
}

std::string replace_all(std::string text, const std::string& from, const std::string& to) {
  for (size_t at = text.find(from); at != std::string::npos; at = text.find(from, at + to.size()))
    text.replace(at, from.size(), to);
  return text;
}

// One phase: jobs [from, to) on `concurrency` lanes; each job's time from sending the command
// to Slack answering its response_url.
class Load {
 public:
  Load(const Options& options, uint16_t port)
      : options_(options), verifier_(options.signing_secret),
        response_base_("http://127.0.0.1:" + std::to_string(port) + "/response?id="),
        timer_work_(boost::asio::make_work_guard(timers_)) {
    timer_thread_ = std::thread([this] { timers_.run(); });
  }
  ~Load() {
    timer_work_.reset();
    timers_.stop();
    timer_thread_.join();
  }

  // The answer Slack gives a response_url POST, after its latency; counts the job done.
  void answered(http::Request&& request, http::Reply reply) {
    const std::string id_text = request.query_param("id");
    size_t id = 0;
    try {
      id = std::stoul(id_text);
    } catch (const std::logic_error&) {
      return reply(http::Response::text(404, "no such response_url"));
    }
    const auto body = nlohmann::json::parse(request.body, nullptr, false);
    const std::string text = body.is_object() && body["text"].is_string() ? body["text"].get<std::string>() : "";
    if (text.find(options_.expect) == std::string::npos) fail("job " + id_text + " was answered: " + request.body);
    auto timer = std::make_shared<boost::asio::steady_timer>(timers_, options_.slack_delay);
    timer->async_wait([this, timer, id, reply = std::move(reply)](boost::system::error_code) {
      reply(http::Response::text(200, "ok"));
      finish(id);
    });
  }

  std::vector<double> run(size_t from, size_t to) {
    {
      std::lock_guard lock(mutex_);
      started_.assign(to, Clock::time_point{});
      done_.assign(to, false);
      latencies_ms_.clear();
      next_ = from;
      end_ = to;
      remaining_ = to - from;
    }
    const size_t lanes = std::min(options_.concurrency, to - from);
    for (size_t lane = 0; lane < lanes; ++lane) send_next();
    std::unique_lock lock(mutex_);
    all_done_.wait(lock, [this] { return remaining_ == 0; });
    return latencies_ms_;
  }

  size_t answered_twice() const { return answered_twice_.load(); }

 private:
  void finish(size_t id) {
    {
      std::lock_guard lock(mutex_);
      if (id >= done_.size() || started_[id] == Clock::time_point{}) return;  // not of this phase
      if (done_[id]) {
        answered_twice_.fetch_add(1);
        return;
      }
      done_[id] = true;
      latencies_ms_.push_back(std::chrono::duration<double, std::milli>(Clock::now() - started_[id]).count());
      if (--remaining_ == 0) all_done_.notify_all();
    }
    send_next();
  }

  void send_next() {
    size_t id;
    {
      std::lock_guard lock(mutex_);
      if (next_ >= end_) return;
      id = next_++;
      started_[id] = Clock::now();
    }
    const auto& [user, name] = options_.users[id % options_.users.size()];
    const std::string n = std::to_string(id);
    const std::string text = replace_all(options_.text, "{i}", n);
    const std::string trigger = std::to_string(random_()) + "." + std::to_string(random_()) + ".bench" + n;
    std::string body = "token=fakeVerificationToken&team_id=" + url_encode(options_.team) +
                       "&team_domain=deputy-test&channel_id=C0GENERAL&channel_name=general&user_id=" + url_encode(user) +
                       "&user_name=" + url_encode(name) + "&command=%2Fdeputy&text=" + url_encode(text) +
                       "&api_app_id=" + url_encode(options_.app) + "&is_enterprise_install=false&response_url=" +
                       url_encode(response_base_ + n) + "&trigger_id=" + url_encode(trigger);
    const std::string timestamp = std::to_string(
        std::chrono::duration_cast<std::chrono::seconds>(std::chrono::system_clock::now().time_since_epoch()).count());
    http::ClientRequest request;
    request.method = "POST";
    request.url = options_.deputy_url + "/slack/events";
    request.headers = {{"Content-Type", "application/x-www-form-urlencoded"},
                       {"X-Slack-Request-Timestamp", timestamp},
                       {"X-Slack-Signature", verifier_.sign(timestamp, body)}};
    request.body = std::move(body);
    // Slack's own retries are not modelled: a command is sent once, on a kept-alive connection.
    request.idempotent = true;
    request.timeout = std::chrono::seconds(30);
    client_.start(std::move(request), [n](http::ClientOutcome outcome) {
      if (outcome.reached != http::Reached::kAnswered) fail("command " + n + ": " + outcome.error.message());
      if (outcome.response.status != 200)
        fail("command " + n + " got " + std::to_string(outcome.response.status) + ": " + outcome.response.body);
    });
  }

  const Options& options_;
  slack::RequestVerifier verifier_;
  const std::string response_base_;
  std::minstd_rand random_{std::random_device{}()};
  http::BeastClient client_;
  boost::asio::io_context timers_;
  boost::asio::executor_work_guard<boost::asio::io_context::executor_type> timer_work_;
  std::thread timer_thread_;

  std::mutex mutex_;
  std::condition_variable all_done_;
  std::vector<Clock::time_point> started_;
  std::vector<bool> done_;
  std::vector<double> latencies_ms_;
  size_t next_ = 0, end_ = 0, remaining_ = 0;
  std::atomic<size_t> answered_twice_{0};
};

[[noreturn]] void usage(const std::string& problem) {
  std::cerr << "deputy_slack_load: " << problem
            << "\nusage: deputy_slack_load --deputy-url URL --signing-secret S --users ID:NAME[,…] --text T --expect E"
               " [--team T] [--app A] [--jobs N] [--warmup N] [--concurrency N] [--slack-delay-ms MS]\n";
  std::exit(2);
}

Options parse(int argc, char** argv) {
  Options o;
  for (int i = 1; i < argc; ++i) {
    const std::string flag = argv[i];
    if (i + 1 >= argc) usage(flag + " needs a value");
    const std::string value = argv[++i];
    try {
      if (flag == "--deputy-url") o.deputy_url = value;
      else if (flag == "--signing-secret") o.signing_secret = value;
      else if (flag == "--team") o.team = value;
      else if (flag == "--app") o.app = value;
      else if (flag == "--text") o.text = value;
      else if (flag == "--expect") o.expect = value;
      else if (flag == "--jobs") o.jobs = std::stoul(value);
      else if (flag == "--warmup") o.warmup = std::stoul(value);
      else if (flag == "--concurrency") o.concurrency = std::stoul(value);
      else if (flag == "--slack-delay-ms") o.slack_delay = std::chrono::milliseconds(std::stol(value));
      else if (flag == "--users") {
        for (size_t at = 0; at < value.size();) {
          size_t comma = value.find(',', at);
          if (comma == std::string::npos) comma = value.size();
          const std::string pair = value.substr(at, comma - at);
          const size_t colon = pair.find(':');
          if (colon == std::string::npos) usage("--users takes ID:NAME pairs, not " + pair);
          o.users.emplace_back(pair.substr(0, colon), pair.substr(colon + 1));
          at = comma + 1;
        }
      } else usage("unknown option " + flag);
    } catch (const std::logic_error&) {
      usage(flag + " takes a number, not " + value);
    }
  }
  if (o.deputy_url.empty() || o.signing_secret.empty() || o.users.empty() || o.text.empty() || o.expect.empty())
    usage("--deputy-url, --signing-secret, --users, --text and --expect are required");
  if (o.jobs == 0 || o.concurrency == 0) usage("--jobs and --concurrency must be at least 1");
  return o;
}

std::string summary(std::vector<double> latencies, double seconds, size_t twice) {
  std::sort(latencies.begin(), latencies.end());
  auto pct = [&](double p) {
    const size_t at = std::min(latencies.size() - 1, static_cast<size_t>(p / 100 * static_cast<double>(latencies.size())));
    return std::round(latencies[at] * 10) / 10;
  };
  return nlohmann::json{{"jobs", latencies.size()}, {"seconds", std::round(seconds * 100) / 100},
                        {"p50_ms", pct(50)}, {"p90_ms", pct(90)}, {"p99_ms", pct(99)}, {"max_ms", pct(100)},
                        {"answered_twice", twice}}
      .dump();
}

}  // namespace

int main(int argc, char** argv) {
  const Options options = parse(argc, argv);
  std::unique_ptr<Load> load;
  http::Router router;
  router.add("POST", "/response", [&load](http::Request&& request, http::Reply reply) {
    load->answered(std::move(request), std::move(reply));
  });
  http::ServerOptions server_options;
  server_options.idle_timeout = std::chrono::seconds(120);
  http::Server server(server_options, std::move(router), nullptr);
  if (Status listening = server.listen("127.0.0.1", 0); !listening.ok()) fail(listening.message());
  load = std::make_unique<Load>(options, server.port());
  std::thread io([&server] { server.run(1); });

  if (options.warmup > 0) load->run(0, options.warmup);
  std::cout << R"({"event":"warm"})" << std::endl;
  std::string go;
  std::getline(std::cin, go);
  const auto t0 = Clock::now();
  std::vector<double> latencies = load->run(options.warmup, options.warmup + options.jobs);
  const double seconds = std::chrono::duration<double>(Clock::now() - t0).count();
  std::cout << summary(std::move(latencies), seconds, load->answered_twice()) << std::endl;
  // A bench tool: answers still on their way are not waited for.
  std::_Exit(0);
}
