#include "engine/ingest.h"

#include <spdlog/spdlog.h>

#include <algorithm>

#include "common/threads.h"

namespace deputy::engine {

Ingest::Ingest(store::Inbox& inbox, Handoff handoff, size_t max_batch)
    : inbox_(inbox), handoff_(std::move(handoff)), max_batch_(max_batch), writer_([this] { loop(); }) {}

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
    store::InboxBatch write;
    {
      std::unique_lock lock(mutex_);
      wake_.wait(lock, [&] { return stopping_ || !queue_.empty() || !completed_.empty() || !claims_.empty(); });
      if (queue_.empty() && completed_.empty() && claims_.empty() && stopping_) {
        stopped_ = true;
        return;
      }
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
    auto written = inbox_.write(write);
    if (!written) {
      spdlog::error("could not store {} Slack deliveries: {}", batch.size(), written.status().message());
      for (auto& item : batch) item.second(written.status());
      for (auto& request : claims) request.answer.set_value(written.status());
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
  }
}

}  // namespace deputy::engine
