#include "engine/workers.h"

#include <gtest/gtest.h>

#include <atomic>
#include <future>
#include <set>
#include <thread>

#include "testing/databases.h"
#include "testing/switchable_ownership.h"
#include "testing/eventually.h"

namespace deputy::engine {
namespace {

using namespace std::chrono_literals;

using testing::eventually;

// Deliveries whose handler starts them and returns, as a job waiting on an app does; the
// test finishes them later from a thread of its own, as the network's answer would.
struct AsyncWorkersTest : ::testing::Test {
  testing::TestDatabase test_db{"sqlite"};
  FixedClock clock{1700000000};
  store::Inbox inbox{*test_db.database, clock, std::chrono::seconds(600)};

  std::mutex mutex;
  std::vector<std::pair<store::ClaimedDelivery, Workers::Finish>> started;
  std::set<std::thread::id> started_on;

  Workers::StartHandle hold = [this](const store::ClaimedDelivery& d, Workers::Finish finish) {
    std::lock_guard lock(mutex);
    started.emplace_back(d, std::move(finish));
    started_on.insert(std::this_thread::get_id());
  };

  size_t started_count() {
    std::lock_guard lock(mutex);
    return started.size();
  }
  void finish_all(Status outcome = Status::Ok()) {
    std::vector<Workers::Finish> finishes;
    {
      std::lock_guard lock(mutex);
      for (auto& [d, f] : started) finishes.push_back(std::move(f));
      started.clear();
    }
    std::thread answers([&] {
      for (auto& f : finishes) f(outcome);
    });
    answers.join();
  }
  int64_t in_state(const std::string& state) {
    auto states = inbox.count_by_state();
    return states && states->count(state) ? states->at(state) : 0;
  }
  void enqueue(int count) {
    for (int i = 0; i < count; ++i) ASSERT_TRUE(inbox.enqueue("T1", "job", "job-" + std::to_string(i), 0s).ok());
  }
};

using testing::SwitchableOwnership;

TEST_F(AsyncWorkersTest, AProcessWhoseHeartbeatIsLateClaimsAndStartsNothing) {
  SwitchableOwnership owner;
  store::Inbox owned(*test_db.database, clock, std::chrono::seconds(600), owner);
  enqueue(5);
  owner.heartbeat_held = false;
  Workers workers(owned, hold, 2);
  workers.start();
  workers.notify();
  std::this_thread::sleep_for(1500ms);  // longer than the workers' poll interval
  EXPECT_EQ(started_count(), 0u);
  EXPECT_EQ(in_state("queued"), 5) << "not even claimed: the others may be taking over";
  owner.heartbeat_held = true;
  workers.notify();
  EXPECT_TRUE(eventually([&] { return started_count() == 5; })) << started_count() << " started";
  finish_all();
  workers.stop();
}

TEST_F(AsyncWorkersTest, WorkClaimedByAnEarlierRunOfTheProcessIsNotStarted) {
  SwitchableOwnership owner;
  store::Inbox owned(*test_db.database, clock, std::chrono::seconds(600), owner);
  enqueue(1);
  auto claimed = owned.claim_up_to(std::chrono::seconds(300), 1);
  ASSERT_TRUE(claimed && claimed->size() == 1u);
  owner.current = 8;  // taken over, joined again
  Workers workers(owned, hold, 1);
  workers.start();
  workers.hand_over(std::move(*claimed));
  std::this_thread::sleep_for(300ms);
  EXPECT_EQ(started_count(), 0u);
  EXPECT_EQ(in_state("queued"), 1) << "given back, as the takeover would: the old run's claim is nobody's";
  workers.stop();
}

TEST_F(AsyncWorkersTest, DeliveriesWaitingOnTheNetworkHoldNoThread) {
  enqueue(50);
  Workers workers(inbox, hold, 1);
  workers.set_claim_batch(16);
  workers.start();
  // One worker thread has started all fifty, and none has finished.
  ASSERT_TRUE(eventually([&] { return started_count() == 50; })) << started_count() << " started";
  EXPECT_EQ(started_on.size(), 1u);
  // The worker takes a slot before it looks for more work, so for a moment it may count 51.
  EXPECT_TRUE(eventually([&] { return workers.in_flight() == 50u; })) << workers.in_flight();
  EXPECT_EQ(in_state("working"), 50);
  finish_all();
  EXPECT_TRUE(eventually([&] { return in_state("working") == 0 && in_state("queued") == 0; }));
  EXPECT_EQ(workers.in_flight(), 0u);
  workers.stop();
}

TEST_F(AsyncWorkersTest, NoMoreThanTheLimitAreInFlight) {
  enqueue(20);
  Workers workers(inbox, hold, 2);
  workers.set_max_in_flight(5);
  workers.start();
  ASSERT_TRUE(eventually([&] { return started_count() == 5; }));
  std::this_thread::sleep_for(100ms);
  EXPECT_EQ(started_count(), 5u) << "a sixth waits for a free slot";
  finish_all();
  ASSERT_TRUE(eventually([&] { return started_count() == 5; })) << "the next five start as the first finish";
  finish_all();
  ASSERT_TRUE(eventually([&] { return started_count() == 5; }));
  finish_all();
  ASSERT_TRUE(eventually([&] { return started_count() == 5; }));
  finish_all();
  EXPECT_TRUE(eventually([&] { return in_state("working") == 0 && in_state("queued") == 0; }))
      << in_state("working") << " working, " << in_state("queued") << " queued, " << started_count() << " started";
  workers.stop();
}

TEST_F(AsyncWorkersTest, AFailureReportedLaterIsRetriedLikeAnImmediateOne) {
  enqueue(1);
  Workers workers(inbox, hold, 1, /*max_attempts=*/3);
  workers.start();
  ASSERT_TRUE(eventually([&] { return started_count() == 1; }));
  finish_all(Unavailable("app answered 503"));
  ASSERT_TRUE(eventually([&] { return in_state("queued") == 1; })) << "back in the queue for a later try";
  clock.advance(61s);
  workers.notify();
  ASSERT_TRUE(eventually([&] { return started_count() == 1; }));
  {
    std::lock_guard lock(mutex);
    EXPECT_EQ(started.front().first.attempts, 2);
  }
  finish_all(InvalidArgument("the app refused it"));
  EXPECT_TRUE(eventually([&] { return in_state("failed") == 1; }));
  workers.stop();
}

TEST_F(AsyncWorkersTest, AnAskedForWaitIsKeptAndIsNotATry) {
  enqueue(1);
  Workers workers(inbox, hold, 1, /*max_attempts=*/1);
  workers.start();
  for (int wait = 0; wait < 3; ++wait) {
    ASSERT_TRUE(eventually([&] { return started_count() == 1; }));
    {
      std::lock_guard lock(mutex);
      EXPECT_EQ(started.front().first.attempts, 1) << "a deferral never uses up the only try";
    }
    finish_all(Unavailable("rate limited").with_retry_after(30s));
    ASSERT_TRUE(eventually([&] { return in_state("queued") == 1; }));
    clock.advance(29s);
    workers.notify();
    std::this_thread::sleep_for(30ms);
    EXPECT_EQ(started_count(), 0u) << "not brought back before its wait is over";
    clock.advance(1s);
    workers.notify();
  }
  ASSERT_TRUE(eventually([&] { return started_count() == 1; }));
  finish_all(Unavailable("app answered 503"));
  EXPECT_TRUE(eventually([&] { return in_state("failed") == 1; })) << "a plain Unavailable uses the try";
  workers.stop();
}

TEST_F(AsyncWorkersTest, FinishingTwiceSettlesOnce) {
  enqueue(1);
  Workers workers(inbox, hold, 1);
  workers.start();
  ASSERT_TRUE(eventually([&] { return started_count() == 1; }));
  Workers::Finish finish;
  {
    std::lock_guard lock(mutex);
    finish = started.front().second;
  }
  finish(Status::Ok());
  finish(Unavailable("a late second answer"));
  ASSERT_TRUE(eventually([&] { return in_state("working") == 0; }));
  std::this_thread::sleep_for(50ms);
  EXPECT_EQ(in_state("queued"), 0) << "the second finish did not send it back to the queue";
  EXPECT_EQ(workers.in_flight(), 0u);
  workers.stop();
}

TEST_F(AsyncWorkersTest, PostedContinuationsRunOnAWorkerBeforeNewDeliveries) {
  Workers workers(inbox, hold, 1);
  workers.start();
  std::promise<std::thread::id> ran_on;
  workers.executor()->post([&] { ran_on.set_value(std::this_thread::get_id()); });
  auto id = ran_on.get_future().get();
  EXPECT_NE(id, std::this_thread::get_id());
  workers.stop();
}

TEST_F(AsyncWorkersTest, StopWaitsForCallsInFlightThenLeavesTheRestToTheirLeases) {
  enqueue(2);
  auto workers = std::make_unique<Workers>(inbox, hold, 1);
  workers->set_claim_batch(2);
  workers->set_stop_grace(300ms);
  workers->start();
  ASSERT_TRUE(eventually([&] { return started_count() == 2; }));
  Workers::Finish first, second;
  {
    std::lock_guard lock(mutex);
    first = started[0].second;
    second = started[1].second;
  }
  std::shared_ptr<Executor> executor = workers->executor();
  std::thread answers([&] {
    std::this_thread::sleep_for(50ms);
    first(Status::Ok());  // answered within the grace: settled
  });
  workers->stop();
  answers.join();
  EXPECT_EQ(in_state("working"), 1) << "the unanswered one keeps its lease, to be claimed again";
  workers.reset();
  // Answers after the workers are gone are dropped, not run against freed memory.
  second(Status::Ok());
  executor->post([] { FAIL() << "ran after stop"; });
  EXPECT_EQ(in_state("working"), 1);
}

}  // namespace
}  // namespace deputy::engine
