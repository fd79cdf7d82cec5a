#include "store/writes.h"

#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <mutex>
#include <thread>
#include <vector>

#include "testing/databases.h"
#include "testing/eventually.h"

namespace deputy::store {
namespace {

using namespace std::chrono_literals;

// Holds writes until opened, so a test can see what runs while others wait.
class Gate {
 public:
  void open() {
    {
      std::lock_guard lock(mutex_);
      open_ = true;
    }
    wake_.notify_all();
  }
  void pass() {
    std::unique_lock lock(mutex_);
    wake_.wait(lock, [&] { return open_; });
  }

 private:
  std::mutex mutex_;
  std::condition_variable wake_;
  bool open_ = false;
};

// Opens the gate when a test ends early, before the lanes are joined.
struct OpenOnExit {
  Gate& gate;
  ~OpenOnExit() { gate.open(); }
};

// Every Written callback, gathered from the lanes' threads.
class Told {
 public:
  Writes::Written collect() {
    return [this](Status s) {
      std::lock_guard lock(mutex_);
      statuses_.push_back(std::move(s));
    };
  }
  size_t count() {
    std::lock_guard lock(mutex_);
    return statuses_.size();
  }
  std::vector<Status> statuses() {
    std::lock_guard lock(mutex_);
    return statuses_;
  }

 private:
  std::mutex mutex_;
  std::vector<Status> statuses_;
};

struct LaneWritesTest : ::testing::TestWithParam<std::string> {
  testing::TestDatabase db{GetParam(), 6};

  void SetUp() override {
    DEPUTY_REQUIRE_DATABASE(db);
    auto lease = db.database->acquire();
    ASSERT_TRUE(lease);
    ASSERT_TRUE((*lease)->execute("CREATE TABLE lane_test (seq INTEGER NOT NULL, n INTEGER NOT NULL, subject TEXT NOT NULL)"));
  }

  // Rows are numbered in the order their work ran (commit order, on one lane).
  std::atomic<int64_t> sequence{0};

  Writes::Work insert(int n, const std::string& subject, Gate* gate = nullptr) {
    return [this, n, subject, gate](Connection& tx) -> Status {
      if (gate) gate->pass();
      auto inserted = tx.execute("INSERT INTO lane_test (seq, n, subject) VALUES (?, ?, ?)", {++sequence, int64_t{n}, subject});
      return inserted ? Status::Ok() : inserted.status();
    };
  }

  std::vector<int64_t> committed(const std::string& subject) {
    auto lease = db.database->acquire();
    auto rows = (*lease)->query("SELECT n FROM lane_test WHERE subject = ? ORDER BY seq", {subject});
    std::vector<int64_t> out;
    if (rows)
      for (const Row& row : *rows) out.push_back(row.integer(0));
    return out;
  }
};

TEST_P(LaneWritesTest, WriteReturnsBeforeTheDatabaseIsReached) {
  Gate gate;
  LaneWrites writes(*db.database, 2);
  OpenOnExit opens{gate};
  Told told;
  writes.write(insert(1, "a", &gate), Durability::kNormal, told.collect());
  // The caller (a worker) is free while the write waits on its lane.
  EXPECT_EQ(told.count(), 0u);
  EXPECT_EQ(writes.pending(), 1u);
  gate.open();
  ASSERT_TRUE(testing::eventually([&] { return told.count() == 1; }));
  EXPECT_TRUE(told.statuses()[0].ok()) << told.statuses()[0].message();
  ASSERT_TRUE(testing::eventually([&] { return writes.pending() == 0; }));
}

TEST_P(LaneWritesTest, NoMoreWritesRunAtOnceThanThereAreLanes) {
  Gate gate;
  LaneWrites writes(*db.database, 2);
  OpenOnExit opens{gate};
  std::atomic<int> running{0}, most{0};
  Told told;
  for (int i = 0; i < 6; ++i) {
    writes.write(
        [&](Connection&) -> Status {
          most = std::max(most.load(), ++running);
          gate.pass();
          --running;
          return Status::Ok();
        },
        Durability::kNormal, told.collect());
  }
  ASSERT_TRUE(testing::eventually([&] { return running.load() == 2; }));
  std::this_thread::sleep_for(50ms);  // time for a third lane, were there one, to start
  EXPECT_EQ(most.load(), 2);
  gate.open();
  ASSERT_TRUE(testing::eventually([&] { return told.count() == 6; }));
}

TEST_P(LaneWritesTest, WritesForOneSubjectCommitInTheOrderAskedWhileOthersPass) {
  Gate gate;
  LaneWrites writes(*db.database, 4);
  OpenOnExit opens{gate};
  Told told;
  // The job's first write is held; its second must not overtake it on another lane.
  writes.write_for("job-1", insert(1, "job-1", &gate), Durability::kNormal, told.collect());
  writes.write_for("job-1", insert(2, "job-1"), Durability::kNormal, told.collect());
  for (int i = 0; i < 8; ++i) writes.write_for("other-" + std::to_string(i), insert(i, "other"), Durability::kNormal, told.collect());
  // Writes for other subjects, on the other lanes, do not wait for the held one.
  ASSERT_TRUE(testing::eventually([&] { return !committed("other").empty(); }));
  EXPECT_TRUE(committed("job-1").empty());
  gate.open();
  ASSERT_TRUE(testing::eventually([&] { return told.count() == 10; }));
  EXPECT_EQ(committed("job-1"), (std::vector<int64_t>{1, 2}));
}

TEST_P(LaneWritesTest, AFailingWriteIsUndoneAndToldItsReason) {
  LaneWrites writes(*db.database, 2);
  Told told;
  writes.write(
      [](Connection& tx) -> Status {
        (void)tx.execute("INSERT INTO lane_test (seq, n, subject) VALUES (0, 9, 'undone')");
        return FailedPrecondition("the job moved on");
      },
      Durability::kDurable, told.collect());
  ASSERT_TRUE(testing::eventually([&] { return told.count() == 1; }));
  EXPECT_EQ(told.statuses()[0].code(), ErrorCode::kFailedPrecondition);
  EXPECT_TRUE(committed("undone").empty());
}

TEST_P(LaneWritesTest, StopWritesWhatIsQueuedAndLaterWritesRunOnTheCaller) {
  Told told;
  {
    Gate gate;
    LaneWrites writes(*db.database, 1);
    OpenOnExit opens{gate};
    writes.write_for("s", insert(1, "s", &gate), Durability::kNormal, told.collect());
    for (int i = 2; i <= 5; ++i) writes.write_for("s", insert(i, "s"), Durability::kNormal, told.collect());
    std::thread opener([&] {
      std::this_thread::sleep_for(20ms);
      gate.open();
    });
    writes.stop();
    opener.join();
    EXPECT_EQ(told.count(), 5u) << "stop() returns once every queued write is in";
    writes.write_for("s", insert(6, "s"), Durability::kNormal, told.collect());
    EXPECT_EQ(told.count(), 6u) << "after stop() a write runs before write() returns";
  }
  EXPECT_EQ(committed("s"), (std::vector<int64_t>{1, 2, 3, 4, 5, 6}));
}

// PostgreSQL only, the database the lanes are for: SQLite takes one write at a time anyway
// (the ingest writer is its Writes).
INSTANTIATE_TEST_SUITE_P(Backends, LaneWritesTest, ::testing::Values("postgres"));

}  // namespace
}  // namespace deputy::store
