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
    : Workers(
          inbox, [handle = std::move(handle)](const store::ClaimedDelivery& d, Finish finish) { finish(handle(d)); }, count,
          max_attempts) {}

Workers::Workers(store::Inbox& inbox, StartHandle handle, unsigned count, int max_attempts)
    : inbox_(inbox),
      handle_(std::move(handle)),
      complete_([&inbox](store::Held delivery) { (void)inbox.complete(delivery); }),
      claim_([&inbox](size_t limit, std::chrono::seconds lease) { return inbox.claim_up_to(lease, limit); }),
      count_(count),
      max_attempts_(max_attempts),
      capacity_(64 * std::max(1u, count)),
      max_wait_in_memory_(std::chrono::duration_cast<std::chrono::milliseconds>(kLease) / 2) {}

Workers::~Workers() { stop(); }

void Workers::Shared::post(std::function<void()> task) {
  {
    std::lock_guard lock(mutex);
    if (closed) return;
    tasks.push_back(std::move(task));
  }
  wake.notify_one();
}

size_t Workers::in_flight() {
  std::lock_guard lock(mutex_);
  return in_flight_;
}

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
  std::vector<store::Held> refused;
  {
    std::lock_guard lock(mutex_);
    auto now = std::chrono::steady_clock::now();
    for (auto& item : claimed) {
      if (stopping_) {
        refused.push_back(item.held());
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

void Workers::give_back(const std::vector<store::Held>& deliveries) {
  for (const store::Held& delivery : deliveries) {
    // Back to the queue for a worker (or another start) to claim, instead of waiting out the lease.
    if (Status s = inbox_.release_unstarted(delivery); !s.ok()) {
      spdlog::warn("could not give delivery {} back to the queue: {}", delivery.id, s.message());
    }
  }
}

void Workers::stop() {
  {
    std::unique_lock lock(mutex_);
    stopping_ = true;
    wake_.notify_all();
    // Deliveries in flight finish through continuations the workers still run.
    if (!threads_.empty()) drained_.wait_for(lock, stop_grace_, [&] { return in_flight_ == 0; });
    if (in_flight_ > 0) spdlog::warn("stopping with {} deliveries still waiting on the network; their leases bring them back", in_flight_);
    shared_->closed = true;
    shared_->tasks.clear();
  }
  wake_.notify_all();
  for (auto& t : threads_) {
    if (t.joinable()) t.join();
  }
  threads_.clear();
  std::vector<store::Held> unstarted;
  {
    std::lock_guard lock(mutex_);
    for (const auto& handed : ready_) unstarted.push_back(handed.delivery.held());
    ready_.clear();
  }
  give_back(unstarted);
}

std::optional<store::ClaimedDelivery> Workers::take_handed_locked(std::vector<store::Held>& stale) {
  auto now = std::chrono::steady_clock::now();
  while (!ready_.empty()) {
    Handed handed = std::move(ready_.front());
    ready_.pop_front();
    if (now - handed.at <= max_wait_in_memory_) return std::move(handed.delivery);
    stale.push_back(handed.delivery.held());
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
  std::vector<store::Held> stale;
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
  while (true) {
    std::function<void()> task;
    bool may_start = false;
    bool held = true;
    {
      std::lock_guard lock(mutex_);
      if (shared_->closed) return;
      if (!shared_->tasks.empty()) {
        task = std::move(shared_->tasks.front());
        shared_->tasks.pop_front();
      } else {
        // The slot is taken before looking for work, so two workers cannot both take the last.
        // A process whose heartbeat is late claims nothing: the others may be taking its work.
        held = inbox_.owner().fresh();
        may_start = !stopping_ && held && in_flight_ < max_in_flight_;
        if (may_start) ++in_flight_;
      }
    }
    // Continuations first: they finish work already admitted and free its memory.
    if (task) {
      task();
      continue;
    }
    if (may_start) {
      if (auto item = next(seen)) {
        bool more;
        {
          std::lock_guard lock(mutex_);
          more = !ready_.empty();
        }
        // This worker may have been the one woken for a handed-over delivery it did not take.
        if (more) wake_.notify_one();
        begin(*item);
        continue;
      }
      std::lock_guard lock(mutex_);
      --in_flight_;
      if (stopping_) drained_.notify_all();
    }
    // Sleep until a continuation is posted, work is handed over or signalled since the
    // database was last asked, or (when full) a delivery in flight finishes.
    std::unique_lock lock(mutex_);
    wake_.wait_for(lock, kPollInterval, [&] {
      if (shared_->closed || !shared_->tasks.empty()) return true;
      if (stopping_ || in_flight_ >= max_in_flight_ || !held) return false;
      return !may_start || !ready_.empty() || signals_ != seen;
    });
  }
}

// The caller has taken a slot for it (in_flight_); settle() gives it back.
void Workers::begin(const store::ClaimedDelivery& item) {
  if (!inbox_.owner().may_act_for(item.epoch)) {
    // Claimed by an earlier run of this process (taken over since), or its heartbeat is late:
    // not started. Given back if it is still this run's; a taken-over one is not ours to touch.
    spdlog::info("delivery {} not started: this process no longer holds its heartbeat for it", item.id);
    give_back({item.held()});
    leave_slot();
    return;
  }
  // A handler that finishes before it returns (most do) is settled here, with no hand-off.
  struct Inline {
    std::mutex mutex;
    bool returned = false;
    bool finished = false;  // a delivery is settled once, whatever calls finish again
    std::optional<Status> outcome;
  };
  auto early = std::make_shared<Inline>();
  // What settling needs, without the payload: a Finish may be kept while a call is in flight.
  Ticket ticket{item.id, item.epoch, item.attempts, item.delivery.kind};
  Finish finish = [this, shared = shared_, ticket, early](Status outcome) {
    {
      std::lock_guard lock(early->mutex);
      if (early->finished) return;
      early->finished = true;
      if (!early->returned) {
        early->outcome = std::move(outcome);
        return;
      }
    }
    shared->post([this, ticket, outcome = std::move(outcome)] { settle(ticket, outcome); });
  };
  try {
    handle_(item, finish);
  } catch (const std::exception& e) {
    finish(Internal(std::string("unexpected exception: ") + e.what()));
  }
  std::optional<Status> now;
  {
    std::lock_guard lock(early->mutex);
    early->returned = true;
    now = std::move(early->outcome);
  }
  if (now) settle(ticket, *now);
}

void Workers::settle(const Ticket& item, const Status& outcome) {
  if (outcome.ok()) {
    complete_(store::Held{item.id, item.epoch});
  } else if (outcome.code() == ErrorCode::kAborted) {
    // Its job was taken over while it ran. If the delivery is still this run's, it is done
    // with: the job's new holder drives the job with a delivery of its own. If not, it is
    // the new holder's to settle.
    spdlog::info("delivery {} left to the process that took its work over: {}", item.id, outcome.message());
    if (item.epoch == inbox_.owner().epoch()) complete_(store::Held{item.id, item.epoch});
  } else {
    auto custom = max_attempts_by_kind_.find(item.kind);
    const int max_attempts = custom == max_attempts_by_kind_.end() ? max_attempts_ : custom->second;
    if (outcome.code() == ErrorCode::kUnavailable && outcome.retry_after().count() > 0) {
      // The handler decided to wait (a rate limit, a full bulkhead) and bounds how long.
      spdlog::info("delivery {} waits {} ms: {}", item.id, outcome.retry_after().count(), outcome.message());
      (void)inbox_.defer(store::Held{item.id, item.epoch}, outcome.retry_after());
    } else if (outcome.code() == ErrorCode::kUnavailable && item.attempts < max_attempts) {
      spdlog::warn("delivery {} failed (attempt {}), will retry: {}", item.id, item.attempts, outcome.message());
      (void)inbox_.release(store::Held{item.id, item.epoch}, std::chrono::seconds(std::min(2 * item.attempts, 60)));
    } else {
      spdlog::error("delivery {} failed: {}", item.id, outcome.message());
      (void)inbox_.fail(store::Held{item.id, item.epoch}, outcome.message());
    }
  }
  leave_slot();
}

void Workers::leave_slot() {
  bool was_full = false;
  bool stopping = false;
  {
    std::lock_guard lock(mutex_);
    was_full = in_flight_ >= max_in_flight_;
    --in_flight_;
    stopping = stopping_;
  }
  // stop() may be waiting for the last one; a worker may be waiting for a free slot.
  if (stopping) drained_.notify_all();
  if (was_full) wake_.notify_one();
}

}  // namespace deputy::engine
