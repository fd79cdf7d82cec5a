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

void Ingest::complete(int64_t id) {
  {
    std::lock_guard lock(mutex_);
    if (!stopped_) {
      completed_.push_back(id);
      wake_.notify_one();
      return;
    }
  }
  if (Status s = inbox_.complete(id); !s.ok()) spdlog::warn("could not delete finished delivery {}: {}", id, s.message());
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

void Ingest::commit(std::vector<PendingWrite>& writes) {
  if (writes.empty()) return;
  const bool durable = std::any_of(writes.begin(), writes.end(), [](const PendingWrite& w) { return w.durability == store::Durability::kDurable; });
  std::vector<Status> outcomes(writes.size());
  Status committed = [&]() -> Status {
    auto lease = inbox_.database().acquire();
    if (!lease) return lease.status();
    return store::with_write_transaction(
        **lease,
        [&](store::Connection& tx) -> Status {
          for (size_t i = 0; i < writes.size(); ++i) {
            if (auto marked = tx.execute("SAVEPOINT deputy_write"); !marked) return marked.status();
            outcomes[i] = writes[i].work(tx);
            if (!outcomes[i].ok()) {
              if (auto undone = tx.execute("ROLLBACK TO deputy_write"); !undone) return undone.status();
            }
            if (auto released = tx.execute("RELEASE deputy_write"); !released) return released.status();
          }
          return Status::Ok();
        },
        durable ? store::Durability::kDurable : store::Durability::kNormal);
  }();
  if (!committed.ok()) spdlog::error("could not commit {} job writes: {}", writes.size(), committed.message());
  for (size_t i = 0; i < writes.size(); ++i) writes[i].written(committed.ok() ? std::move(outcomes[i]) : committed);
  writes.clear();
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

void Ingest::loop() {
  name_this_thread("deputy-ingest");
  while (true) {
    std::vector<std::pair<store::Delivery, Done>> batch;
    std::vector<ClaimRequest> claims;
    std::vector<PendingWrite> writes;
    store::InboxBatch write;
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
      write.completed.swap(completed_);
      claims.swap(claims_);
      if (stopping_) {
        // No new work is started while stopping: the queue keeps it for the next start, and
        // the writer is not kept running until a backlog is drained.
        for (auto& request : claims) request.answer.set_value(std::vector<store::ClaimedDelivery>{});
        claims.clear();
      }
    }
    // One lease for the whole write: the longest asked for (the workers all ask for theirs).
    if (!claims.empty()) write.lease = claims.front().lease;
    for (const auto& request : claims) {
      write.claim_queued += request.limit;
      write.lease = std::max(write.lease, request.lease);
    }
    write.deliveries.reserve(batch.size());
    for (auto& item : batch) write.deliveries.push_back(std::move(item.first));
    write.claim_first = batch.empty() ? 0 : handoff_.room();
    if (batch.empty() && write.completed.empty() && claims.empty()) {
      commit(writes);
      continue;
    }
    auto written = inbox_.write(write);
    if (!written) {
      spdlog::error("could not store {} Slack deliveries: {}", batch.size(), written.status().message());
      for (auto& item : batch) item.second(written.status());
      for (auto& request : claims) request.answer.set_value(written.status());
      commit(writes);
      std::unique_lock lock(mutex_);
      if (stopping_) {
        // No more batches to ride on: delete them one by one, or a restart would run them again.
        lock.unlock();
        for (int64_t id : write.completed) {
          if (Status s = inbox_.complete(id); !s.ok()) spdlog::error("finished delivery {} stays marked as working: {}", id, s.message());
        }
        continue;
      }
      // The finished deliveries are still finished: their deletes go with the next write.
      completed_.insert(completed_.end(), write.completed.begin(), write.completed.end());
      wake_.wait_for(lock, std::chrono::milliseconds(100), [&] { return stopping_; });
      continue;
    }
    // Oldest first to whoever asked first; each gets at most what it asked for.
    size_t next_backlog = 0;
    for (auto& request : claims) {
      std::vector<store::ClaimedDelivery> share;
      while (share.size() < request.limit && next_backlog < written->backlog.size()) {
        share.push_back(std::move(written->backlog[next_backlog++]));
      }
      request.answer.set_value(std::move(share));
    }
    size_t accepted = 0;
    for (size_t i = 0; i < batch.size(); ++i) {
      if (written->admissions[i] == store::Admission::kAccepted) ++accepted;
      batch[i].second(written->admissions[i]);
    }
    std::vector<store::ClaimedDelivery> claimed;
    claimed.reserve(written->claimed.size());
    for (const auto& [index, id] : written->claimed) {
      claimed.push_back(store::ClaimedDelivery{id, 1, std::move(write.deliveries[index])});
    }
    handoff_.hand_over(std::move(claimed));
    if (accepted > written->claimed.size()) handoff_.notify();
    // After the acks: they must not wait for these (nor for an fsync a durable one asks for).
    commit(writes);
  }
}

}  // namespace deputy::engine
