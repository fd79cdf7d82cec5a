// Job workers: run deliveries off the ack path. Deliveries the ingest writer stored already
// claimed by this process are handed over in memory; everything else (backlog beyond the
// in-memory queue, resumed jobs, retries, other processes' abandoned work) is claimed from
// the database.
#pragma once

#include <algorithm>
#include "common/delivery_kind.h"
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <thread>
#include <vector>

#include "engine/executor.h"
#include "store/inbox.h"

namespace deputy::engine {

class Workers {
 public:
  // Transient failures (Unavailable) are retried up to max_attempts; others fail at once.
  using Handle = std::function<Status(const store::ClaimedDelivery&)>;
  // Ends a delivery that a handler started: exactly once, from any thread.
  using Finish = std::function<void(Status)>;
  // A handler that may return before its work is done (it waits on the network without a
  // thread) and calls `finish` when it is; the worker is free meanwhile.
  using StartHandle = std::function<void(const store::ClaimedDelivery&, Finish finish)>;
  // Where a finished delivery's id goes; by default it is deleted from the inbox at once.
  using Complete = std::function<void(store::Held delivery)>;
  // How queued deliveries are claimed; by default in a transaction of the worker's own.
  using Claim = std::function<Result<std::vector<store::ClaimedDelivery>>(size_t limit, std::chrono::seconds lease)>;

  Workers(store::Inbox& inbox, Handle handle, unsigned count, int max_attempts = 3);
  Workers(store::Inbox& inbox, StartHandle handle, unsigned count, int max_attempts = 3);
  // Deliveries started and not yet finished, at most (default 1024): past it, workers run
  // continuations only. What waits on the network costs memory, not a thread.
  void set_max_in_flight(size_t limit) { max_in_flight_ = std::max<size_t>(1, limit); }
  // How long stop() lets deliveries in flight finish before it leaves them to their leases
  // (a step that may have been sent then follows the in-doubt rule on the next run).
  void set_stop_grace(std::chrono::milliseconds grace) { stop_grace_ = grace; }
  // Where continuations of deliveries in flight are posted.
  std::shared_ptr<Executor> executor() const { return shared_; }
  size_t in_flight();
  // Handed-over deliveries that waited longer than this go back to the database queue
  // instead of running from memory, so none runs after its lease could have expired.
  void set_max_wait_in_memory(std::chrono::milliseconds wait) { max_wait_in_memory_ = wait; }
  // How many deliveries one look at the database claims; the ones the looking worker does
  // not run wait in memory for the others. One where several processes share the queue, so
  // a process that dies holds back no more than what it was running.
  void set_claim_batch(size_t batch) { claim_batch_ = std::max<size_t>(1, batch); }
  // How much higher the worker threads' nice value is than the process's (set before
  // start). Above 0, the threads that ack Slack within its three seconds get the CPU first
  // when both want it; work already admitted waits durably in the queue and runs with what
  // is left.
  void set_nice(int nice) { nice_ = nice; }
  // Deliveries of `kind` get this many tries instead of max_attempts (set before start).
  void set_max_attempts(DeliveryKind kind, int attempts) { max_attempts_by_kind_[kind_name(kind)] = attempts; }
  ~Workers();
  Workers(const Workers&) = delete;
  Workers& operator=(const Workers&) = delete;

  void set_complete(Complete complete);
  void set_claim(Claim claim);
  void start();
  // New work may be waiting in the database.
  void notify();
  // How many claimed deliveries may be handed over now. None while the database holds a
  // backlog, so that older queued work runs first.
  size_t room();
  void hand_over(std::vector<store::ClaimedDelivery> claimed);
  // Starts no new delivery, lets those in flight finish (up to the stop grace), gives
  // deliveries not yet started back to the queue, then joins the workers.
  void stop();

 private:
  // The lock, the wake-up and the continuations, shared with callbacks that may outlive us.
  struct Shared final : Executor {
    void post(std::function<void()> task) override;
    std::mutex mutex;
    std::condition_variable wake;
    std::deque<std::function<void()>> tasks;
    bool closed = false;
  };

  void loop();
  void begin(const store::ClaimedDelivery& item);
  struct Ticket {
    int64_t id = 0;
    int64_t epoch = 0;
    int attempts = 0;
    std::string kind;
  };
  void settle(const Ticket& item, const Status& outcome);
  // Gives back the slot a started (or refused) delivery took.
  void leave_slot();
  // The next delivery to run, from memory or the database; `seen` tracks answered signals.
  std::optional<store::ClaimedDelivery> next(uint64_t& seen);
  std::optional<store::ClaimedDelivery> next_from_database(uint64_t& seen);
  struct Handed {
    store::ClaimedDelivery delivery;
    std::chrono::steady_clock::time_point at;
  };
  // Takes the oldest handed-over delivery still fresh enough; stale ones are moved to `stale`.
  std::optional<store::ClaimedDelivery> take_handed_locked(std::vector<store::Held>& stale);
  void give_back(const std::vector<store::Held>& deliveries);

  std::shared_ptr<Shared> shared_ = std::make_shared<Shared>();
  store::Inbox& inbox_;
  StartHandle handle_;
  Complete complete_;
  Claim claim_;
  unsigned count_;
  int max_attempts_;
  std::map<std::string, int> max_attempts_by_kind_;
  size_t capacity_;
  size_t claim_batch_ = 1;
  int nice_ = 0;
  std::mutex& mutex_ = shared_->mutex;
  std::condition_variable& wake_ = shared_->wake;
  size_t max_in_flight_ = 1024;
  size_t in_flight_ = 0;
  std::condition_variable drained_;  // stop() waits on it for in_flight_ to reach zero
  std::chrono::milliseconds stop_grace_{10000};
  std::chrono::milliseconds max_wait_in_memory_;
  std::deque<Handed> ready_;
  uint64_t signals_ = 0;
  bool database_pending_ = true;
  // Workers asking the database right now: what they bring back is older than anything new,
  // so nothing new is handed over meanwhile.
  unsigned claims_in_flight_ = 0;
  std::chrono::steady_clock::time_point last_database_check_{};
  std::atomic<bool> stopping_{false};
  std::vector<std::thread> threads_;
};

}  // namespace deputy::engine
