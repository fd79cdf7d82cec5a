// Asynchronous HTTP/1.1 server on Boost.Beast: keep-alive, size limits, timeouts, and a
// graceful stop that finishes requests in flight. Beast stays behind this header.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "common/result.h"
#include "http/headers.h"

namespace deputy::metrics {
class Registry;
}

namespace deputy::http {

struct Request {
  std::string method;
  std::string target;  // path plus query, as sent
  std::string path;
  std::string query;
  Headers headers;
  std::string body;
  std::string header(std::string_view name) const;
  // First value of a query parameter, URL-decoded; empty when absent.
  std::string query_param(std::string_view name) const;
};

struct Response {
  int status = 200;
  std::string content_type = "text/plain; charset=utf-8";
  std::string body;
  Headers headers;

  static Response text(int status, std::string body);
  static Response json(int status, std::string body);
  static Response html(int status, std::string body);
  static Response redirect(std::string location);
};

// Called exactly once, from any thread; the answer is written on the session's own I/O thread.
using Reply = std::function<void(Response)>;
using Handler = std::function<void(Request&&, Reply)>;

class Router {
 public:
  // route_label names the route in metrics, e.g. "/slack/events".
  void add(std::string method, std::string path, Handler handler);
  const Handler* find(std::string_view method, std::string_view path, bool* path_known) const;
  // The methods a known path takes, for a 405's Allow header.
  std::string allowed(std::string_view path) const;

 private:
  struct Route {
    std::string method;
    std::string path;
    Handler handler;
  };
  std::vector<Route> routes_;
};

struct ServerOptions {
  uint64_t max_body_bytes = 1 << 20;
  unsigned header_limit_bytes = 16 * 1024;
  // A request's headers must arrive within header_timeout of its first byte (of the accept,
  // on a new connection), and its body within read_timeout of its headers: a client that
  // dribbles headers holds a connection for seconds, not for the body's allowance.
  std::chrono::seconds header_timeout{10};
  std::chrono::seconds read_timeout{30};
  std::chrono::seconds idle_timeout{60};   // an idle keep-alive connection is closed after this
  std::chrono::seconds write_timeout{30};
  // Connections open at once, at most. At the cap, an idle keep-alive connection is closed to
  // make room, else the one that has waited longest for a whole request; with none of those
  // (every connection has a request being answered), accepting pauses briefly. Running out of
  // open files lowers the cap to what the process could hold. 0: no cap but the files'.
  size_t max_connections = 0;
};

class Server {
 public:
  Server(ServerOptions options, Router router, metrics::Registry* metrics);
  ~Server();
  Server(const Server&) = delete;
  Server& operator=(const Server&) = delete;

  Status listen(const std::string& host, uint16_t port);
  uint16_t port() const;
  // Runs the I/O loop on `threads` threads; returns after stop() once every session ended.
  void run(unsigned threads);
  // Stops accepting, closes idle connections, lets requests in flight finish.
  void stop();
  // Connections open now, and the cap in force (lowered when open files ran out).
  size_t open_connections() const;
  size_t max_connections() const;

 private:
  struct Impl;
  std::shared_ptr<Impl> impl_;
};

}  // namespace deputy::http
