#include "engine/workers.h"

#include <spdlog/spdlog.h>

namespace deputy::engine {

Workers::Workers(store::Inbox& inbox, Handle handle, unsigned count, int max_attempts)
    : inbox_(inbox), handle_(std::move(handle)), count_(count), max_attempts_(max_attempts) {}

Workers::~Workers() { stop(); }

void Workers::start() {
  for (unsigned i = 0; i < count_; ++i) threads_.emplace_back([this] { loop(); });
}

void Workers::notify() {
  {
    std::lock_guard lock(mutex_);
    ++signals_;
  }
  wake_.notify_all();
}

void Workers::stop() {
  stopping_ = true;
  wake_.notify_all();
  for (auto& t : threads_) {
    if (t.joinable()) t.join();
  }
  threads_.clear();
}

void Workers::loop() {
  uint64_t seen = 0;
  while (!stopping_) {
    auto claimed = inbox_.claim(std::chrono::seconds(300));
    if (!claimed) {
      spdlog::error("worker could not claim work: {}", claimed.status().message());
    }
    if (claimed && claimed->has_value()) {
      const store::ClaimedDelivery& item = **claimed;
      Status outcome;
      try {
        outcome = handle_(item);
      } catch (const std::exception& e) {
        outcome = Internal(std::string("unexpected exception: ") + e.what());
      }
      if (outcome.ok()) {
        (void)inbox_.complete(item.id);
      } else if (outcome.code() == ErrorCode::kUnavailable && item.attempts < max_attempts_) {
        spdlog::warn("delivery {} failed (attempt {}), will retry: {}", item.id, item.attempts, outcome.message());
        (void)inbox_.release(item.id, std::chrono::seconds(2 * item.attempts));
      } else {
        spdlog::error("delivery {} failed: {}", item.id, outcome.message());
        (void)inbox_.fail(item.id, outcome.message());
      }
      continue;
    }
    // Nothing to do: sleep until new work is admitted, or poll (other processes, retries).
    std::unique_lock lock(mutex_);
    wake_.wait_for(lock, std::chrono::seconds(1), [&] { return stopping_ || signals_ != seen; });
    seen = signals_;
  }
}

}  // namespace deputy::engine
