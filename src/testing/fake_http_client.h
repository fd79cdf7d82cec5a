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
  // How far a pushed failure got; kMaybeSent by default (a timeout after sending).
  void set_failure_reached(http::Reached reached) {
    std::lock_guard lock(mutex_);
    failure_reached_ = reached;
  }
  // Answers at once, on the calling thread.
  void start(http::ClientRequest request, Done done) override { done(answer(std::move(request))); }
  std::vector<http::ClientRequest> requests;

 private:
  http::ClientOutcome answer(http::ClientRequest request) {
    std::lock_guard lock(mutex_);
    requests.push_back(std::move(request));
    http::ClientOutcome outcome;
    if (!failures_.empty() && failures_.front() == 0) {
      failures_.erase(failures_.begin());
      outcome.reached = failure_reached_;
      outcome.error = failure_status_;
      return outcome;
    }
    for (auto& f : failures_) --f;
    outcome.reached = http::Reached::kAnswered;
    if (responses_.empty()) {
      outcome.response = http::ClientResponse{200, {}, R"({"ok":true})"};
    } else {
      outcome.response = responses_.front();
      responses_.pop_front();
    }
    return outcome;
  }
  std::mutex mutex_;
  http::Reached failure_reached_ = http::Reached::kMaybeSent;
  std::deque<http::ClientResponse> responses_;
  std::vector<size_t> failures_;
  Status failure_status_;
};

}  // namespace deputy::testing
