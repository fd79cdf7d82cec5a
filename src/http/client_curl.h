// The production Client: libcurl's multi interface driven by one Boost.Asio event loop on a
// thread of its own. No thread waits on a socket: thousands of calls in flight cost a
// little memory each. Connections are pooled per host and kept alive between calls.
//
// Proxies come from the environment as libcurl reads it: https_proxy / HTTPS_PROXY,
// http_proxy (lower case only), all_proxy, no_proxy / NO_PROXY.
#pragma once

#include <chrono>
#include <memory>
#include <string>

#include "http/client.h"

namespace deputy::http {

struct CurlClientOptions {
  long max_connections_per_host = 256;  // further calls to that host wait for one (deadline included)
  long max_connections = 1024;         // all hosts together
  // A pooled connection idle this long is closed rather than reused: shorter than the idle
  // timeouts servers and load balancers commonly use (60 s and up), so a connection the
  // server is about to close is not picked for a request.
  std::chrono::seconds max_idle{50};
  std::chrono::milliseconds connect_timeout{5000};
  size_t max_response_bytes = 16 * 1024 * 1024;
  std::string ca_file;  // CA bundle to trust instead of the system store (a private CA); empty: the system store
  std::string user_agent = "Deputy/0.1";
  // Added to the loop thread's nice value: what is sent after the ack (answers, app calls)
  // yields to the ack path, as the workers do (server.worker_nice).
  int nice = 0;
};

class CurlMultiClient final : public Client {
 public:
  explicit CurlMultiClient(CurlClientOptions options = {});
  // Calls still in flight end with "client stopped" (their Reached says how far they got).
  ~CurlMultiClient() override;
  CurlMultiClient(const CurlMultiClient&) = delete;
  CurlMultiClient& operator=(const CurlMultiClient&) = delete;

  void start(ClientRequest request, Done done) override;
  // Blocking: on the calling thread with a connection of that thread's own (no per-host cap,
  // same deadline, TLS, proxy and fresh-connection rules), for callers that wait anyway.
  ClientOutcome call(ClientRequest request) override;

  // Calls started and not yet done (for metrics and tests).
  size_t in_flight() const;

 private:
  class Loop;
  std::unique_ptr<Loop> loop_;
};

}  // namespace deputy::http
