#include "engine/ingest.h"

#include <spdlog/spdlog.h>

namespace deputy::engine {

Ingest::Ingest(store::Inbox& inbox, std::function<void()> on_admitted, size_t max_batch)
    : inbox_(inbox), on_admitted_(std::move(on_admitted)), max_batch_(max_batch), writer_([this] { loop(); }) {}

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
  while (true) {
    std::vector<std::pair<store::Delivery, Done>> batch;
    {
      std::unique_lock lock(mutex_);
      wake_.wait(lock, [&] { return stopping_ || !queue_.empty(); });
      if (queue_.empty() && stopping_) return;
      while (!queue_.empty() && batch.size() < max_batch_) {
        batch.push_back(std::move(queue_.front()));
        queue_.pop_front();
      }
    }
    std::vector<store::Delivery> deliveries;
    deliveries.reserve(batch.size());
    for (auto& item : batch) deliveries.push_back(std::move(item.first));
    auto admitted = inbox_.admit(deliveries);
    bool any_new = false;
    for (size_t i = 0; i < batch.size(); ++i) {
      if (!admitted) {
        batch[i].second(admitted.status());
        continue;
      }
      any_new = any_new || (*admitted)[i] == store::Admission::kAccepted;
      batch[i].second((*admitted)[i]);
    }
    if (!admitted) spdlog::error("could not store {} Slack deliveries: {}", batch.size(), admitted.status().message());
    if (any_new && on_admitted_) on_admitted_();
  }
}

}  // namespace deputy::engine
