#include "cluster/membership.h"

#include <gtest/gtest.h>

#include <thread>

#include "common/clock.h"
#include "store/inbox.h"
#include "store/jobs.h"
#include "testing/databases.h"

namespace deputy::cluster {
namespace {

using namespace std::chrono_literals;

struct MembershipTest : ::testing::TestWithParam<std::string> {
  testing::TestDatabase db{GetParam()};

  void SetUp() override { DEPUTY_REQUIRE_DATABASE(db); }

  // Heartbeats every 50 ms, taken over after 400 ms of silence: fresh for 300 ms after a beat.
  std::unique_ptr<Membership> join(int64_t pid, std::chrono::milliseconds takeover = 400ms) {
    auto joined = Membership::join(*db.database, MembershipSettings{50ms, takeover, "host-a", pid});
    EXPECT_TRUE(joined) << joined.status().message();
    return joined ? std::move(joined).value() : nullptr;
  }

  int64_t scalar(const std::string& sql, const store::Params& params = {}) {
    auto lease = db.database->acquire();
    auto rows = (*lease)->query(sql, params);
    EXPECT_TRUE(rows && !rows->empty()) << sql;
    return rows && !rows->empty() && !rows->front().is_null(0) ? rows->front().integer(0) : -1;
  }

  static store::JobRecord job(const std::string& id) {
    store::JobRecord j;
    j.id = id;
    j.origin = "origin-" + id;
    j.team_id = "T1";
    j.requester = "U1";
    j.recipe = "create opportunity";
    j.params = "{}";
    j.reply_to = "{}";
    return j;
  }
};

TEST_P(MembershipTest, EachRunJoinsWithAnEpochOfItsOwn) {
  auto a = join(101);
  auto b = join(102);
  ASSERT_TRUE(a && b);
  EXPECT_GT(a->epoch(), 0);
  EXPECT_NE(a->epoch(), b->epoch());
  EXPECT_EQ(a->name(), "host-a:101");
  EXPECT_EQ(scalar("SELECT pid FROM processes WHERE epoch = ?", {a->epoch()}), 101);
  EXPECT_TRUE(a->fresh());
}

TEST_P(MembershipTest, ARunSilentForTheTakeoverTimeIsEndedAndWhatItHeldGoesBackAtOnce) {
  auto silent = join(101);
  auto taker = join(102);
  ASSERT_TRUE(silent && taker);
  const Clock& clock = SystemClock::instance();
  store::Inbox held_inbox(*db.database, clock, 600s, *silent);
  store::Inbox other_inbox(*db.database, clock, 600s, *taker);
  store::Jobs held_jobs(*db.database, clock, 300s, *silent);
  ASSERT_TRUE(held_inbox.admit({store::Delivery{"T1", "slash_command", "{}", "key-1"}}));
  auto delivery = held_inbox.claim(300s);
  ASSERT_TRUE(delivery && delivery->has_value());
  ASSERT_TRUE(held_jobs.create(job("j1")));
  auto running = held_jobs.claim("j1");
  ASSERT_TRUE(running && running->has_value());

  auto early = taker->take_over_silent();
  ASSERT_TRUE(early);
  EXPECT_TRUE(early->empty()) << "not silent long enough yet";

  std::this_thread::sleep_for(450ms);
  ASSERT_TRUE(taker->beat().ok());
  auto taken = taker->take_over_silent();
  ASSERT_TRUE(taken) << taken.status().message();
  ASSERT_EQ(taken->size(), 1u);
  EXPECT_EQ(taken->front().epoch, silent->epoch());
  EXPECT_EQ(taken->front().pid, 101);
  EXPECT_GE(taken->front().silent_ms, 400);
  EXPECT_EQ(taken->front().deliveries, 1);
  EXPECT_EQ(taken->front().jobs, 1);
  EXPECT_GE(scalar("SELECT ended_at FROM processes WHERE epoch = ?", {silent->epoch()}), 0);
  EXPECT_TRUE(taker->take_over_silent()->empty()) << "a run is taken over once";

  auto again = other_inbox.claim_up_to(300s, 5);
  ASSERT_TRUE(again);
  ASSERT_EQ(again->size(), 2u) << "back in the queue now, not when its 300 s lease runs out, with a delivery that drives the job";
  EXPECT_EQ(again->front().epoch, taker->epoch());
  EXPECT_EQ(again->front().delivery.kind, "slash_command");
  EXPECT_EQ(again->back().delivery.kind, "job");
  EXPECT_EQ(again->back().delivery.payload, "j1");
  EXPECT_EQ(held_jobs.finish(**running, store::job_state::kSucceeded, "late").code(), ErrorCode::kAborted)
      << "the silent run can no longer change its job";

  const int64_t old_epoch = silent->epoch();
  ASSERT_TRUE(silent->beat().ok());
  EXPECT_NE(silent->epoch(), old_epoch) << "it found it was taken over and joined again";
  EXPECT_TRUE(silent->fresh());
}

TEST_P(MembershipTest, EachRunIsJudgedByTheTakeoverTimeItStopsItselfBy) {
  // A setting changed one process at a time: the quick one must not take over the patient
  // one, which still acts for up to its own takeover time less two heartbeats.
  auto patient = join(101, 60s);
  auto quick = join(102, 400ms);
  ASSERT_TRUE(patient && quick);
  std::this_thread::sleep_for(450ms);
  ASSERT_TRUE(patient->beat().ok());
  auto by_patient = patient->take_over_silent();
  ASSERT_TRUE(by_patient);
  ASSERT_EQ(by_patient->size(), 1u) << "the quick one is judged by its own 400 ms";
  EXPECT_EQ(by_patient->front().epoch, quick->epoch());
  auto by_quick = join(103, 400ms)->take_over_silent();
  ASSERT_TRUE(by_quick);
  EXPECT_TRUE(by_quick->empty()) << "the patient one is silent 450 ms of its 60 s";
}

TEST_P(MembershipTest, ClaimsMadeUnderARunThatHadEndedAreGivenBack) {
  auto paused = join(101);
  auto taker = join(102);
  ASSERT_TRUE(paused && taker);
  std::this_thread::sleep_for(450ms);
  ASSERT_TRUE(taker->beat().ok());
  ASSERT_EQ(taker->take_over_silent()->size(), 1u);
  // A worker of the paused run claims before its heartbeat finds out: under the ended epoch.
  store::FixedOwnership ended(paused->epoch());
  const Clock& clock = SystemClock::instance();
  store::Inbox late_inbox(*db.database, clock, 600s, ended);
  ASSERT_TRUE(late_inbox.admit({store::Delivery{"T1", "slash_command", "{}", "key-1"}}));
  auto late = late_inbox.claim(300s);
  ASSERT_TRUE(late && late->has_value());
  store::Jobs late_jobs(*db.database, clock, 300s, ended);
  ASSERT_TRUE(late_jobs.create(job("j1")));
  ASSERT_TRUE(late_jobs.claim("j1")->has_value());

  auto swept = taker->take_over_silent();
  ASSERT_TRUE(swept) << swept.status().message();
  ASSERT_EQ(swept->size(), 1u);
  EXPECT_EQ(swept->front().epoch, paused->epoch());
  EXPECT_EQ(swept->front().deliveries, 1);
  EXPECT_EQ(swept->front().jobs, 1);
  store::Inbox taker_inbox(*db.database, clock, 600s, *taker);
  auto claimed = taker_inbox.claim_up_to(300s, 5);
  ASSERT_TRUE(claimed);
  EXPECT_EQ(claimed->size(), 2u) << "the delivery, and one that drives the job";
}

TEST_P(MembershipTest, ARunThatKeepsItsHeartbeatIsNotTakenOver) {
  auto alive = join(101);
  auto other = join(102);
  ASSERT_TRUE(alive && other);
  for (int i = 0; i < 10; ++i) {
    std::this_thread::sleep_for(50ms);
    ASSERT_TRUE(alive->beat().ok());
    ASSERT_TRUE(other->beat().ok());
  }
  auto taken = other->take_over_silent();
  ASSERT_TRUE(taken);
  EXPECT_TRUE(taken->empty());
  EXPECT_EQ(scalar("SELECT COUNT(*) FROM processes WHERE ended_at IS NULL"), 2);
}

TEST_P(MembershipTest, ARunStopsStartingWorkWellBeforeItCouldBeTakenOver) {
  auto run = join(101);
  ASSERT_TRUE(run);
  const int64_t epoch = run->epoch();
  EXPECT_TRUE(run->may_act_for(epoch));
  EXPECT_FALSE(run->may_act_for(epoch + 1)) << "work claimed by an earlier run is not this run's";
  // The takeover time less two heartbeats: 300 ms.
  std::this_thread::sleep_for(320ms);
  EXPECT_FALSE(run->fresh());
  EXPECT_FALSE(run->may_act_for(epoch));
  ASSERT_TRUE(run->beat().ok());
  EXPECT_TRUE(run->fresh());
  EXPECT_EQ(run->epoch(), epoch) << "not taken over: same run";
}

TEST_P(MembershipTest, LeavingHandsBackWhatTheRunHeldAndEndsIt) {
  auto leaving = join(101, 60s);
  auto staying = join(102, 60s);
  ASSERT_TRUE(leaving && staying);
  const Clock& clock = SystemClock::instance();
  store::Inbox leaving_inbox(*db.database, clock, 600s, *leaving);
  store::Inbox staying_inbox(*db.database, clock, 600s, *staying);
  ASSERT_TRUE(leaving_inbox.admit({store::Delivery{"T1", "slash_command", "{}", "key-1"}, store::Delivery{"T1", "slash_command", "{}", "key-2"}}));
  auto claimed = leaving_inbox.claim_up_to(300s, 2);
  ASSERT_TRUE(claimed && claimed->size() == 2);
  auto back = leaving->leave();
  ASSERT_TRUE(back) << back.status().message();
  EXPECT_EQ(back->deliveries, 2);
  EXPECT_GE(scalar("SELECT ended_at FROM processes WHERE epoch = ?", {leaving->epoch()}), 0);
  auto taken = staying_inbox.claim_up_to(300s, 5);
  ASSERT_TRUE(taken);
  EXPECT_EQ(taken->size(), 2u) << "at once, with a takeover time of a minute";
}

TEST_P(MembershipTest, OneRunAtATimeHoldsALease) {
  auto a = join(101);
  auto b = join(102);
  ASSERT_TRUE(a && b);
  EXPECT_TRUE(*a->hold_lease("housekeeping", 200ms));
  EXPECT_FALSE(*b->hold_lease("housekeeping", 200ms));
  EXPECT_TRUE(*a->hold_lease("housekeeping", 200ms)) << "its holder renews it";
  EXPECT_TRUE(*b->hold_lease("other task", 200ms)) << "each task has its own";
  std::this_thread::sleep_for(250ms);
  EXPECT_TRUE(*b->hold_lease("housekeeping", 200ms)) << "once the holder stops renewing, another takes it";
  EXPECT_FALSE(*a->hold_lease("housekeeping", 200ms));
}

INSTANTIATE_TEST_SUITE_P(Backends, MembershipTest, ::testing::Values("sqlite", "postgres"), [](const auto& info) { return info.param; });

}  // namespace
}  // namespace deputy::cluster
