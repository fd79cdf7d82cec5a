// Which Deputy processes share the database, and who holds what. Each run of a process joins
// with a row of its own in `processes`, whose id is the run's epoch, and heartbeats it. Claims
// on deliveries and jobs carry that epoch (store/ownership.h). A run silent for the takeover
// time is ended by another process, and everything it held goes back to the queue in the same
// transaction. Every time here is the database's clock, never a host's.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "common/result.h"
#include "store/database.h"
#include "store/ownership.h"

namespace deputy::cluster {

struct MembershipSettings {
  std::chrono::milliseconds heartbeat{2000};
  // Silent this long (by the database's clock), a run is taken over.
  std::chrono::milliseconds takeover{10000};
  std::string host;
  int64_t pid = 0;
  // The only process on its database (SQLite): it never loses its heartbeat.
  bool alone = false;
};

// A run that another took over, as the taker saw it.
struct TakenOver {
  int64_t epoch = 0;
  std::string host;
  int64_t pid = 0;
  int64_t silent_ms = 0;
  int64_t deliveries = 0;
  int64_t jobs = 0;
  int64_t renewals = 0;
};

struct HandedBack {
  int64_t deliveries = 0;
  int64_t jobs = 0;
};

// The database's clock in milliseconds since the epoch, as an SQL expression.
const char* database_now_ms(store::Dialect dialect);

class Membership final : public store::Ownership {
 public:
  using Clock = std::chrono::steady_clock;

  // `database` is the membership's own: heartbeats must not queue behind busy workers for a
  // pooled connection, or a busy process would look dead.
  static Result<std::unique_ptr<Membership>> join(store::Database& database, MembershipSettings settings);
  ~Membership() override;
  Membership(const Membership&) = delete;
  Membership& operator=(const Membership&) = delete;

  // This run's epoch; a new one after the run was taken over and joined again.
  int64_t epoch() const override { return epoch_.load(); }
  // Whether this run may start work: its last heartbeat went through recently enough that no
  // other process can have taken it over (the takeover time less two heartbeats, counted from
  // when that heartbeat was sent). A process paused or cut off from the database stops starting
  // anything well before the others take its work.
  bool fresh() const override;
  // "host:pid", the label this process's metrics carry.
  const std::string& name() const { return name_; }

  // One heartbeat. A run that finds it was taken over joins again with a new epoch.
  Status beat();
  // Ends every other run silent for the takeover time and gives back what it held.
  Result<std::vector<TakenOver>> take_over_silent();
  // Whether this run holds the lease named `task` (renewing it for `ttl`): only one run at a
  // time does the work behind it, and another takes it once the holder stops renewing.
  Result<bool> hold_lease(const std::string& task, std::chrono::milliseconds ttl);

  // Forgets runs that ended longer ago than `age` (housekeeping).
  Status forget_ended_before(std::chrono::hours age);

  // Heartbeats and takeovers on a thread of their own, every heartbeat interval.
  void start();  // nothing to do for a process alone on its database
  // Stops heartbeating, gives back what this run still holds and marks it ended.
  Result<HandedBack> leave();

 private:
  Membership(store::Database& database, MembershipSettings settings);
  Status join_new_run();
  void loop();

  store::Database& database_;
  MembershipSettings settings_;
  std::string name_;
  std::atomic<int64_t> epoch_{0};
  // When the last heartbeat that went through was sent (steady clock, in its ticks).
  std::atomic<Clock::rep> last_beat_sent_{0};
  std::mutex mutex_;
  std::condition_variable wake_;
  bool stopping_ = false;
  bool left_ = false;
  std::thread thread_;
};

}  // namespace deputy::cluster
