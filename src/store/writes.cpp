#include "store/writes.h"

#include <algorithm>
#include <functional>

#include "common/threads.h"

namespace deputy::store {

Status DirectWrites::write_now(const Work& work, Durability durability) {
  auto lease = database_.acquire();
  if (!lease) return lease.status();
  return with_write_transaction(**lease, work, durability);
}

void DirectWrites::write(Work work, Durability durability, Written written) { written(write_now(work, durability)); }

LaneWrites::LaneWrites(Database& database, size_t lanes) : direct_(database), lanes_(std::max<size_t>(lanes, 1)) {
  for (size_t i = 0; i < lanes_.size(); ++i) lanes_[i].thread = std::thread([this, i] { run(i); });
}

LaneWrites::~LaneWrites() { stop(); }

void LaneWrites::write(Work work, Durability durability, Written written) {
  size_t lane;
  {
    std::lock_guard lock(mutex_);
    lane = next_lane_++ % lanes_.size();
  }
  enqueue(lane, {std::move(work), durability, std::move(written)});
}

void LaneWrites::write_for(std::string_view subject, Work work, Durability durability, Written written) {
  enqueue(std::hash<std::string_view>{}(subject) % lanes_.size(), {std::move(work), durability, std::move(written)});
}

void LaneWrites::enqueue(size_t lane, Pending pending) {
  {
    std::unique_lock lock(mutex_);
    if (!stopping_) {
      lanes_[lane].queue.push_back(std::move(pending));
      ++pending_;
      lock.unlock();
      lanes_[lane].wake.notify_one();
      return;
    }
  }
  direct_.write(std::move(pending.work), pending.durability, std::move(pending.written));
}

void LaneWrites::run(size_t lane) {
  name_this_thread("deputy-db");
  std::unique_lock lock(mutex_);
  for (;;) {
    lanes_[lane].wake.wait(lock, [&] { return stopping_ || !lanes_[lane].queue.empty(); });
    if (lanes_[lane].queue.empty()) return;  // stopping, and nothing left
    Pending next = std::move(lanes_[lane].queue.front());
    lanes_[lane].queue.pop_front();
    lock.unlock();
    next.written(direct_.write_now(next.work, next.durability));
    lock.lock();
    --pending_;
  }
}

void LaneWrites::stop() {
  {
    std::lock_guard lock(mutex_);
    if (stopping_) return;
    stopping_ = true;
  }
  for (Lane& lane : lanes_) lane.wake.notify_one();
  for (Lane& lane : lanes_)
    if (lane.thread.joinable()) lane.thread.join();
}

size_t LaneWrites::pending() const {
  std::lock_guard lock(mutex_);
  return pending_;
}

}  // namespace deputy::store
