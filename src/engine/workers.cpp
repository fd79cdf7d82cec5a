#include "engine/workers.h"

#include <spdlog/spdlog.h>

namespace deputy::engine {

namespace {
// Also how often a worker busy with handed-over work looks at the database, so delayed
// retries and resumed jobs are not starved by a steady stream of new deliveries.
constexpr auto kPollInterval = std::chrono::seconds(1);
constexpr auto kLease = std::chrono::seconds(300);
}  // namespace

Workers::Workers(store::Inbox& inbox, Handle handle, unsigned count, int max_attempts)
    : inbox_(inbox),
      handle_(std::move(handle)),
      complete_([&inbox](int64_t id) { (void)inbox.complete(id); }),
      count_(count),
      max_attempts_(max_attempts),
      // Small enough that a handed-over delivery starts well within its lease.
      capacity_(64 * std::max(1u, count)) {}

Workers::~Workers() { stop(); }

void Workers::set_complete(Complete complete) { complete_ = std::move(complete); }

void Workers::start() {
  for (unsigned i = 0; i < count_; ++i) threads_.emplace_back([this] { loop(); });
}

void Workers::notify() {
  {
    std::lock_guard lock(mutex_);
    ++signals_;
    database_pending_ = true;
  }
  wake_.notify_all();
}

size_t Workers::room() {
  std::lock_guard lock(mutex_);
  if (database_pending_ || stopping_) return 0;
  return capacity_ > ready_.size() ? capacity_ - ready_.size() : 0;
}

void Workers::hand_over(std::vector<store::ClaimedDelivery> claimed) {
  if (claimed.empty()) return;
  {
    std::lock_guard lock(mutex_);
    for (auto& item : claimed) ready_.push_back(std::move(item));
  }
  if (claimed.size() == 1) {
    wake_.notify_one();
  } else {
    wake_.notify_all();
  }
}

void Workers::stop() {
  {
    std::lock_guard lock(mutex_);
    stopping_ = true;
  }
  wake_.notify_all();
  for (auto& t : threads_) {
    if (t.joinable()) t.join();
  }
  threads_.clear();
  std::deque<store::ClaimedDelivery> unstarted;
  {
    std::lock_guard lock(mutex_);
    unstarted.swap(ready_);
  }
  for (const auto& item : unstarted) {
    // Back to the queue for the next start (or another process), instead of waiting out the lease.
    if (Status s = inbox_.release(item.id, std::chrono::seconds(0)); !s.ok()) {
      spdlog::warn("could not give delivery {} back to the queue: {}", item.id, s.message());
    }
  }
}

std::optional<store::ClaimedDelivery> Workers::next_from_database(uint64_t& seen) {
  {
    std::lock_guard lock(mutex_);
    seen = signals_;
    last_database_check_ = std::chrono::steady_clock::now();
  }
  auto claimed = inbox_.claim(kLease);
  if (!claimed) {
    spdlog::error("worker could not claim work: {}", claimed.status().message());
    return std::nullopt;
  }
  if (claimed->has_value()) return std::move(**claimed);
  std::lock_guard lock(mutex_);
  // Nothing queued, unless new work was signalled while we looked.
  if (signals_ == seen) database_pending_ = false;
  return std::nullopt;
}

void Workers::loop() {
  uint64_t seen = 0;
  while (!stopping_) {
    std::optional<store::ClaimedDelivery> item;
    bool ask_database = false;
    {
      std::lock_guard lock(mutex_);
      // Handed-over deliveries are older than anything that overflowed to the database
      // after them, so memory comes first. The database is asked when it was signalled to
      // hold work and memory is empty, and once per poll interval in any case.
      const bool poll_due = std::chrono::steady_clock::now() - last_database_check_ >= kPollInterval;
      ask_database = poll_due || (ready_.empty() && database_pending_);
      // Not pending: every signal so far was answered by some worker's look at the database.
      if (!database_pending_) seen = signals_;
      if (!ask_database && !ready_.empty()) {
        item = std::move(ready_.front());
        ready_.pop_front();
      }
    }
    if (ask_database) {
      item = next_from_database(seen);
      if (!item) {
        std::lock_guard lock(mutex_);
        if (!ready_.empty()) {
          item = std::move(ready_.front());
          ready_.pop_front();
        }
      }
    }
    if (item) {
      run(*item);
      continue;
    }
    // Sleep until work is handed over, or signalled since the database was last asked.
    std::unique_lock lock(mutex_);
    wake_.wait_for(lock, kPollInterval, [&] { return stopping_ || !ready_.empty() || signals_ != seen; });
  }
}

void Workers::run(const store::ClaimedDelivery& item) {
  Status outcome;
  try {
    outcome = handle_(item);
  } catch (const std::exception& e) {
    outcome = Internal(std::string("unexpected exception: ") + e.what());
  }
  if (outcome.ok()) {
    complete_(item.id);
  } else if (outcome.code() == ErrorCode::kUnavailable && item.attempts < max_attempts_) {
    spdlog::warn("delivery {} failed (attempt {}), will retry: {}", item.id, item.attempts, outcome.message());
    (void)inbox_.release(item.id, std::chrono::seconds(2 * item.attempts));
  } else {
    spdlog::error("delivery {} failed: {}", item.id, outcome.message());
    (void)inbox_.fail(item.id, outcome.message());
  }
}

}  // namespace deputy::engine
