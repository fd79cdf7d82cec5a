// Outbound HTTP boundary: every call to an app, a token endpoint or Slack goes through a
// Client. Production uses BeastClient (client_beast.h): asynchronous, on an event loop,
// with pooled keep-alive connections; tests substitute a fake.
#pragma once

#include <chrono>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "common/result.h"
#include "http/headers.h"

namespace deputy::http {

struct ClientRequest {
  std::string method = "GET";
  std::string url;
  Headers headers;
  std::string body;
  // The whole call, waiting for a pooled connection included.
  std::chrono::milliseconds timeout{10000};
  // Safe to send twice. Unset: as RFC 9110 says of the method (GET, HEAD, OPTIONS, PUT,
  // DELETE are; POST and PATCH are not). A request that is not is never sent again by the
  // client, not even after a kept-alive connection it rode turns out dead.
  std::optional<bool> idempotent;

  bool is_idempotent() const;
};

struct ClientResponse {
  int status = 0;
  Headers headers;
  std::string body;
  // Case-insensitive lookup; empty when absent.
  std::string header(std::string_view name) const;
  // How long the server asks to wait (RFC 9110 Retry-After: delay-seconds or an HTTP-date,
  // read against `now`), at most `cap`; nothing when absent or unreadable.
  std::optional<std::chrono::seconds> retry_after(std::chrono::system_clock::time_point now, std::chrono::seconds cap) const;
};

// How far a call got, for deciding whether it may be repeated.
enum class Reached {
  kNotSent,    // no byte of the request left: safe to send again
  kMaybeSent,  // sent, or partly, and no answer came: the server may have acted on it
  kAnswered,   // an HTTP response came back (any status)
};

struct ClientOutcome {
  Reached reached = Reached::kNotSent;
  Status error;             // why there is no answer (Unavailable); Ok when answered
  bool deadline_passed = false;  // no answer came within the request's timeout
  ClientResponse response;  // when answered
};

class Client {
 public:
  using Done = std::function<void(ClientOutcome)>;
  virtual ~Client() = default;

  // Starts the call and returns at once; `done` runs exactly once, on the client's own
  // thread, so it must be short (hand the outcome on, do not work in it).
  virtual void start(ClientRequest request, Done done) = 0;

  // Blocking forms, for code that has not moved to start() yet: they hold the calling
  // thread until the answer and must never run on the client's own thread.
  virtual ClientOutcome call(ClientRequest request);
  // A transport failure (refused, timeout, TLS) is an Unavailable status; any HTTP
  // status, including 4xx and 5xx, is a response.
  Result<ClientResponse> send(ClientRequest request);
};

}  // namespace deputy::http
