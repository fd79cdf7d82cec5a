// A scriptable http::Client for unit tests: queued responses, recorded requests.
#pragma once

#include <deque>
#include <mutex>
#include <vector>

#include "http/client.h"

namespace deputy::testing {

class FakeHttpClient final : public http::Client {
 public:
  void push(int status, std::string body, http::Headers headers = {}) {
    std::lock_guard lock(mutex_);
    responses_.push_back(http::ClientResponse{status, std::move(headers), std::move(body)});
  }
  void push_failure(Status status) {
    std::lock_guard lock(mutex_);
    failures_.push_back(responses_.size());
    failure_status_ = std::move(status);
  }
  Result<http::ClientResponse> send(const http::ClientRequest& request) override {
    std::lock_guard lock(mutex_);
    requests.push_back(request);
    if (!failures_.empty() && failures_.front() == 0) {
      failures_.erase(failures_.begin());
      return failure_status_;
    }
    for (auto& f : failures_) --f;
    if (responses_.empty()) return http::ClientResponse{200, {}, R"({"ok":true})"};
    auto response = responses_.front();
    responses_.pop_front();
    return response;
  }
  std::vector<http::ClientRequest> requests;

 private:
  std::mutex mutex_;
  std::deque<http::ClientResponse> responses_;
  std::vector<size_t> failures_;
  Status failure_status_;
};

}  // namespace deputy::testing
