// The ack path's only database work: admitted deliveries are written in batches by one
// thread (group commit), so many concurrent requests share one transaction and fsync.
#pragma once

#include <condition_variable>
#include <deque>
#include <functional>
#include <mutex>
#include <thread>

#include "store/inbox.h"

namespace deputy::engine {

class Ingest {
 public:
  using Done = std::function<void(Result<store::Admission>)>;

  // on_admitted runs after each batch that admitted new work (wakes the workers).
  Ingest(store::Inbox& inbox, std::function<void()> on_admitted, size_t max_batch = 512);
  ~Ingest();
  Ingest(const Ingest&) = delete;
  Ingest& operator=(const Ingest&) = delete;

  void submit(store::Delivery delivery, Done done);
  // Writes what is queued, then stops the writer.
  void stop();

 private:
  void loop();

  store::Inbox& inbox_;
  std::function<void()> on_admitted_;
  size_t max_batch_;
  std::mutex mutex_;
  std::condition_variable wake_;
  std::deque<std::pair<store::Delivery, Done>> queue_;
  bool stopping_ = false;
  std::thread writer_;
};

}  // namespace deputy::engine
