// Where writes that a caller can wait for asynchronously go. On SQLite one writer thread
// commits many callers' writes in one transaction (group commit), so no worker holds the
// database's only write lock while an ack waits for it; elsewhere each write is its own
// transaction on the calling thread.
#pragma once

#include <condition_variable>
#include <cstddef>
#include <deque>
#include <functional>
#include <mutex>
#include <string_view>
#include <thread>
#include <vector>

#include "store/database.h"

namespace deputy::store {

class Writes {
 public:
  using Work = std::function<Status(Connection&)>;
  using Written = std::function<void(Status)>;
  virtual ~Writes() = default;
  // Runs `work` inside a write transaction, perhaps beside other callers' work; its changes
  // are kept only if it returns Ok. `written` is told once, after the commit (or the failure),
  // perhaps on another thread.
  virtual void write(Work work, Durability durability, Written written) = 0;
  // The same, for one subject (a job's id): writes for the same subject are committed in the
  // order they were asked for. Writers that commit everything in order need not override it.
  virtual void write_for(std::string_view subject, Work work, Durability durability, Written written) {
    (void)subject;
    write(std::move(work), durability, std::move(written));
  }
};

// Each write in a transaction of its own, on the calling thread, before write() returns.
class DirectWrites final : public Writes {
 public:
  explicit DirectWrites(Database& database) : database_(database) {}
  void write(Work work, Durability durability, Written written) override;
  // The same, answered as a value.
  Status write_now(const Work& work, Durability durability);

 private:
  Database& database_;
};

// A bounded executor for a database whose calls wait on the network (PostgreSQL): `lanes`
// threads ("deputy-db"), each with a queue of its own, so no worker waits on a round trip and
// at most `lanes` pooled connections are busy with these writes. Writes for one subject always
// go to the same lane and so commit in order; the others are spread over the lanes in turn.
class LaneWrites final : public Writes {
 public:
  LaneWrites(Database& database, size_t lanes);
  ~LaneWrites() override;
  LaneWrites(const LaneWrites&) = delete;
  LaneWrites& operator=(const LaneWrites&) = delete;

  void write(Work work, Durability durability, Written written) override;
  void write_for(std::string_view subject, Work work, Durability durability, Written written) override;
  // Writes what is queued, then stops the lanes; later writes run on the calling thread.
  void stop();
  // Writes asked for and not yet told (for tests and metrics).
  size_t pending() const;

 private:
  struct Pending {
    Work work;
    Durability durability;
    Written written;
  };
  struct Lane {
    std::deque<Pending> queue;
    std::condition_variable wake;
    std::thread thread;
  };
  void enqueue(size_t lane, Pending pending);
  void run(size_t lane);

  DirectWrites direct_;
  mutable std::mutex mutex_;
  std::vector<Lane> lanes_;  // sized once: lanes never move
  size_t next_lane_ = 0;
  size_t pending_ = 0;
  bool stopping_ = false;
};

}  // namespace deputy::store
