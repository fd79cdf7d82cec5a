// Job workers: claim queued deliveries from the database and run them off the ack path.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <functional>
#include <mutex>
#include <thread>
#include <vector>

#include "store/inbox.h"

namespace deputy::engine {

class Workers {
 public:
  // Transient failures (Unavailable) are retried up to max_attempts; others fail at once.
  using Handle = std::function<Status(const store::ClaimedDelivery&)>;

  Workers(store::Inbox& inbox, Handle handle, unsigned count, int max_attempts = 3);
  ~Workers();
  Workers(const Workers&) = delete;
  Workers& operator=(const Workers&) = delete;

  void start();
  void notify();
  // Lets each worker finish what it holds, then joins them.
  void stop();

 private:
  void loop();

  store::Inbox& inbox_;
  Handle handle_;
  unsigned count_;
  int max_attempts_;
  std::mutex mutex_;
  std::condition_variable wake_;
  uint64_t signals_ = 0;
  std::atomic<bool> stopping_{false};
  std::vector<std::thread> threads_;
};

}  // namespace deputy::engine
