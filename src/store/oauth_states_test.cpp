#include "store/oauth_states.h"

#include <gtest/gtest.h>

#include "testing/databases.h"

namespace deputy::store {
namespace {

struct OAuthStatesTest : ::testing::TestWithParam<std::string> {
  testing::TestDatabase db{GetParam()};
  FixedClock clock{1700000000};
  std::unique_ptr<OAuthStates> states;

  void SetUp() override {
    DEPUTY_REQUIRE_DATABASE(db);
    states = std::make_unique<OAuthStates>(*db.database, clock);
  }

  void create(const std::string& hash) {
    PendingLogin p{hash, "T1", "U1", "demo", "personal", "job-1", "k1", Blob{"n"}, Blob{"s"}, "", clock.unix_seconds(),
                   clock.unix_seconds() + 600};
    ASSERT_TRUE(states->create(p).ok());
  }
};

TEST_P(OAuthStatesTest, AStateStartsOnceAndIsConsumedOnce) {
  create("h1");
  auto started = states->start("h1", "browser");
  ASSERT_TRUE(started);
  EXPECT_EQ(started->first, StateOutcome::kConsumed);
  EXPECT_EQ(started->second->job_id, "job-1");
  EXPECT_EQ(states->start("h1", "other-browser")->first, StateOutcome::kAlreadyUsed);
  auto consumed = states->consume("h1");
  EXPECT_EQ(consumed->first, StateOutcome::kConsumed);
  EXPECT_EQ(consumed->second->browser_hash, "browser");
  EXPECT_EQ(states->consume("h1")->first, StateOutcome::kAlreadyUsed);
  EXPECT_EQ(states->consume("nope")->first, StateOutcome::kUnknown);
}

TEST_P(OAuthStatesTest, StatesExpireAfterTenMinutes) {
  create("h2");
  create("h3");
  ASSERT_EQ(states->start("h3", "b")->first, StateOutcome::kConsumed);
  clock.advance(std::chrono::seconds(601));
  EXPECT_EQ(states->start("h2", "b")->first, StateOutcome::kExpired);
  EXPECT_EQ(states->consume("h3")->first, StateOutcome::kExpired);
  EXPECT_EQ(states->consume("h3")->first, StateOutcome::kAlreadyUsed) << "an expired state is burned too";
}

TEST_P(OAuthStatesTest, CancellingOnePersonsPendingLoginsLeavesOthersAlone) {
  create("mine-new");
  create("mine-started");
  ASSERT_EQ(states->start("mine-started", "b")->first, StateOutcome::kConsumed);
  PendingLogin other{"theirs", "T1", "U2", "demo", "personal", "", "k1", Blob{"n"}, Blob{"s"}, "", clock.unix_seconds(),
                     clock.unix_seconds() + 600};
  ASSERT_TRUE(states->create(other).ok());
  auto cancelled = states->cancel_pending("T1", "U1");
  ASSERT_TRUE(cancelled);
  EXPECT_EQ(*cancelled, 2);
  EXPECT_EQ(states->start("mine-new", "b")->first, StateOutcome::kAlreadyUsed);
  EXPECT_EQ(states->consume("mine-started")->first, StateOutcome::kAlreadyUsed);
  EXPECT_EQ(states->start("theirs", "b")->first, StateOutcome::kConsumed);
}

INSTANTIATE_TEST_SUITE_P(Backends, OAuthStatesTest, ::testing::Values("sqlite", "postgres"), [](const auto& info) { return info.param; });

}  // namespace
}  // namespace deputy::store
