#include "engine/ingest.h"

#include <spdlog/spdlog.h>

#include <algorithm>

#include "common/threads.h"

namespace deputy::engine {

Ingest::Ingest(store::Inbox& inbox, Handoff handoff, size_t max_batch)
    : inbox_(inbox), handoff_(std::move(handoff)), max_batch_(max_batch), direct_(inbox.database()), writer_([this] { loop(); }) {}

Ingest::~Ingest() { stop(); }

void Ingest::submit(store::Delivery delivery, Done done) {
  {
    std::lock_guard lock(mutex_);
    if (stopping_) {
      done(Unavailable("shutting down"));
      return;
    }
    queue_.emplace_back(std::move(delivery), std::move(done));
  }
  wake_.notify_one();
}

void Ingest::complete(store::Held delivery) {
  {
    std::lock_guard lock(mutex_);
    if (!stopped_) {
      completed_.push_back(delivery);
      wake_.notify_one();
      return;
    }
  }
  if (Status s = inbox_.complete(delivery); !s.ok()) spdlog::warn("could not delete finished delivery {}: {}", delivery.id, s.message());
}

void Ingest::write(Work work, store::Durability durability, Written written) {
  {
    std::lock_guard lock(mutex_);
    if (!stopped_) {
      writes_.push_back(PendingWrite{std::move(work), durability, std::move(written)});
      wake_.notify_one();
      return;
    }
  }
  direct_.write(std::move(work), durability, std::move(written));
}

void Ingest::commit_after_acks(std::vector<store::Held>& finished, std::vector<ClaimRequest>& claims, std::vector<PendingWrite>& writes) {
  if (finished.empty() && claims.empty() && writes.empty()) return;
  size_t limit = 0;
  std::chrono::seconds lease{0};  // one lease for the whole write: the longest asked for
  for (const auto& request : claims) {
    limit += request.limit;
    lease = std::max(lease, request.lease);
  }
  const bool durable = std::any_of(writes.begin(), writes.end(), [](const PendingWrite& w) { return w.durability == store::Durability::kDurable; });
  std::vector<store::ClaimedDelivery> backlog;
  Status queue_work;
  std::vector<Status> outcomes(writes.size());
  Status committed = [&]() -> Status {
    auto connection = inbox_.database().acquire();
    if (!connection) return connection.status();
    return store::with_write_transaction(
        **connection,
        [&](store::Connection& tx) -> Status {
          // Each part in a savepoint of its own, so that one failing leaves the others be.
          auto in_savepoint = [&tx](const std::function<Status()>& part, Status& outcome) -> Status {
            if (auto marked = tx.execute("SAVEPOINT deputy_write"); !marked) return marked.status();
            outcome = part();
            if (!outcome.ok()) {
              if (auto undone = tx.execute("ROLLBACK TO deputy_write"); !undone) return undone.status();
            }
            auto released = tx.execute("RELEASE deputy_write");
            return released ? Status::Ok() : released.status();
          };
          backlog.clear();
          if (!finished.empty() || limit > 0) {
            Status s = in_savepoint([&] { return inbox_.finish_and_claim_in(tx, finished, limit, lease, backlog); }, queue_work);
            if (!s.ok()) return s;
          }
          for (size_t i = 0; i < writes.size(); ++i) {
            if (Status s = in_savepoint([&] { return writes[i].work(tx); }, outcomes[i]); !s.ok()) return s;
          }
          return Status::Ok();
        },
        durable ? store::Durability::kDurable : store::Durability::kNormal);
  }();
  if (committed.ok() && queue_work.ok()) {
    // Oldest first to whoever asked first; each gets at most what it asked for.
    size_t next = 0;
    for (auto& request : claims) {
      std::vector<store::ClaimedDelivery> share;
      while (share.size() < request.limit && next < backlog.size()) share.push_back(std::move(backlog[next++]));
      request.answer.set_value(std::move(share));
    }
  } else {
    const Status& why = committed.ok() ? queue_work : committed;
    spdlog::error("could not delete {} finished deliveries or claim queued ones: {}", finished.size(), why.message());
    for (auto& request : claims) request.answer.set_value(why);
    requeue_finished(finished);
  }
  if (!committed.ok()) spdlog::error("could not commit {} job writes: {}", writes.size(), committed.message());
  for (size_t i = 0; i < writes.size(); ++i) writes[i].written(committed.ok() ? std::move(outcomes[i]) : committed);
  finished.clear();
  claims.clear();
  writes.clear();
}

// Finished deliveries whose delete failed are still finished: deleted with the next write, or
// one by one once no write follows.
void Ingest::requeue_finished(const std::vector<store::Held>& finished) {
  {
    std::lock_guard lock(mutex_);
    if (!stopping_) {
      completed_.insert(completed_.end(), finished.begin(), finished.end());
      return;
    }
  }
  for (const store::Held& delivery : finished) {
    if (Status s = inbox_.complete(delivery); !s.ok())
      spdlog::error("finished delivery {} stays marked as working: {}", delivery.id, s.message());
  }
}

Result<std::vector<store::ClaimedDelivery>> Ingest::claim(size_t limit, std::chrono::seconds lease) {
  std::future<Result<std::vector<store::ClaimedDelivery>>> answer;
  {
    std::lock_guard lock(mutex_);
    if (!stopped_) {
      claims_.push_back(ClaimRequest{limit, lease, {}});
      answer = claims_.back().answer.get_future();
    }
  }
  if (!answer.valid()) return inbox_.claim_up_to(lease, limit);
  wake_.notify_one();
  return answer.get();
}

void Ingest::stop() {
  {
    std::lock_guard lock(mutex_);
    if (stopping_ && !writer_.joinable()) return;
    stopping_ = true;
  }
  wake_.notify_one();
  if (writer_.joinable()) writer_.join();
}

bool Ingest::admit(std::vector<std::pair<store::Delivery, Done>>& batch) {
  store::InboxBatch write;
  write.deliveries.reserve(batch.size());
  for (auto& item : batch) write.deliveries.push_back(std::move(item.first));
  write.claim_first = handoff_.room();
  auto written = inbox_.write(write);
  if (!written) {
    spdlog::error("could not store {} Slack deliveries: {}", batch.size(), written.status().message());
    for (auto& item : batch) item.second(written.status());
    return false;
  }
  size_t accepted = 0;
  for (size_t i = 0; i < batch.size(); ++i) {
    if (written->admissions[i] == store::Admission::kAccepted) ++accepted;
    batch[i].second(written->admissions[i]);
  }
  std::vector<store::ClaimedDelivery> claimed;
  claimed.reserve(written->claimed.size());
  for (const auto& [index, held] : written->claimed)
    claimed.push_back(store::ClaimedDelivery{held.id, 1, std::move(write.deliveries[index]), held.epoch});
  handoff_.hand_over(std::move(claimed));
  if (accepted > written->claimed.size()) handoff_.notify();
  return true;
}

void Ingest::loop() {
  name_this_thread("deputy-ingest");
  while (true) {
    std::vector<std::pair<store::Delivery, Done>> batch;
    std::vector<ClaimRequest> claims;
    std::vector<PendingWrite> writes;
    std::vector<store::Held> finished;
    {
      std::unique_lock lock(mutex_);
      wake_.wait(lock, [&] { return stopping_ || !queue_.empty() || !completed_.empty() || !claims_.empty() || !writes_.empty(); });
      if (queue_.empty() && completed_.empty() && claims_.empty() && writes_.empty() && stopping_) {
        stopped_ = true;
        return;
      }
      writes.swap(writes_);
      while (!queue_.empty() && batch.size() < max_batch_) {
        batch.push_back(std::move(queue_.front()));
        queue_.pop_front();
      }
      finished.swap(completed_);
      claims.swap(claims_);
      if (stopping_) {
        // No new work is started while stopping: the queue keeps it for the next start, and
        // the writer is not kept running until a backlog is drained.
        for (auto& request : claims) request.answer.set_value(std::vector<store::ClaimedDelivery>{});
        claims.clear();
      }
    }
    // The acks' transaction holds new deliveries only: Slack waits for it. What the workers
    // finished and claim, and the job engine's writes, follow in a transaction of their own.
    const bool admitted = batch.empty() || admit(batch);
    commit_after_acks(finished, claims, writes);
    if (!admitted) {
      // A database refusing writes is not asked again at once.
      std::unique_lock lock(mutex_);
      wake_.wait_for(lock, std::chrono::milliseconds(100), [&] { return stopping_; });
    }
  }
}

}  // namespace deputy::engine
