#include "http/server.h"

#include <gtest/gtest.h>

#include <boost/asio/connect.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/write.hpp>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <signal.h>
#include <spawn.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <filesystem>
#include <chrono>
#include <mutex>
#include <thread>
#include <vector>

#include "metrics/metrics.h"

namespace deputy::http {
namespace {

namespace net = boost::asio;
using tcp = net::ip::tcp;

// A real server on a loopback port, talked to with raw bytes so the test sees the wire.
class HttpServerTest : public ::testing::Test {
 protected:
  virtual ServerOptions options() const {
    ServerOptions options;
    options.max_body_bytes = 64;
    return options;
  }

  void SetUp() override {
    Router router;
    router.add("POST", "/echo", [](Request&& request, Reply reply) {
      Response response = Response::text(200, request.header("x-probe") + "|" + request.body);
      response.headers.emplace_back("X-Seen-Path", request.path);
      reply(std::move(response));
    });
    // Answers from another thread, as the Slack endpoint does once the database commits.
    router.add("GET", "/later", [this](Request&&, Reply reply) {
      std::lock_guard lock(answerers_mutex_);
      answerers_.emplace_back([reply = std::move(reply)] { reply(Response::json(202, "{}")); });
    });
    // Keeps the answer until the test gives it (held_replies).
    router.add("GET", "/held", [this](Request&&, Reply reply) {
      std::lock_guard lock(answerers_mutex_);
      held_.push_back(std::move(reply));
    });
    // Answers at once, and keeps its Reply afterwards, as an application may.
    router.add("GET", "/kept", [this](Request&&, Reply reply) {
      reply(Response::text(200, "ok"));
      std::lock_guard lock(answerers_mutex_);
      held_.push_back(std::move(reply));
    });
    server_ = std::make_unique<Server>(options(), std::move(router), &metrics_);
    ASSERT_TRUE(server_->listen("127.0.0.1", 0).ok());
    runner_ = std::thread([this] {
      server_->run(2);
      ran_out_ = true;
    });
  }
  void TearDown() override {
    {
      std::lock_guard lock(answerers_mutex_);
      for (auto& t : answerers_) t.join();
    }
    server_->stop();
    if (runner_.joinable()) runner_.join();
  }

  tcp::socket connect() {
    tcp::socket socket(io_);
    socket.connect(tcp::endpoint(net::ip::make_address("127.0.0.1"), server_->port()));
    return socket;
  }

  // What arrives within `within`, appended to `data`: the error is eof or a reset when the
  // server closed, timed_out when nothing came, so a wrong server fails a test, not hangs it.
  boost::system::error_code read_some(tcp::socket& socket, std::string& data,
                                      std::chrono::milliseconds within = std::chrono::seconds(5)) {
    char chunk[1024];
    boost::system::error_code result = net::error::timed_out;
    size_t got = 0;
    bool done = false;
    socket.async_read_some(net::buffer(chunk), [&](boost::system::error_code ec, size_t n) {
      done = true;
      result = ec;
      got = n;
    });
    io_.restart();
    io_.run_for(within);
    if (!done) {
      socket.cancel();
      io_.restart();
      io_.run();
      result = net::error::timed_out;
    }
    data.append(chunk, got);
    return result;
  }

  // Reads one response: head, then exactly Content-Length bytes of body.
  std::string read_response(tcp::socket& socket) {
    std::string data;
    size_t head_end;
    while ((head_end = data.find("\r\n\r\n")) == std::string::npos) {
      if (read_some(socket, data)) return data;
    }
    size_t length_at = data.find("Content-Length: ");
    size_t length = length_at == std::string::npos ? 0 : std::stoul(data.substr(length_at + 16));
    while (data.size() < head_end + 4 + length) {
      if (read_some(socket, data)) break;
    }
    return data;
  }

  // True when the server closes the connection within a second (its idle timeout is a minute).
  bool closed_by_server(tcp::socket& socket) {
    std::string ignored;
    auto ec = read_some(socket, ignored, std::chrono::seconds(1));
    return ec == net::error::eof || ec == net::error::connection_reset;
  }

