// The ack path's only database work: admitted deliveries are written in batches by one
// thread (group commit), so many concurrent requests share one transaction and fsync.
// That transaction also stores as many new deliveries as the workers can take already
// claimed by this process, and hands them over in memory. Right after it, a second one
// deletes what the workers finished, claims queued deliveries for them, and commits the job
// engine's writes (store::Writes), each caller told once its write is committed: the work
// that answers Slack never lengthens the transaction Slack's acks wait for, and on SQLite no
// other thread holds the write lock on the hot path (the workers run at a lower CPU priority
// and must not make the ack wait).
#pragma once

#include <condition_variable>
#include <deque>
#include <functional>
#include <future>
#include <mutex>
#include <thread>
#include <vector>

#include "store/inbox.h"
#include "store/writes.h"

namespace deputy::engine {

class Ingest final : public store::Writes {
 public:
  using Done = std::function<void(Result<store::Admission>)>;

  // Where admitted work goes: `room` says how many claimed deliveries may be handed over,
  // `hand_over` takes them, `notify` says new work waits in the database.
  struct Handoff {
    std::function<size_t()> room = [] { return size_t{0}; };
    std::function<void(std::vector<store::ClaimedDelivery>)> hand_over = [](std::vector<store::ClaimedDelivery>) {};
    std::function<void()> notify = [] {};
  };

  Ingest(store::Inbox& inbox, Handoff handoff, size_t max_batch = 512);
  ~Ingest() override;
  Ingest(const Ingest&) = delete;
  Ingest& operator=(const Ingest&) = delete;

  void submit(store::Delivery delivery, Done done);
  // A finished delivery, deleted in the next write; at once once the writer has stopped.
  void complete(store::Held delivery);
  // Claims up to `limit` queued deliveries in the next write and waits for it; directly once
  // the writer has stopped.
  Result<std::vector<store::ClaimedDelivery>> claim(size_t limit, std::chrono::seconds lease);
  // Committed after the next batch of deliveries, with every other write queued by then, each
  // in a savepoint of its own so that one failing write leaves the others be; durable (one
  // fsync for all) when any of them asks to be. Once the writer has stopped, at once.
  void write(Work work, store::Durability durability, Written written) override;
  // Writes what is queued, then stops the writer.
  void stop();

 private:
  struct PendingWrite {
    Work work;
    store::Durability durability;
    Written written;
  };
  void loop();
  // The acks' transaction: new deliveries only. False when it failed (each was told why).
  bool admit(std::vector<std::pair<store::Delivery, Done>>& batch);
  struct ClaimRequest;
  // The second transaction of a round: `finished` deleted and `claims` answered, then the writes.
  void commit_after_acks(std::vector<store::Held>& finished, std::vector<ClaimRequest>& claims, std::vector<PendingWrite>& writes);
  void requeue_finished(const std::vector<store::Held>& finished);

  store::Inbox& inbox_;
  Handoff handoff_;
  size_t max_batch_;
  std::mutex mutex_;
  std::condition_variable wake_;
  std::deque<std::pair<store::Delivery, Done>> queue_;
  std::vector<store::Held> completed_;
  struct ClaimRequest {
    size_t limit;
    std::chrono::seconds lease;
    std::promise<Result<std::vector<store::ClaimedDelivery>>> answer;
  };
  std::vector<ClaimRequest> claims_;
  std::vector<PendingWrite> writes_;
  store::DirectWrites direct_;
  bool stopping_ = false;
  bool stopped_ = false;
  std::thread writer_;
};

}  // namespace deputy::engine
