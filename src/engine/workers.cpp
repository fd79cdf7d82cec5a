#include "engine/workers.h"

#include <spdlog/spdlog.h>

#include "common/threads.h"

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
      claim_([&inbox](size_t limit, std::chrono::seconds lease) { return inbox.claim_up_to(lease, limit); }),
      count_(count),
      max_attempts_(max_attempts),
      capacity_(64 * std::max(1u, count)),
      max_wait_in_memory_(std::chrono::duration_cast<std::chrono::milliseconds>(kLease) / 2) {}

Workers::~Workers() { stop(); }

void Workers::set_complete(Complete complete) { complete_ = std::move(complete); }

void Workers::set_claim(Claim claim) { claim_ = std::move(claim); }

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
  if (database_pending_ || claims_in_flight_ > 0 || stopping_) return 0;
  return capacity_ > ready_.size() ? capacity_ - ready_.size() : 0;
}

void Workers::hand_over(std::vector<store::ClaimedDelivery> claimed) {
  if (claimed.empty()) return;
  std::vector<int64_t> refused;
  {
    std::lock_guard lock(mutex_);
    auto now = std::chrono::steady_clock::now();
    for (auto& item : claimed) {
      if (stopping_) {
        refused.push_back(item.id);
      } else {
        ready_.push_back(Handed{std::move(item), now});
      }
    }
  }
  if (!refused.empty()) return give_back(refused);
  if (claimed.size() == 1) {
    wake_.notify_one();
  } else {
    wake_.notify_all();
  }
}

void Workers::give_back(const std::vector<int64_t>& ids) {
  for (int64_t id : ids) {
    // Back to the queue for a worker (or another start) to claim, instead of waiting out the lease.
    if (Status s = inbox_.release_unstarted(id); !s.ok()) {
      spdlog::warn("could not give delivery {} back to the queue: {}", id, s.message());
    }
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
  std::vector<int64_t> unstarted;
  {
    std::lock_guard lock(mutex_);
    for (const auto& handed : ready_) unstarted.push_back(handed.delivery.id);
    ready_.clear();
  }
  give_back(unstarted);
}

std::optional<store::ClaimedDelivery> Workers::take_handed_locked(std::vector<int64_t>& stale) {
  auto now = std::chrono::steady_clock::now();
  while (!ready_.empty()) {
    Handed handed = std::move(ready_.front());
    ready_.pop_front();
    if (now - handed.at <= max_wait_in_memory_) return std::move(handed.delivery);
    stale.push_back(handed.delivery.id);
  }
  return std::nullopt;
}

std::optional<store::ClaimedDelivery> Workers::next_from_database(uint64_t& seen) {
  {
    std::lock_guard lock(mutex_);
    seen = signals_;
    last_database_check_ = std::chrono::steady_clock::now();
    ++claims_in_flight_;
  }
  auto claimed = claim_(claim_batch_, kLease);
  std::lock_guard lock(mutex_);
  --claims_in_flight_;
  if (!claimed) {
    spdlog::error("worker could not claim work: {}", claimed.status().message());
    return std::nullopt;
  }
  if (claimed->empty()) {
    // Nothing queued, unless new work was signalled while we looked or another worker is
    // still bringing back what it found.
    if (signals_ == seen && claims_in_flight_ == 0) database_pending_ = false;
    return std::nullopt;
  }
  // There may be more behind them: let the others look too, and keep new work behind it.
  database_pending_ = true;
  const auto now = std::chrono::steady_clock::now();
  for (size_t i = 1; i < claimed->size(); ++i) ready_.push_back(Handed{std::move((*claimed)[i]), now});
  if (claimed->size() > 1) wake_.notify_all();
  return std::move(claimed->front());
}

std::optional<store::ClaimedDelivery> Workers::next(uint64_t& seen) {
  std::optional<store::ClaimedDelivery> item;
  std::vector<int64_t> stale;
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
    if (!ask_database) item = take_handed_locked(stale);
  }
  if (ask_database) {
    item = next_from_database(seen);
    if (!item) {
      std::lock_guard lock(mutex_);
      item = take_handed_locked(stale);
    }
  }
  if (!stale.empty()) {
    give_back(stale);
    notify();
  }
  return item;
}

void Workers::loop() {
  name_this_thread("deputy-worker");
  if (nice_ > 0) {
    if (Status s = lower_this_thread_priority(nice_); !s.ok()) spdlog::warn("worker keeps the process's CPU priority: {}", s.message());
  }
  uint64_t seen = 0;
  while (!stopping_) {
    if (auto item = next(seen)) {
      bool more;
      {
        std::lock_guard lock(mutex_);
        more = !ready_.empty();
      }
      // This worker may have been the one woken for a handed-over delivery it did not take.
      if (more) wake_.notify_one();
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
    return;
  }
  auto custom = max_attempts_by_kind_.find(item.delivery.kind);
  const int max_attempts = custom == max_attempts_by_kind_.end() ? max_attempts_ : custom->second;
  if (outcome.code() == ErrorCode::kUnavailable && item.attempts < max_attempts) {
    spdlog::warn("delivery {} failed (attempt {}), will retry: {}", item.id, item.attempts, outcome.message());
    (void)inbox_.release(item.id, std::chrono::seconds(std::min(2 * item.attempts, 60)));
  } else {
    spdlog::error("delivery {} failed: {}", item.id, outcome.message());
    (void)inbox_.fail(item.id, outcome.message());
  }
}

}  // namespace deputy::engine
