// Outbound HTTP boundary. Production uses libcurl; tests substitute a fake.
#pragma once

#include <chrono>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "common/result.h"

namespace deputy::http {

using Headers = std::vector<std::pair<std::string, std::string>>;

struct ClientRequest {
  std::string method = "GET";
  std::string url;
  Headers headers;
  std::string body;
  std::chrono::milliseconds timeout{10000};
};

struct ClientResponse {
  int status = 0;
  Headers headers;
  std::string body;
  // Case-insensitive lookup; empty when absent.
  std::string header(std::string_view name) const;
};

class Client {
 public:
  virtual ~Client() = default;
  // A transport failure (refused, timeout, TLS) is an Unavailable status; any HTTP
  // status, including 4xx and 5xx, is a response.
  virtual Result<ClientResponse> send(const ClientRequest& request) = 0;
};

// Thread-safe; each thread keeps its own curl handle so connections are reused.
class CurlClient final : public Client {
 public:
  CurlClient();
  Result<ClientResponse> send(const ClientRequest& request) override;
};

}  // namespace deputy::http
