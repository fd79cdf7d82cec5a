#include "store/inbox.h"

#include <gtest/gtest.h>

#include "testing/databases.h"

namespace deputy::store {
namespace {

struct InboxTest : ::testing::TestWithParam<std::string> {
  testing::TestDatabase test_db{GetParam()};
  FixedClock clock{1700000000};
  Database* db = test_db.database.get();
  std::unique_ptr<Inbox> inbox = db ? std::make_unique<Inbox>(*db, clock, std::chrono::seconds(600)) : nullptr;

  void SetUp() override { DEPUTY_REQUIRE_DATABASE(test_db); }

  Delivery delivery(const std::string& key) { return Delivery{"T1", "event", R"({"k":")" + key + R"("})", key}; }
};

TEST_P(InboxTest, AdmitsOnceAndDeduplicatesRetries) {
  auto first = inbox->admit({delivery("event:T1:Ev1")});
  ASSERT_TRUE(first);
  EXPECT_EQ((*first)[0], Admission::kAccepted);
  auto retry = inbox->admit({delivery("event:T1:Ev1"), delivery("event:T1:Ev2")});
  ASSERT_TRUE(retry);
  EXPECT_EQ((*retry)[0], Admission::kDuplicate);
  EXPECT_EQ((*retry)[1], Admission::kAccepted);
  EXPECT_EQ(inbox->count_by_state()->at("queued"), 2);
}

TEST_P(InboxTest, DuplicatesInsideOneBatchRunOnce) {
  auto admitted = inbox->admit({delivery("k"), delivery("k")});
  ASSERT_TRUE(admitted);
  EXPECT_EQ((*admitted)[0], Admission::kAccepted);
  EXPECT_EQ((*admitted)[1], Admission::kDuplicate);
}

TEST_P(InboxTest, KeysAreRememberedForTheWindowAndNotLonger) {
  ASSERT_TRUE(inbox->admit({delivery("k")}));
  clock.advance(std::chrono::seconds(599));
  EXPECT_EQ((*inbox->admit({delivery("k")}))[0], Admission::kDuplicate);
  clock.advance(std::chrono::seconds(2));
  EXPECT_EQ((*inbox->admit({delivery("k")}))[0], Admission::kAccepted);
}

TEST_P(InboxTest, PurgeDropsExpiredKeysOnlyEvenWhenAnExpiredKeyCameBack) {
  auto keys = [&] {
    std::vector<std::string> out;
    auto lease = db->acquire();
    auto rows = (*lease)->query("SELECT dedupe_key FROM slack_dedupe ORDER BY dedupe_key");
    if (rows) {
      for (const Row& row : *rows) out.push_back(row.text(0));
    }
    return out;
  };
  ASSERT_TRUE(inbox->admit({delivery("a"), delivery("b")}));
  clock.advance(std::chrono::seconds(300));
  ASSERT_TRUE(inbox->admit({delivery("c")}));
  clock.advance(std::chrono::seconds(301));  // a and b are 601 s old, past the window; c is 301 s old
  EXPECT_EQ((*inbox->admit({delivery("a")}))[0], Admission::kAccepted) << "a is back, for a new window";
  ASSERT_TRUE(inbox->purge_expired_dedupe_keys().ok());
  // The oldest row, a's, now holds a live key: b, stored after it, must still go.
  EXPECT_EQ(keys(), (std::vector<std::string>{"a", "c"}));
  auto again = inbox->admit({delivery("a"), delivery("b"), delivery("c")});
  ASSERT_TRUE(again);
  EXPECT_EQ((*again)[0], Admission::kDuplicate);
  EXPECT_EQ((*again)[1], Admission::kAccepted);
  EXPECT_EQ((*again)[2], Admission::kDuplicate);
}

TEST_P(InboxTest, PurgeTakesLargeBacklogsOfExpiredKeys) {
  // More than one slice of the purge, so it has to go on after the first.
  for (int batch = 0; batch < 12; ++batch) {
    std::vector<Delivery> deliveries;
    for (int i = 0; i < 1000; ++i) deliveries.push_back(delivery("old-" + std::to_string(batch * 1000 + i)));
    ASSERT_TRUE(inbox->admit(deliveries));
  }
  clock.advance(std::chrono::seconds(601));
  ASSERT_TRUE(inbox->admit({delivery("new")}));
  ASSERT_TRUE(inbox->purge_expired_dedupe_keys().ok());
  auto lease = db->acquire();
  auto left = (*lease)->query("SELECT dedupe_key FROM slack_dedupe");
  ASSERT_TRUE(left);
  ASSERT_EQ(left->size(), 1u);
  EXPECT_EQ(left->front().text(0), "new");
}

TEST_P(InboxTest, ALargeBatchIsQueuedWholeInOrderOfArrival) {
  // Queued deliveries go in several rows per statement: more than one statement's worth, with
  // duplicates among them, and the first few handed straight to the workers.
  InboxBatch batch;
  std::vector<std::string> expected;
  for (int i = 0; i < 40; ++i) {
    std::string key = "k" + std::to_string(i);
    batch.deliveries.push_back(delivery(key));
    if (i % 7 == 3) batch.deliveries.push_back(delivery(key));  // a retry right behind it
    if (i >= 2) expected.push_back(R"({"k":")" + key + R"("})");
  }
  batch.claim_first = 2;
  batch.lease = std::chrono::seconds(60);
  auto written = inbox->write(batch);
  ASSERT_TRUE(written) << written.status().message();
  ASSERT_EQ(written->admissions.size(), batch.deliveries.size());
  size_t accepted = 0;
  for (Admission a : written->admissions) accepted += a == Admission::kAccepted;
  EXPECT_EQ(accepted, 40u);
  ASSERT_EQ(written->claimed.size(), 2u);
  EXPECT_EQ(written->claimed[0].first, 0u);
  EXPECT_EQ(written->claimed[1].first, 1u);
  auto claimed = inbox->claim_up_to(std::chrono::seconds(60), 100);
  ASSERT_TRUE(claimed);
  std::vector<std::string> payloads;
  for (const auto& c : *claimed) {
    payloads.push_back(c.delivery.payload);
    EXPECT_EQ(c.delivery.team_id, "T1");
    EXPECT_EQ(c.delivery.kind, "event");
    EXPECT_EQ(c.attempts, 1);
    EXPECT_GT(c.id, written->claimed[1].second.id);
  }
  EXPECT_EQ(payloads, expected);
}

TEST_P(InboxTest, DedupeSurvivesReopeningTheDatabase) {
  ASSERT_TRUE(inbox->admit({delivery("k")}));
  auto reopened = test_db.reopen();
  Inbox again(*reopened, clock, std::chrono::seconds(600));
  EXPECT_EQ((*again.admit({delivery("k")}))[0], Admission::kDuplicate);
}

TEST_P(InboxTest, ClaimCompleteAndRetry) {
  ASSERT_TRUE(inbox->admit({delivery("a"), delivery("b")}));
  auto a = inbox->claim(std::chrono::seconds(60));
  ASSERT_TRUE(a && a->has_value());
  EXPECT_EQ((*a)->delivery.payload, R"({"k":"a"})");
  EXPECT_EQ((*a)->attempts, 1);
  auto b = inbox->claim(std::chrono::seconds(60));
  ASSERT_TRUE(b && b->has_value());
  EXPECT_FALSE(inbox->claim(std::chrono::seconds(60))->has_value()) << "claimed work is not handed out twice";
  ASSERT_TRUE(inbox->complete((*a)->held()).ok());
  ASSERT_TRUE(inbox->release((*b)->held(), std::chrono::seconds(10)).ok());
  EXPECT_FALSE(inbox->claim(std::chrono::seconds(60))->has_value()) << "released work waits for its delay";
  clock.advance(std::chrono::seconds(10));
  auto again = inbox->claim(std::chrono::seconds(60));
  ASSERT_TRUE(again && again->has_value());
  EXPECT_EQ((*again)->attempts, 2);
}

TEST_P(InboxTest, ADeferredDeliveryWaitsWholeSecondsAndIsNotChargedATry) {
  ASSERT_TRUE(inbox->admit({delivery("a")}));
  auto a = inbox->claim(std::chrono::seconds(60));
  ASSERT_TRUE(a && a->has_value());
  ASSERT_EQ((*a)->attempts, 1);
  clock.advance(std::chrono::milliseconds(900));  // 0.9 s into a second
  ASSERT_TRUE(inbox->defer((*a)->held(), std::chrono::milliseconds(1200)).ok());
  clock.advance(std::chrono::milliseconds(1250));
  EXPECT_FALSE(inbox->claim(std::chrono::seconds(60))->has_value()) << "never sooner than asked, though the queue keeps whole seconds";
  clock.advance(std::chrono::milliseconds(850));  // the next whole second after 1.2 s
  auto again = inbox->claim(std::chrono::seconds(60));
  ASSERT_TRUE(again && again->has_value());
  EXPECT_EQ((*again)->attempts, 1) << "waiting out a rate limit is not a try";
  ASSERT_TRUE(inbox->complete((*again)->held()).ok());
  ASSERT_TRUE(inbox->defer((*again)->held(), std::chrono::milliseconds(0)).ok());
  EXPECT_FALSE(inbox->claim(std::chrono::seconds(60))->has_value()) << "a finished delivery is not brought back";
}

TEST_P(InboxTest, ClaimUpToTakesSeveralDueDeliveriesOldestFirstAndOnlyOnce) {
  ASSERT_TRUE(inbox->admit({delivery("a"), delivery("b"), delivery("c"), delivery("d")}));
  auto b_later = inbox->claim(std::chrono::seconds(60));  // "a", released to run later than the rest
  ASSERT_TRUE(b_later && b_later->has_value());
  ASSERT_TRUE(inbox->release((*b_later)->held(), std::chrono::seconds(5)).ok());

  auto first = inbox->claim_up_to(std::chrono::seconds(60), 2);
  ASSERT_TRUE(first) << first.status().message();
  ASSERT_EQ(first->size(), 2u);
  EXPECT_EQ((*first)[0].delivery.payload, R"({"k":"b"})");
  EXPECT_EQ((*first)[1].delivery.payload, R"({"k":"c"})");
  EXPECT_EQ((*first)[0].attempts, 1);
  auto rest = inbox->claim_up_to(std::chrono::seconds(60), 10);
  ASSERT_TRUE(rest);
  ASSERT_EQ(rest->size(), 1u) << "claimed ones and the one not yet due are left";
  EXPECT_EQ((*rest)[0].delivery.payload, R"({"k":"d"})");
  EXPECT_EQ(*inbox->count_by_state(), (std::map<std::string, int64_t>{{"queued", 1}, {"working", 3}}));

  clock.advance(std::chrono::seconds(61));
  auto abandoned = inbox->claim_up_to(std::chrono::seconds(60), 10);
  ASSERT_TRUE(abandoned);
  ASSERT_EQ(abandoned->size(), 1u) << "queued work that is due comes before abandoned work";
  EXPECT_EQ((*abandoned)[0].delivery.payload, R"({"k":"a"})");
  EXPECT_EQ((*abandoned)[0].attempts, 2);
  auto expired = inbox->claim_up_to(std::chrono::seconds(60), 10);
  ASSERT_TRUE(expired);
  EXPECT_EQ(expired->size(), 3u) << "then the three whose lease ran out";
  EXPECT_TRUE(inbox->claim_up_to(std::chrono::seconds(60), 10)->empty());
}

TEST_P(InboxTest, AnExpiredLeaseIsHandedOutAgain) {
  ASSERT_TRUE(inbox->admit({delivery("a")}));
  ASSERT_TRUE(inbox->claim(std::chrono::seconds(60))->has_value());
  clock.advance(std::chrono::seconds(61));
  EXPECT_TRUE(inbox->claim(std::chrono::seconds(60))->has_value());
}

TEST_P(InboxTest, ABatchWriteStoresTheFirstNewDeliveriesClaimedAndDeletesFinishedOnes) {
  ASSERT_TRUE(inbox->admit({delivery("old")}));
  auto old = inbox->claim(std::chrono::seconds(60));
  ASSERT_TRUE(old && old->has_value());

  InboxBatch batch;
  batch.deliveries = {delivery("dup"), delivery("dup"), delivery("a"), delivery("b")};
  batch.claim_first = 2;
  batch.lease = std::chrono::seconds(60);
  batch.completed = {(*old)->held()};
  auto written = inbox->write(batch);
  ASSERT_TRUE(written) << written.status().message();
  EXPECT_EQ(written->admissions,
            (std::vector<Admission>{Admission::kAccepted, Admission::kDuplicate, Admission::kAccepted, Admission::kAccepted}));
  ASSERT_EQ(written->claimed.size(), 2u) << "duplicates are not claimed";
  EXPECT_EQ(written->claimed[0].first, 0u);
  EXPECT_EQ(written->claimed[1].first, 2u);
  auto states = *inbox->count_by_state();
  EXPECT_EQ(states["working"], 2) << "the finished one is gone, two are held by this process";
  EXPECT_EQ(states["queued"], 1);

  auto b = inbox->claim(std::chrono::seconds(60));
  ASSERT_TRUE(b && b->has_value());
  EXPECT_EQ((*b)->delivery.payload, R"({"k":"b"})") << "claimed ones are not handed out again";
  EXPECT_FALSE(inbox->claim(std::chrono::seconds(60))->has_value());
  clock.advance(std::chrono::seconds(59));
  EXPECT_FALSE(inbox->claim(std::chrono::seconds(60))->has_value()) << "held for the whole lease";
  clock.advance(std::chrono::seconds(2));
  EXPECT_TRUE(inbox->claim(std::chrono::seconds(60))->has_value()) << "a claim made at admission has a lease like any other";
}

TEST_P(InboxTest, ABatchWriteClaimsQueuedDeliveriesBeforeStoringNewOnes) {
  ASSERT_TRUE(inbox->admit({delivery("old1"), delivery("old2"), delivery("old3")}));
  InboxBatch batch;
  batch.claim_queued = 2;
  batch.deliveries = {delivery("new")};
  batch.lease = std::chrono::seconds(60);
  auto written = inbox->write(batch);
  ASSERT_TRUE(written) << written.status().message();
  ASSERT_EQ(written->backlog.size(), 2u);
  EXPECT_EQ(written->backlog[0].delivery.payload, R"({"k":"old1"})");
  EXPECT_EQ(written->backlog[1].delivery.payload, R"({"k":"old2"})");
  EXPECT_EQ(written->backlog[0].attempts, 1);
  EXPECT_EQ(written->admissions, std::vector<Admission>{Admission::kAccepted});
  EXPECT_EQ(*inbox->count_by_state(), (std::map<std::string, int64_t>{{"queued", 2}, {"working", 2}}));

  InboxBatch more;
  more.claim_queued = 10;
  auto rest = inbox->write(more);
  ASSERT_TRUE(rest);
  ASSERT_EQ(rest->backlog.size(), 2u) << "what was left, the new one last";
  EXPECT_EQ(rest->backlog[0].delivery.payload, R"({"k":"old3"})");
  EXPECT_EQ(rest->backlog[1].delivery.payload, R"({"k":"new"})");
}

TEST_P(InboxTest, ADeliveryFinishedInTheSameWriteIsNotClaimedAgainAsAbandoned) {
  ASSERT_TRUE(inbox->admit({delivery("a")}));
  auto a = inbox->claim(std::chrono::seconds(60));
  ASSERT_TRUE(a && a->has_value());
  clock.advance(std::chrono::seconds(61));  // its lease ran out just as it finished
  InboxBatch batch;
  batch.completed = {(*a)->held()};
  batch.claim_queued = 5;
  auto written = inbox->write(batch);
  ASSERT_TRUE(written);
  EXPECT_TRUE(written->backlog.empty());
  EXPECT_TRUE(inbox->count_by_state()->empty());
}

TEST_P(InboxTest, ADeliveryTakenOverIsNoLongerItsFormerHoldersToFinishOrGiveBack) {
  FixedOwnership first_run(7), second_run(8);
  Inbox former(*test_db.database, clock, std::chrono::seconds(600), first_run);
  Inbox taker(*test_db.database, clock, std::chrono::seconds(600), second_run);
  ASSERT_TRUE(former.admit({delivery("a")}));
  auto mine = former.claim(std::chrono::seconds(300));
  ASSERT_TRUE(mine && mine->has_value());
  EXPECT_EQ((*mine)->epoch, 7);
  {
    auto connection = test_db.database->acquire();
    ASSERT_TRUE(connection);
    auto released = Inbox::release_held_by_in(**connection, 7, clock.unix_seconds());
    ASSERT_TRUE(released);
    EXPECT_EQ(*released, 1);
  }
  auto theirs = taker.claim(std::chrono::seconds(300));
  ASSERT_TRUE(theirs && theirs->has_value()) << "back in the queue at once, not after the 300 s lease";
  EXPECT_EQ((*theirs)->id, (*mine)->id);
  EXPECT_EQ((*theirs)->epoch, 8);
  EXPECT_EQ((*theirs)->attempts, 2) << "the try it was on counts";

  const Held stale = (*mine)->held();
  ASSERT_TRUE(former.complete(stale).ok());
  ASSERT_TRUE(former.release(stale, std::chrono::seconds(0)).ok());
  ASSERT_TRUE(former.defer(stale, std::chrono::milliseconds(0)).ok());
  ASSERT_TRUE(former.release_unstarted(stale).ok());
  ASSERT_TRUE(former.fail(stale, "late").ok());
  EXPECT_EQ(inbox->count_by_state()->at("working"), 1) << "still the new holder's";
  EXPECT_FALSE(taker.claim(std::chrono::seconds(300))->has_value());
  ASSERT_TRUE(taker.complete((*theirs)->held()).ok());
  EXPECT_TRUE(inbox->count_by_state()->empty());
}

TEST_P(InboxTest, AGivenBackDeliveryKeepsItsPlaceByArrival) {
  ASSERT_TRUE(inbox->admit({delivery("a")}));
  clock.advance(std::chrono::seconds(10));
  ASSERT_TRUE(inbox->admit({delivery("b")}));
  auto a = inbox->claim(std::chrono::seconds(60));
  ASSERT_TRUE(a && a->has_value());
  ASSERT_EQ((*a)->delivery.payload, R"({"k":"a"})");
  clock.advance(std::chrono::seconds(10));
  ASSERT_TRUE(inbox->release_unstarted((*a)->held()).ok());
  auto next = inbox->claim(std::chrono::seconds(60));
  ASSERT_TRUE(next && next->has_value());
  EXPECT_EQ((*next)->delivery.payload, R"({"k":"a"})") << "it came before b";
  EXPECT_EQ((*next)->attempts, 1);
}

TEST_P(InboxTest, RequeueAfterCrash) {
  ASSERT_TRUE(inbox->admit({delivery("a")}));
  ASSERT_TRUE(inbox->claim(std::chrono::seconds(600))->has_value());
  ASSERT_TRUE(inbox->requeue_all_working().ok());
  EXPECT_TRUE(inbox->claim(std::chrono::seconds(600))->has_value());
}

}  // namespace
}  // namespace deputy::store

namespace deputy::store {
namespace {

TEST_P(InboxTest, AFailedAdmissionLeavesTheKeyFreeForSlacksRetry) {
  {
    auto lease = db->acquire();
    ASSERT_TRUE((*lease)->execute("ALTER TABLE inbox RENAME TO inbox_away"));
  }
  auto failed = inbox->admit({delivery("event:T1:EvLost")});
  EXPECT_FALSE(failed) << "with the inbox unwritable the admission fails as a whole";
  {
    auto lease = db->acquire();
    ASSERT_TRUE((*lease)->execute("ALTER TABLE inbox_away RENAME TO inbox"));
  }
  auto retried = inbox->admit({delivery("event:T1:EvLost")});
  ASSERT_TRUE(retried);
  EXPECT_EQ((*retried)[0], Admission::kAccepted) << "the retry of a never-stored delivery is processed, not dropped";
}

}  // namespace
}  // namespace deputy::store

namespace deputy::store {
INSTANTIATE_TEST_SUITE_P(Backends, InboxTest, ::testing::Values("sqlite", "postgres"),
                         [](const auto& info) { return info.param; });
}  // namespace deputy::store
