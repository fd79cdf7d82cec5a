// The production Client: HTTP/1.1 over Boost.Beast on one Boost.Asio event loop, a thread of
// its own. No thread waits on a socket: thousands of calls in flight cost a little memory each.
//
// - Connections are kept alive and pooled per origin (and proxy), capped per host and in
//   total; calls beyond the caps wait in order, their deadline running.
// - Every call has a deadline that counts from start(), the wait for a connection included.
// - A request that must not run twice (ClientRequest::is_idempotent) is never sent again by the
//   client: a kept-alive connection is checked before it carries one, and if it dies after
//   the request left, the call ends as maybe sent. An idempotent request whose reused
//   connection fails before any answer is sent once more on a fresh connection.
// - A pooled connection is closed before the server's own idle timeout (its Keep-Alive
//   timeout, or ClientOptions::max_idle).
// - TLS is verified against the system's store or a given CA bundle, with the host name.
// - Proxies come from the environment (http/proxy.h): CONNECT tunnels for https, absolute
//   targets for http.
//
// libcurl's multi interface was the first production client; this one costs a third of its
// CPU per call (docs/performance-jobs.md).
#pragma once

#include <chrono>
#include <memory>
#include <string>

#include "http/client.h"

namespace deputy::http {

struct ClientOptions {
  long max_connections_per_host = 256;  // further calls to that host wait for one (deadline included)
  long max_connections = 1024;          // all hosts together, idle ones included
  // A pooled connection idle this long is closed rather than reused: shorter than the idle
  // timeouts servers and load balancers commonly use (60 s and up). A server that announces a
  // shorter one (Keep-Alive: timeout=N) is believed.
  std::chrono::seconds max_idle{50};
  std::chrono::milliseconds connect_timeout{5000};
  size_t max_response_bytes = 16 * 1024 * 1024;
  std::string ca_file;  // CA bundle to trust instead of the system store (a private CA); empty: the system store
  std::string user_agent = "Deputy/0.1";
  // Added to the loop thread's nice value: what is sent after the ack (answers, app calls)
  // yields to the ack path, as the workers do (server.worker_nice).
  int nice = 0;
};

class BeastClient final : public Client {
 public:
  explicit BeastClient(ClientOptions options = {});
  // Calls still in flight end with "the client stopped" (their Reached says how far they got).
  ~BeastClient() override;
  BeastClient(const BeastClient&) = delete;
  BeastClient& operator=(const BeastClient&) = delete;

  void start(ClientRequest request, Done done) override;

  // Calls started and not yet done (for metrics and tests).
  size_t in_flight() const;

 private:
  class Loop;
  std::unique_ptr<Loop> loop_;
};

}  // namespace deputy::http