  net::io_context io_;
  metrics::Registry metrics_;
  std::unique_ptr<Server> server_;
  std::thread runner_;
  std::mutex answerers_mutex_;
  std::vector<std::thread> answerers_;
  std::vector<Reply> held_;
  std::atomic<bool> ran_out_{false};

  double counter_value(const char* reason) {
    return metrics_.counter_value("deputy_http_connections_refused_total", {{"reason", reason}});
  }

  // The answers /held keeps, once `count` requests have come (empty if they did not).
  bool held_at_least(size_t count) {
    for (int i = 0; i < 500; ++i) {
      {
        std::lock_guard lock(answerers_mutex_);
        if (held_.size() >= count) return true;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    return false;
  }
  std::vector<Reply> held_replies(size_t count) {
    for (int i = 0; i < 500; ++i) {
      {
        std::lock_guard lock(answerers_mutex_);
        if (held_.size() >= count) return std::move(held_);
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    return {};
  }
};

TEST_F(HttpServerTest, KeepsHttp11ConnectionsOpenAndMatchesHeaderNamesInAnyCase) {
  tcp::socket socket = connect();
  for (int i = 0; i < 2; ++i) {
    net::write(socket, net::buffer(std::string("POST /echo?x=1 HTTP/1.1\r\nHost: t\r\nX-PROBE: p\r\nContent-Length: 3\r\n\r\nabc")));
    EXPECT_EQ(read_response(socket),
              "HTTP/1.1 200 OK\r\nServer: Deputy\r\nContent-Type: text/plain; charset=utf-8\r\nX-Seen-Path: /echo\r\n"
              "Content-Length: 5\r\n\r\np|abc")
        << i;
  }
}

TEST_F(HttpServerTest, CountsEachRouteAndStatusApartOnOneConnection) {
  // A connection keeps the series of its last route and status; a change must not be
  // counted under the old ones.
  tcp::socket socket = connect();
  const std::string post = "POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: 1\r\n\r\na";
  for (const std::string& request : {post, post, std::string("GET /echo HTTP/1.1\r\nHost: t\r\n\r\n"),
                                     std::string("POST /later HTTP/1.1\r\nHost: t\r\nContent-Length: 0\r\n\r\n"),
                                     std::string("GET /nowhere HTTP/1.1\r\nHost: t\r\n\r\n"), post}) {
    net::write(socket, net::buffer(request));
    EXPECT_FALSE(read_response(socket).empty());
  }
  auto count = [&](const std::string& route, const std::string& status) {
    return metrics_.counter_value("deputy_http_requests_total", {{"route", route}, {"status", status}});
  };
  EXPECT_EQ(count("/echo", "200"), 3);
  EXPECT_EQ(count("/echo", "405"), 1);
  EXPECT_EQ(count("/later", "405"), 1);  // another route with the same status
  EXPECT_EQ(count("unmatched", "404"), 1);
  const std::string text = metrics_.render();
  EXPECT_NE(text.find("deputy_http_request_duration_seconds_count{route=\"/echo\"} 4\n"), std::string::npos) << text;
  EXPECT_NE(text.find("deputy_http_request_duration_seconds_count{route=\"unmatched\"} 1\n"), std::string::npos) << text;
}

TEST_F(HttpServerTest, ClosesWhenTheClientAsksOrSpeaksHttp10) {
  tcp::socket socket = connect();
  net::write(socket, net::buffer(std::string("POST /echo HTTP/1.1\r\nHost: t\r\nConnection: close\r\nContent-Length: 1\r\n\r\nz")));
  std::string response = read_response(socket);
  EXPECT_NE(response.find("\r\nConnection: close\r\n"), std::string::npos) << response;
  EXPECT_TRUE(closed_by_server(socket));

  tcp::socket old = connect();
  net::write(old, net::buffer(std::string("POST /echo HTTP/1.0\r\nContent-Length: 1\r\n\r\nz")));
  response = read_response(old);
  EXPECT_EQ(response.rfind("HTTP/1.0 200 OK\r\n", 0), 0u) << response;
  EXPECT_TRUE(closed_by_server(old));

  tcp::socket kept = connect();
  for (int i = 0; i < 2; ++i) {
    net::write(kept, net::buffer(std::string("POST /echo HTTP/1.0\r\nConnection: keep-alive\r\nContent-Length: 1\r\n\r\nz")));
    response = read_response(kept);
    EXPECT_NE(response.find("\r\nConnection: keep-alive\r\n"), std::string::npos) << response;
  }
}

TEST_F(HttpServerTest, AnswersFromAnotherThreadAreWrittenOnTheConnection) {
  tcp::socket socket = connect();
  for (int i = 0; i < 3; ++i) {
    net::write(socket, net::buffer(std::string("GET /later HTTP/1.1\r\nHost: t\r\n\r\n")));
    EXPECT_EQ(read_response(socket),
              "HTTP/1.1 202 Accepted\r\nServer: Deputy\r\nContent-Type: application/json\r\nContent-Length: 2\r\n\r\n{}")
        << i;
  }
}

TEST_F(HttpServerTest, AnswersGivenTogetherReachEveryConnection) {
  // A group commit answers a whole batch at once, for connections on both I/O threads.
  std::vector<tcp::socket> sockets;
  for (int i = 0; i < 8; ++i) {
    sockets.push_back(connect());
    net::write(sockets.back(), net::buffer(std::string("GET /held HTTP/1.1\r\nHost: t\r\n\r\n")));
  }
  auto replies = held_replies(8);
  ASSERT_EQ(replies.size(), 8u);
  for (size_t i = 0; i < replies.size(); ++i) replies[i](Response::text(200, "answer " + std::to_string(i)));
  std::vector<std::string> bodies;
  for (auto& socket : sockets) {
    std::string response = read_response(socket);
    ASSERT_EQ(response.rfind("HTTP/1.1 200 OK\r\n", 0), 0u) << response;
    bodies.push_back(response.substr(response.find("\r\n\r\n") + 4));
  }
  std::sort(bodies.begin(), bodies.end());
  for (size_t i = 0; i < bodies.size(); ++i) EXPECT_EQ(bodies[i], "answer " + std::to_string(i));
}

TEST_F(HttpServerTest, AnAnswerOwedAtStopIsStillWritten) {
  // stop() lets the I/O loops end once their connections have; one still waiting for its
  // handler's answer (a commit finishing elsewhere) must keep its loop running until written.
  tcp::socket socket = connect();
  net::write(socket, net::buffer(std::string("GET /held HTTP/1.1\r\nHost: t\r\n\r\n")));
  auto replies = held_replies(1);
  ASSERT_EQ(replies.size(), 1u);
  server_->stop();
  std::this_thread::sleep_for(std::chrono::milliseconds(100));
  replies[0](Response::json(202, "{}"));
  std::string response = read_response(socket);
  EXPECT_EQ(response.rfind("HTTP/1.1 202 Accepted\r\n", 0), 0u) << response;
  EXPECT_NE(response.find("\r\nConnection: close\r\n"), std::string::npos) << response;
  EXPECT_TRUE(closed_by_server(socket));
}

TEST_F(HttpServerTest, AnAnsweredRequestDoesNotHoldStopBackThoughItsReplyIsKept) {
  tcp::socket socket = connect();
  net::write(socket, net::buffer(std::string("GET /kept HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n")));
  EXPECT_EQ(read_response(socket).rfind("HTTP/1.1 200 OK\r\n", 0), 0u);
  EXPECT_TRUE(closed_by_server(socket));
  auto kept = held_replies(1);
  ASSERT_EQ(kept.size(), 1u);
  server_->stop();
  for (int i = 0; i < 200 && !ran_out_; ++i) std::this_thread::sleep_for(std::chrono::milliseconds(10));
  EXPECT_TRUE(ran_out_) << "the I/O loops still run after stop(), held by an answer already written";
  kept.clear();  // lets a failing server end, so the test does not hang
}

TEST_F(HttpServerTest, UnknownPathsMethodsOversizedAndMalformedRequests) {
  tcp::socket socket = connect();
  net::write(socket, net::buffer(std::string("GET /nope HTTP/1.1\r\nHost: t\r\n\r\n")));
  EXPECT_EQ(read_response(socket).rfind("HTTP/1.1 404 Not Found\r\n", 0), 0u);
  net::write(socket, net::buffer(std::string("GET /echo HTTP/1.1\r\nHost: t\r\n\r\n")));
  EXPECT_EQ(read_response(socket).rfind("HTTP/1.1 405 Method Not Allowed\r\n", 0), 0u);
  // No body after the head of an answer to HEAD, or the next answer would not parse.
  net::write(socket, net::buffer(std::string("HEAD /echo HTTP/1.1\r\nHost: t\r\n\r\n")));
  std::string head;
  while (head.find("\r\n\r\n") == std::string::npos && !read_some(socket, head)) {
  }
  EXPECT_EQ(head.rfind("HTTP/1.1 405 Method Not Allowed\r\n", 0), 0u) << head;
  EXPECT_NE(head.find("Allow: POST\r\n"), std::string::npos) << head;
  EXPECT_NE(head.find("Content-Length: 19\r\n"), std::string::npos) << head;
  EXPECT_EQ(head.substr(head.find("\r\n\r\n")), "\r\n\r\n") << "a body came after the head";
  // HEAD is not a GET: the OAuth routes' GETs use up single-use links, so a link checker's
  // HEAD must not run them.
  net::write(socket, net::buffer(std::string("HEAD /later HTTP/1.1\r\nHost: t\r\n\r\n")));
  head.clear();
  while (head.find("\r\n\r\n") == std::string::npos && !read_some(socket, head)) {
  }
  EXPECT_EQ(head.rfind("HTTP/1.1 405 Method Not Allowed\r\n", 0), 0u) << head;
  EXPECT_NE(head.find("Allow: GET\r\n"), std::string::npos) << head;
  net::write(socket, net::buffer(std::string("GET /nope HTTP/1.1\r\nHost: t\r\n\r\n")));
  EXPECT_EQ(read_response(socket).rfind("HTTP/1.1 404 Not Found\r\n", 0), 0u);

  tcp::socket big = connect();
  net::write(big, net::buffer("POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: 65\r\n\r\n" + std::string(65, 'a')));
  std::string response = read_response(big);
  EXPECT_EQ(response.rfind("HTTP/1.1 413 Payload Too Large\r\n", 0), 0u) << response;
  EXPECT_NE(response.find("Connection: close"), std::string::npos) << response;

  tcp::socket garbage = connect();
  net::write(garbage, net::buffer(std::string("NOT HTTP AT ALL\r\n\r\n")));
  EXPECT_EQ(read_response(garbage).rfind("HTTP/1.1 400 Bad Request\r\n", 0), 0u);
}

// The front door: a cap on connections, room made by closing idle and slow ones, headers on a
// shorter deadline than bodies, and no spinning when the process runs out of open files.
class HttpFrontDoorTest : public HttpServerTest {
 protected:
  ServerOptions options() const override {
    ServerOptions options = HttpServerTest::options();
    options.max_connections = 2;
    options.header_timeout = std::chrono::seconds(2);
    return options;
  }

  void wait_for_open(size_t n) {
    for (int i = 0; i < 500 && server_->open_connections() != n; ++i) std::this_thread::sleep_for(std::chrono::milliseconds(10));
    ASSERT_EQ(server_->open_connections(), n);
  }
  double counter(const char* name, metrics::Labels labels) { return metrics_.counter_value(name, labels); }
};

TEST_F(HttpFrontDoorTest, AtTheCapAnIdleKeptAliveConnectionIsClosedFirst) {
  tcp::socket idle = connect();
  net::write(idle, net::buffer(std::string("POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: 1\r\n\r\na")));
  ASSERT_EQ(read_response(idle).rfind("HTTP/1.1 200 OK\r\n", 0), 0u);
  tcp::socket slow = connect();
  net::write(slow, net::buffer(std::string("POST /echo HTTP/1.1\r\nHost: t\r\n")));
  wait_for_open(2);

  tcp::socket fresh = connect();
  net::write(fresh, net::buffer(std::string("POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: 1\r\n\r\nb")));
  EXPECT_EQ(read_response(fresh).rfind("HTTP/1.1 200 OK\r\n", 0), 0u);
  EXPECT_TRUE(closed_by_server(idle));
  // The slow one was left alone and may still finish its request.
  net::write(slow, net::buffer(std::string("Content-Length: 1\r\n\r\nc")));
  std::string answer = read_response(slow);
  EXPECT_EQ(answer.rfind("HTTP/1.1 200 OK\r\n", 0), 0u) << answer;
  EXPECT_EQ(counter("deputy_http_connections_shed_total", {{"state", "idle"}}), 1);
  EXPECT_EQ(counter("deputy_http_connections_shed_total", {{"state", "reading"}}), 0);
}

TEST_F(HttpFrontDoorTest, WithNoneIdleTheConnectionThatWaitedLongestForAWholeRequestIsClosed) {
  tcp::socket oldest = connect();
  net::write(oldest, net::buffer(std::string("POST /echo HTTP/1.1\r\n")));
  wait_for_open(1);
  tcp::socket newer = connect();
  net::write(newer, net::buffer(std::string("POST /echo HTTP/1.1\r\n")));
  wait_for_open(2);

  tcp::socket genuine = connect();
  net::write(genuine, net::buffer(std::string("POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: 1\r\n\r\ng")));
  EXPECT_EQ(read_response(genuine).rfind("HTTP/1.1 200 OK\r\n", 0), 0u);
  EXPECT_TRUE(closed_by_server(oldest));
  net::write(newer, net::buffer(std::string("Host: t\r\nContent-Length: 1\r\n\r\nn")));
  EXPECT_EQ(read_response(newer).rfind("HTTP/1.1 200 OK\r\n", 0), 0u);
  EXPECT_EQ(counter("deputy_http_connections_shed_total", {{"state", "reading"}}), 1);
}

TEST_F(HttpFrontDoorTest, WithEveryConnectionBeingAnsweredANewOneWaitsForRoom) {
  tcp::socket first = connect();
  net::write(first, net::buffer(std::string("GET /held HTTP/1.1\r\nHost: t\r\n\r\n")));
  ASSERT_TRUE(held_at_least(1));
  tcp::socket second = connect();
  net::write(second, net::buffer(std::string("GET /held HTTP/1.1\r\nHost: t\r\n\r\n")));
  auto held = held_replies(2);
  ASSERT_EQ(held.size(), 2u);

  tcp::socket waiting = connect();  // the kernel takes it; the server does not yet
  net::write(waiting, net::buffer(std::string("POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: 1\r\n\r\nw")));
  std::string early;
  EXPECT_EQ(read_some(waiting, early, std::chrono::milliseconds(300)), net::error::timed_out) << early;
  EXPECT_GE(counter("deputy_http_connections_refused_total", {{"reason", "at_cap"}}), 1);
  EXPECT_EQ(server_->open_connections(), 2u);

  // Once an answer is written, its connection is idle and makes way.
  held[0](Response::text(200, "done"));
  EXPECT_EQ(read_response(first).rfind("HTTP/1.1 200 OK\r\n", 0), 0u);
  std::string answer = read_response(waiting);
  EXPECT_EQ(answer.rfind("HTTP/1.1 200 OK\r\n", 0), 0u) << answer;
  EXPECT_TRUE(closed_by_server(first));
  held[1](Response::text(200, "done"));
}

TEST_F(HttpFrontDoorTest, HeadersMustArriveWithinTheHeaderTimeoutABodyHasTheReadTimeout) {
  tcp::socket dribbling_headers = connect();
  net::write(dribbling_headers, net::buffer(std::string("POST /echo HTTP/1.1\r\nHost: t\r\n")));
  tcp::socket slow_body = connect();
  net::write(slow_body, net::buffer(std::string("POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: 5\r\n\r\nab")));
  std::this_thread::sleep_for(std::chrono::milliseconds(2500));  // the header timeout is 2 s
  EXPECT_TRUE(closed_by_server(dribbling_headers));
  net::write(slow_body, net::buffer(std::string("cde")));
  std::string answer = read_response(slow_body);
  EXPECT_EQ(answer.rfind("HTTP/1.1 200 OK\r\n", 0), 0u) << answer;
  EXPECT_NE(answer.find("|abcde"), std::string::npos) << answer;
}

// The soft limit on open files, lowered for one test and given back.
class OpenFileLimit {
 public:
  explicit OpenFileLimit(rlim_t soft) {
    getrlimit(RLIMIT_NOFILE, &saved_);
    rlimit lowered = saved_;
    lowered.rlim_cur = soft;
    setrlimit(RLIMIT_NOFILE, &lowered);
  }
  ~OpenFileLimit() { setrlimit(RLIMIT_NOFILE, &saved_); }

 private:
  rlimit saved_{};
};

double cpu_seconds() {
  rusage usage{};
  getrusage(RUSAGE_SELF, &usage);
  return double(usage.ru_utime.tv_sec + usage.ru_stime.tv_sec) + double(usage.ru_utime.tv_usec + usage.ru_stime.tv_usec) / 1e6;
}

// Slow clients in another process, each holding half a request, until it is killed (or for
// 20 s). bash's /dev/tcp makes the connections: this threaded process is not forked.
pid_t spawn_slow_clients(uint16_t port, int count) {
  const std::string script = "for i in $(seq " + std::to_string(count) + "); do exec {fd}<>/dev/tcp/127.0.0.1/" +
                             std::to_string(port) + "; printf 'POST /echo HTTP/1.1\\r\\n' >&$fd; done; exec sleep 20";
  // Its own open-file limit: this process's has been lowered.
  std::vector<std::string> args = {"prlimit", "--nofile=4096", "bash", "-c", script};
  std::vector<char*> argv;
  for (auto& a : args) argv.push_back(a.data());
  argv.push_back(nullptr);
  pid_t child = 0;
  if (posix_spawnp(&child, "prlimit", nullptr, nullptr, argv.data(), environ) != 0) return -1;
  return child;
}

TEST_F(HttpServerTest, RunningOutOfOpenFilesMakesRoomAndPausesInsteadOfSpinning) {
  // This side's reactor exists before the limit comes down.
  tcp::socket genuine = connect();
  net::write(genuine, net::buffer(std::string("POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: 1\r\n\r\na")));
  ASSERT_EQ(read_response(genuine).rfind("HTTP/1.1 200 OK\r\n", 0), 0u);
  const auto open_files = std::distance(std::filesystem::directory_iterator("/proc/self/fd"), std::filesystem::directory_iterator{});
  pid_t clients;
  {
    OpenFileLimit limit(open_files + 32);
    // Far more slow clients than this process has files left for.
    clients = spawn_slow_clients(server_->port(), 200);
    ASSERT_GT(clients, 0);
    for (int i = 0; i < 500 && server_->max_connections() >= 40u; ++i) std::this_thread::sleep_for(std::chrono::milliseconds(10));
    EXPECT_GE(counter_value("out_of_files"), 1);
    EXPECT_LT(server_->max_connections(), 40u) << "the cap comes down to what fits";

    std::this_thread::sleep_for(std::chrono::milliseconds(500));
    const double before = cpu_seconds();
    std::this_thread::sleep_for(std::chrono::seconds(1));
    EXPECT_LT(cpu_seconds() - before, 0.2) << "the server spins while out of files";
    EXPECT_LE(server_->open_connections(), server_->max_connections() + 1);

    // A genuine request on a new connection still gets in, in place of the slowest: the cap
    // left files for it.
    tcp::socket fresh(io_);
    boost::system::error_code ec;
    fresh.connect(tcp::endpoint(net::ip::make_address("127.0.0.1"), server_->port()), ec);
    ASSERT_FALSE(ec) << ec.message();
    net::write(fresh, net::buffer(std::string("POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: 1\r\n\r\nb")));
    std::string answer = read_response(fresh);
    EXPECT_EQ(answer.rfind("HTTP/1.1 200 OK\r\n", 0), 0u) << answer;
  }
  kill(clients, SIGKILL);
  waitpid(clients, nullptr, 0);
}

}  // namespace
}  // namespace deputy::http
