#include "store/jobs.h"

#include <gtest/gtest.h>

#include "store/inbox.h"
#include "testing/databases.h"

namespace deputy::store {
namespace {

struct JobsTest : ::testing::TestWithParam<std::string> {
  testing::TestDatabase db{GetParam()};
  FixedClock clock{1700000000};
  std::unique_ptr<Jobs> jobs;

  void SetUp() override {
    DEPUTY_REQUIRE_DATABASE(db);
    jobs = std::make_unique<Jobs>(*db.database, clock, std::chrono::seconds(300));
  }

  static JobRecord unstored(const std::string& id, const std::string& origin) {
    JobRecord j;
    j.id = id;
    j.origin = origin;
    j.team_id = "T1";
    j.requester = "U1";
    j.recipe = "create opportunity";
    j.params = R"({"name":"Acme"})";
    j.reply_to = "{}";
    return j;
  }

  // The job claimed, as its runner holds it.
  JobRecord held(const std::string& id) {
    auto claimed = jobs->claim(id);
    EXPECT_TRUE(claimed && claimed->has_value()) << id << " could not be claimed";
    return claimed && claimed->has_value() ? **claimed : JobRecord{};
  }

  JobRecord make(const std::string& id, const std::string& origin) {
    JobRecord j = unstored(id, origin);
    auto stored = jobs->create(j);
    EXPECT_TRUE(stored) << stored.status().message();
    return stored ? *stored : j;
  }
};

TEST_P(JobsTest, ADeliveryMakesOneJobHoweverOftenItIsHandled) {
  JobRecord first = make("J1", "delivery:7");
  JobRecord again = make("J2", "delivery:7");
  EXPECT_EQ(first.id, "J1");
  EXPECT_EQ(again.id, "J1");
  EXPECT_EQ(jobs->count_by_state()->at("queued"), 1);
}

TEST_P(JobsTest, OnlyOneRunnerHoldsAJobUntilItsLeaseRunsOut) {
  make("J1", "d1");
  ASSERT_TRUE(jobs->claim("J1")->has_value());
  EXPECT_FALSE(jobs->claim("J1")->has_value());
  clock.advance(std::chrono::seconds(301));
  EXPECT_TRUE(jobs->claim("J1")->has_value());
  ASSERT_TRUE(jobs->release_all_running().ok());
  auto again = jobs->claim("J1");
  ASSERT_TRUE(again && again->has_value());
  ASSERT_TRUE(jobs->finish(**again, job_state::kSucceeded, "done").ok());
  EXPECT_FALSE(jobs->claim("J1")->has_value());
}

TEST_P(JobsTest, CreatedAndClaimedInOneWriteOncePerOriginAndOnlyByOneRunner) {
  JobRecord job = unstored("J1", "delivery:9");
  auto first = jobs->create_and_claim(job);
  ASSERT_TRUE(first && first->has_value()) << first.status().message();
  EXPECT_EQ((*first)->state, job_state::kRunning);
  // What the runner goes on with is what was stored.
  auto stored = jobs->get("J1");
  ASSERT_TRUE(stored && stored->has_value());
  for (const JobRecord* j : {&**first, &**stored}) {
    EXPECT_EQ(j->state, job_state::kRunning);
    EXPECT_EQ(j->step, 0);
    EXPECT_EQ(j->origin, "delivery:9");
    EXPECT_EQ(j->params, job.params);
    EXPECT_EQ(j->reply_to, job.reply_to);
    EXPECT_EQ(j->context, job.context);
    EXPECT_EQ(j->created_at, clock.unix_seconds());
  }
  job.id = "J2";  // Slack's retry of the same delivery, handled again
  auto retried = jobs->create_and_claim(job);
  ASSERT_TRUE(retried);
  EXPECT_FALSE(retried->has_value()) << "the first runner still holds it";
  clock.advance(std::chrono::seconds(301));
  auto after_lease = jobs->create_and_claim(job);
  ASSERT_TRUE(after_lease && after_lease->has_value());
  EXPECT_EQ((*after_lease)->id, "J1") << "still the one job of that delivery";
  ASSERT_TRUE(jobs->finish(**after_lease, job_state::kSucceeded, "done").ok());
  clock.advance(std::chrono::seconds(301));
  EXPECT_FALSE(jobs->create_and_claim(job)->has_value()) << "a finished job is not run again";
  EXPECT_FALSE(jobs->get("J2")->has_value());
}

TEST_P(JobsTest, StepOutcomesAreRecordedOnceAndAdvanceTheJob) {
  make("J1", "d1");
  JobRecord job1 = held("J1");
  EXPECT_FALSE(jobs->step("J1", 0)->has_value());
  ASSERT_TRUE(jobs->begin_step(job1, 0, "U1", "alice@example.com").ok());
  EXPECT_EQ((*jobs->step("J1", 0))->state, step_state::kStarted);
  // An idempotent step may begin again; a finished one may not.
  ASSERT_TRUE(jobs->begin_step(job1, 0, "U1", "alice@example.com").ok());
  ASSERT_TRUE(jobs->finish_step(job1, 0, R"({"id":"006"})", R"({"steps":{"create":{"id":"006"}}})").ok());
  EXPECT_FALSE(jobs->begin_step(job1, 0, "U1", "x").ok());
  auto job = jobs->get("J1");
  EXPECT_EQ((*job)->step, 1);
  EXPECT_EQ((*job)->context, R"({"steps":{"create":{"id":"006"}}})");
  EXPECT_EQ((*jobs->step("J1", 0))->result, R"({"id":"006"})");

  ASSERT_TRUE(jobs->begin_step(job1, 1, "U1", "x").ok());
  ASSERT_TRUE(jobs->abandon_step(job1, 1).ok());
  EXPECT_FALSE(jobs->step("J1", 1)->has_value());
}

TEST_P(JobsTest, ALoginResumesTheJobsWaitingForItWithADeliveryEach) {
  make("J1", "d1");
  make("J2", "d2");
  make("J3", "d3");
  ASSERT_TRUE(jobs->park(held("J1"), job_state::kAwaitingAuth, "U1", "salesforce", "{}").ok());
  ASSERT_TRUE(jobs->park(held("J2"), job_state::kAwaitingAuth, "U1", "box", "{}").ok());
  ASSERT_TRUE(jobs->park(held("J3"), job_state::kAwaitingAuth, "U2", "salesforce", "{}").ok());
  auto resumed = jobs->resume_after_login("T1", "U1", "salesforce");
  ASSERT_TRUE(resumed) << resumed.status().message();
  EXPECT_EQ(*resumed, std::vector<std::string>{"J1"});
  EXPECT_EQ((*jobs->get("J1"))->state, job_state::kQueued);
  EXPECT_EQ((*jobs->get("J2"))->state, job_state::kAwaitingAuth);
  Inbox inbox(*db.database, clock, std::chrono::seconds(3600));
  auto claimed = inbox.claim(std::chrono::seconds(60));
  ASSERT_TRUE(claimed && claimed->has_value());
  EXPECT_EQ((*claimed)->delivery.kind, "job");
  EXPECT_EQ((*claimed)->delivery.payload, "J1");
  EXPECT_TRUE(jobs->resume_after_login("T1", "U1", "salesforce")->empty());
}

TEST_P(JobsTest, AFailedLoginCancelsOnlyTheRequestersJobStillWaitingForThatLogin) {
  make("J1", "d1");
  make("J2", "d2");
  make("J3", "d3");
  ASSERT_TRUE(jobs->park(held("J1"), job_state::kAwaitingAuth, "U1", "salesforce", "{}").ok());
  ASSERT_TRUE(jobs->park(held("J2"), job_state::kAwaitingAuth, "U1", "salesforce", "{}").ok());
  // J3 waits for its approver's login, not its requester's.
  ASSERT_TRUE(jobs->park(held("J3"), job_state::kAwaitingAuth, "U0BOB", "salesforce", "{}").ok());
  const int64_t link_made = clock.unix_seconds();
  auto cancel = [&](const std::string& job, const std::string& team, const std::string& user, const std::string& app) {
    auto r = jobs->cancel_waiting(job, team, user, app, link_made, "the Salesforce login failed");
    EXPECT_TRUE(r) << r.status().message();
    return r ? *r : std::nullopt;
  };
  EXPECT_FALSE(cancel("J1", "T1", "U2", "salesforce")) << "someone else's login";
  EXPECT_FALSE(cancel("J1", "T1", "U1", "box")) << "another app's login";
  EXPECT_FALSE(cancel("J1", "T2", "U1", "salesforce")) << "another workspace";
  EXPECT_FALSE(cancel("J3", "T1", "U0BOB", "salesforce")) << "an approver's failed login leaves the requester's job alone";
  EXPECT_EQ(cancel("J1", "T1", "U1", "salesforce"), std::optional<std::string>("create opportunity"));
  EXPECT_EQ((*jobs->get("J1"))->state, job_state::kCancelled);
  EXPECT_EQ((*jobs->get("J2"))->state, job_state::kAwaitingAuth);
  EXPECT_EQ((*jobs->get("J3"))->state, job_state::kAwaitingAuth);
  EXPECT_FALSE(cancel("J1", "T1", "U1", "salesforce")) << "once";

  // J2 runs again later (the person logged in) and is parked again, with a newer link: the
  // old link's failure no longer cancels it.
  clock.advance(std::chrono::seconds(30));
  ASSERT_EQ(*jobs->resume_after_login("T1", "U1", "salesforce"), std::vector<std::string>{"J2"});
  ASSERT_TRUE(jobs->park(held("J2"), job_state::kAwaitingAuth, "U1", "salesforce", "{}").ok());
  EXPECT_FALSE(cancel("J2", "T1", "U1", "salesforce")) << "a stale link";
  EXPECT_EQ(*jobs->resume_after_login("T1", "U1", "salesforce"), std::vector<std::string>{"J2"});
}

TEST_P(JobsTest, OnlyTheApproverDecidesAndOnlyOnce) {
  make("J1", "d1");
  ASSERT_TRUE(jobs->park(held("J1"), job_state::kAwaitingApproval, "U0BOB", "", "{}").ok());
  EXPECT_EQ(*jobs->decide("J1", 0, "T1", "U0EVE", true), Decision::kNotTheApprover);
  EXPECT_EQ(*jobs->decide("J1", 0, "T2", "U0BOB", true), Decision::kNotTheApprover) << "the approver's id in another workspace";
  EXPECT_EQ(*jobs->decide("J1", 3, "T1", "U0BOB", true), Decision::kNotWaiting);
  EXPECT_EQ(*jobs->decide("nope", 0, "T1", "U0BOB", true), Decision::kNotWaiting);
  EXPECT_EQ(*jobs->decide("J1", 0, "T1", "U0BOB", true), Decision::kRecorded);
  EXPECT_EQ(*jobs->decide("J1", 0, "T1", "U0BOB", false), Decision::kAlreadyDecided);
  EXPECT_EQ(*jobs->decide("J1", 0, "T1", "U0EVE", false), Decision::kAlreadyDecided);
  auto step = jobs->step("J1", 0);
  EXPECT_EQ((*step)->state, step_state::kApproved);
  EXPECT_EQ((*step)->actor, "U0BOB");
  EXPECT_EQ((*jobs->get("J1"))->state, job_state::kQueued);
}

TEST_P(JobsTest, AJobTakenOverCanNoLongerBeChangedByItsFormerHolder) {
  FixedOwnership first_run(41), second_run(42);
  Jobs former(*db.database, clock, std::chrono::seconds(300), first_run);
  Jobs taker(*db.database, clock, std::chrono::seconds(300), second_run);
  JobRecord job = unstored("J1", "d1");
  auto mine = former.create_and_claim(job);
  ASSERT_TRUE(mine && mine->has_value());
  EXPECT_EQ((*mine)->epoch, 41);
  ASSERT_TRUE(former.begin_step(**mine, 0, "U1", "alice@example.com").ok());

  // The first run stopped answering: its jobs go back to the queue and another run claims it.
  {
    auto connection = db.database->acquire();
    ASSERT_TRUE(connection);
    auto released = Jobs::release_held_by_in(**connection, 41, clock.unix_seconds());
    ASSERT_TRUE(released);
    EXPECT_EQ(*released, 1);
  }
  auto theirs = taker.claim("J1");
  ASSERT_TRUE(theirs && theirs->has_value()) << "taken over at once, not after the 300 s lease";
  EXPECT_EQ((*theirs)->epoch, 42);

  // Everything the former holder still tries changes nothing.
  const JobRecord& stale = **mine;
  for (const Status& s : {former.finish_step(stale, 0, "{}", R"({"late":true})"), former.begin_step(stale, 1, "U1", "x"),
                          former.abandon_step(stale, 0), former.advance(stale, 5, "{}"),
                          former.park(stale, job_state::kAwaitingAuth, "U1", "salesforce", "{}"), former.requeue(stale),
                          former.finish(stale, job_state::kSucceeded, "done twice")}) {
    if (!s.ok()) {
      EXPECT_EQ(s.code(), ErrorCode::kAborted) << s.message();
    }
  }
  auto now = jobs->get("J1");
  ASSERT_TRUE(now && now->has_value());
  EXPECT_EQ((*now)->state, job_state::kRunning);
  EXPECT_EQ((*now)->step, 0);
  EXPECT_EQ((*now)->context, job.context);
  EXPECT_EQ((*jobs->step("J1", 0))->state, step_state::kStarted) << "the step it may have sent stays in doubt for the new holder";
  EXPECT_FALSE(jobs->step("J1", 1)->has_value());
  ASSERT_TRUE(taker.finish(**theirs, job_state::kFailed, "in doubt").ok()) << "the new holder's changes go through";
}

INSTANTIATE_TEST_SUITE_P(Backends, JobsTest, ::testing::Values("sqlite", "postgres"), [](const auto& info) { return info.param; });

}  // namespace
}  // namespace deputy::store
