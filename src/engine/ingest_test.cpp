#include "engine/ingest.h"

#include <gtest/gtest.h>
#include <pthread.h>
#include <sys/resource.h>
#include <unistd.h>

#include <cerrno>

#include <atomic>
#include <future>
#include <optional>
#include <set>
#include <thread>

#include "engine/workers.h"
#include "store/connections.h"
#include "testing/databases.h"
#include "testing/eventually.h"

namespace deputy::engine {
namespace {

using namespace std::chrono_literals;

using testing::eventually;

struct IngestTest : ::testing::TestWithParam<std::string> {
  testing::TestDatabase test_db{GetParam()};
  FixedClock clock{1700000000};
  std::unique_ptr<store::Inbox> inbox =
      test_db.ok() ? std::make_unique<store::Inbox>(*test_db.database, clock, std::chrono::seconds(600)) : nullptr;

  std::mutex seen_mutex;
  std::vector<store::ClaimedDelivery> seen;
  Workers::Handle record = [this](const store::ClaimedDelivery& d) {
    std::lock_guard lock(seen_mutex);
    seen.push_back(d);
    return Status::Ok();
  };

  void SetUp() override { DEPUTY_REQUIRE_DATABASE(test_db); }

  // Records each delivery, then holds the worker until `released` (only for `payload`, if given).
  Workers::Handle record_and_hold(std::shared_future<void> released, std::string payload = {}) {
    return [this, released, payload](const store::ClaimedDelivery& d) {
      record(d);
      if (payload.empty() || d.delivery.payload == payload) released.wait();
      return Status::Ok();
    };
  }

  static store::Delivery delivery(int n) {
    return store::Delivery{"T1", "event", "payload-" + std::to_string(n), "event:T1:Ev" + std::to_string(n)};
  }
  size_t seen_count() {
    std::lock_guard lock(seen_mutex);
    return seen.size();
  }
  int64_t in_inbox() {
    auto states = inbox->count_by_state();
    if (!states) return -1;
    int64_t total = 0;
    for (const auto& [state, count] : *states) total += count;
    return total;
  }
  Result<store::Admission> submit(Ingest& ingest, int n) {
    std::promise<Result<store::Admission>> acked;
    ingest.submit(delivery(n), [&](Result<store::Admission> r) { acked.set_value(std::move(r)); });
    return acked.get_future().get();
  }
  // `count` deliveries queued in the database (no room in memory) run once each, with their
  // first attempt, and the inbox ends empty.
  void expect_backlog_runs_once_each(Workers& workers, int count, bool claim_through_writer);
};

Ingest::Handoff to(Workers& workers) {
  Ingest::Handoff handoff;
  handoff.room = [&workers] { return workers.room(); };
  handoff.hand_over = [&workers](std::vector<store::ClaimedDelivery> c) { workers.hand_over(std::move(c)); };
  handoff.notify = [&workers] { workers.notify(); };
  return handoff;
}

void IngestTest::expect_backlog_runs_once_each(Workers& workers, int count, bool claim_through_writer) {
  Ingest::Handoff handoff = to(workers);
  handoff.room = [] { return size_t{0}; };
  Ingest ingest(*inbox, std::move(handoff));
  workers.set_complete([&](store::Held delivery) { ingest.complete(delivery); });
  if (claim_through_writer) {
    workers.set_claim([&](size_t limit, std::chrono::seconds lease) { return ingest.claim(limit, lease); });
  }
  for (int n = 0; n < count; ++n) ASSERT_EQ(*submit(ingest, n), store::Admission::kAccepted);
  workers.start();
  ASSERT_TRUE(eventually([&] { return seen_count() == static_cast<size_t>(count); }));
  EXPECT_TRUE(eventually([&] { return in_inbox() == 0; }));
  workers.stop();
  ingest.stop();
  std::lock_guard lock(seen_mutex);
  std::set<std::string> payloads;
  for (const auto& d : seen) {
    payloads.insert(d.delivery.payload);
    EXPECT_EQ(d.attempts, 1);
  }
  EXPECT_EQ(payloads.size(), static_cast<size_t>(count)) << "none ran twice";
}

TEST_P(IngestTest, AdmittedDeliveriesRunFromMemoryAndFinishedOnesAreDeleted) {
  Workers workers(*inbox, record, 2);
  Ingest ingest(*inbox, to(workers));
  workers.set_complete([&](store::Held delivery) { ingest.complete(delivery); });
  workers.start();
  ASSERT_TRUE(eventually([&] { return workers.room() > 0; })) << "room once the workers found the database empty";

  for (int n = 0; n < 10; ++n) ASSERT_EQ(*submit(ingest, n), store::Admission::kAccepted);
  EXPECT_EQ(*submit(ingest, 3), store::Admission::kDuplicate);
  ASSERT_TRUE(eventually([&] { return seen_count() == 10; }));
  for (const auto& d : seen) {
    EXPECT_EQ(d.attempts, 1);
    // A delivery read back from the database has no dedupe key; one handed over in memory does.
    EXPECT_FALSE(d.delivery.dedupe_key.empty()) << d.delivery.payload << " went through a database claim";
  }
  EXPECT_TRUE(eventually([&] { return in_inbox() == 0; })) << "finished deliveries are deleted with later writes";
  ingest.stop();
  workers.stop();
}

TEST_P(IngestTest, WithoutRoomDeliveriesWaitInTheDatabaseAndWorkersClaimThem) {
  Workers workers(*inbox, record, 1);
  Ingest::Handoff handoff = to(workers);
  handoff.room = [] { return size_t{0}; };
  Ingest ingest(*inbox, std::move(handoff));
  for (int n = 0; n < 3; ++n) ASSERT_EQ(*submit(ingest, n), store::Admission::kAccepted);
  EXPECT_EQ(inbox->count_by_state()->at("queued"), 3);
  workers.start();
  ASSERT_TRUE(eventually([&] { return seen_count() == 3; }));
  for (const auto& d : seen) EXPECT_TRUE(d.delivery.dedupe_key.empty()) << "claimed from the database";
  EXPECT_TRUE(eventually([&] { return in_inbox() == 0; }));
  ingest.stop();
  workers.stop();
}

TEST_P(IngestTest, ABacklogIsClaimedInBatchesAndEachDeliveryRunsOnce) {
  Workers workers(*inbox, record, 2);
  workers.set_claim_batch(8);
  expect_backlog_runs_once_each(workers, 20, /*claim_through_writer=*/false);
}

TEST_P(IngestTest, WorkersCanClaimThroughTheWriter) {
  Ingest::Handoff no_room;
  Ingest ingest(*inbox, std::move(no_room));
  for (int n = 0; n < 5; ++n) ASSERT_EQ(*submit(ingest, n), store::Admission::kAccepted);
  auto first = ingest.claim(3, 60s);
  ASSERT_TRUE(first) << first.status().message();
  ASSERT_EQ(first->size(), 3u);
  EXPECT_EQ((*first)[0].delivery.payload, "payload-0") << "oldest first";
  EXPECT_EQ((*first)[2].delivery.payload, "payload-2");

  // Two asking at once share one write; neither gets more than it asked for.
  auto a = std::async(std::launch::async, [&] { return ingest.claim(1, 60s); });
  auto b = std::async(std::launch::async, [&] { return ingest.claim(5, 60s); });
  auto got_a = a.get(), got_b = b.get();
  ASSERT_TRUE(got_a && got_b);
  EXPECT_LE(got_a->size(), 1u);
  EXPECT_EQ(got_a->size() + got_b->size(), 2u) << "the two left, each to one of them";
  EXPECT_TRUE(ingest.claim(5, 60s)->empty());

  ingest.stop();
  ASSERT_EQ(inbox->admit({delivery(9)})->front(), store::Admission::kAccepted);
  auto after_stop = ingest.claim(5, 60s);
  ASSERT_TRUE(after_stop);
  ASSERT_EQ(after_stop->size(), 1u) << "claimed directly once the writer has stopped";
  EXPECT_EQ((*after_stop)[0].delivery.payload, "payload-9");
}

TEST_P(IngestTest, ABacklogClaimedThroughTheWriterRunsOnceEach) {
  Workers workers(*inbox, record, 3);
  workers.set_claim_batch(4);
  expect_backlog_runs_once_each(workers, 30, /*claim_through_writer=*/true);
}

TEST_P(IngestTest, StoppingGivesBatchClaimedDeliveriesNotYetStartedBackToTheQueue) {
  std::promise<void> release_first;
  Workers workers(*inbox, record_and_hold(release_first.get_future().share()), 1);
  workers.set_claim_batch(5);
  Ingest::Handoff handoff = to(workers);
  handoff.room = [] { return size_t{0}; };
  Ingest ingest(*inbox, std::move(handoff));
  workers.set_complete([&](store::Held delivery) { ingest.complete(delivery); });
  for (int n = 0; n < 5; ++n) ASSERT_EQ(*submit(ingest, n), store::Admission::kAccepted);
  workers.start();
  ASSERT_TRUE(eventually([&] { return seen_count() == 1; }));
  EXPECT_EQ(inbox->count_by_state()->at("working"), 5) << "one look at the database claimed all five";
  std::thread stopper([&] { workers.stop(); });
  std::this_thread::sleep_for(50ms);
  release_first.set_value();
  stopper.join();
  ingest.stop();
  EXPECT_EQ(seen_count(), 1u);
  EXPECT_EQ(inbox->count_by_state()->at("queued"), 4) << "the four not started are queued again";
  auto again = inbox->claim(60s);
  ASSERT_TRUE(again && again->has_value());
  EXPECT_EQ((*again)->attempts, 1);
}

TEST_P(IngestTest, WorkersRunNamedAndAtTheirNiceValue) {
  std::promise<std::pair<int, std::string>> observed;
  std::atomic<bool> once{false};
  Workers workers(
      *inbox,
      [&](const store::ClaimedDelivery&) {
        if (!once.exchange(true)) {
          char name[16] = {};
          pthread_getname_np(pthread_self(), name, sizeof name);
          errno = 0;
          observed.set_value({getpriority(PRIO_PROCESS, static_cast<id_t>(gettid())), name});
        }
        return Status::Ok();
      },
      1);
  const int own_nice = getpriority(PRIO_PROCESS, static_cast<id_t>(gettid()));
  workers.set_nice(7);
  Ingest::Handoff handoff = to(workers);
  handoff.room = [] { return size_t{0}; };
  Ingest ingest(*inbox, std::move(handoff));
  ASSERT_EQ(*submit(ingest, 1), store::Admission::kAccepted);
  workers.start();
  auto future = observed.get_future();
  ASSERT_EQ(future.wait_for(5s), std::future_status::ready);
  auto [nice, name] = future.get();
  EXPECT_EQ(nice, std::min(19, own_nice + 7)) << "the worker thread, not the process, runs at the lower priority";
  EXPECT_EQ(name, "deputy-worker");
  EXPECT_EQ(getpriority(PRIO_PROCESS, static_cast<id_t>(gettid())), own_nice) << "other threads keep theirs";
  ingest.stop();
  workers.stop();
}

TEST_P(IngestTest, NothingNewIsHandedOverWhileAWorkerIsBringingBackOlderWork) {
  std::atomic<int> calls{0};
  std::promise<void> release_second;
  std::shared_future<void> second_may_return = release_second.get_future().share();
  Workers workers(*inbox, record, 1);
  workers.set_claim([&](size_t, std::chrono::seconds) -> Result<std::vector<store::ClaimedDelivery>> {
    if (++calls >= 2) second_may_return.wait();
    return std::vector<store::ClaimedDelivery>{};
  });
  workers.start();
  ASSERT_TRUE(eventually([&] { return workers.room() > 0; })) << "the first look found nothing";
  ASSERT_TRUE(eventually([&] { return calls.load() >= 2; }, 5000ms)) << "the next poll of the database";
  EXPECT_EQ(workers.room(), 0u) << "what it brings back is older than anything new";
  release_second.set_value();
  EXPECT_TRUE(eventually([&] { return workers.room() > 0; }));
  workers.stop();
}

TEST_P(IngestTest, DeliveriesOfAKindGivenMoreAttemptsAreTriedAgainLonger) {
  std::mutex tries_mutex;
  std::map<std::string, int> tries;
  auto slack_down = [&](const store::ClaimedDelivery& d) {
    std::lock_guard lock(tries_mutex);
    ++tries[d.delivery.kind];
    return Unavailable("Slack is down");
  };
  auto tries_of = [&](const std::string& kind) {
    std::lock_guard lock(tries_mutex);
    return tries[kind];
  };
  ASSERT_TRUE(inbox->enqueue("T1", "event", "e", 0s).ok());
  ASSERT_TRUE(inbox->enqueue("T1", "message", "m", 0s).ok());
  // One round of workers at a time, so the test clock only moves while none runs.
  for (int round = 1; round <= 3; ++round) {
    Workers workers(*inbox, slack_down, 1, /*max_attempts=*/1);
    workers.set_max_attempts(DeliveryKind::kMessage, 3);
    workers.start();
    EXPECT_TRUE(eventually([&] { return tries_of("message") == round; })) << "round " << round;
    workers.stop();
    clock.advance(61s);  // past the longest wait before a retry
  }
  EXPECT_EQ(tries_of("event"), 1) << "other kinds keep the default";
  auto states = inbox->count_by_state();
  ASSERT_TRUE(states);
  EXPECT_EQ((*states)["failed"], 2);
  EXPECT_EQ((*states)["queued"], 0);
}

TEST_P(IngestTest, NoRoomUntilAWorkerHasSeenTheDatabaseEmpty) {
  Workers workers(*inbox, record, 1);
  EXPECT_EQ(workers.room(), 0u) << "older queued work may be waiting in the database";
}

TEST_P(IngestTest, HandedOverDeliveriesThatWaitedTooLongGoThroughTheDatabaseInstead) {
  std::promise<void> release_first;
  Workers workers(*inbox, record_and_hold(release_first.get_future().share(), "payload-0"), 1);
  workers.set_max_wait_in_memory(50ms);
  Ingest ingest(*inbox, to(workers));
  workers.set_complete([&](store::Held delivery) { ingest.complete(delivery); });
  workers.start();
  ASSERT_TRUE(eventually([&] { return workers.room() > 0; }));
  ASSERT_EQ(*submit(ingest, 0), store::Admission::kAccepted);
  ASSERT_TRUE(eventually([&] { return seen_count() == 1; })) << "the only worker is busy with the first";
  ASSERT_EQ(*submit(ingest, 1), store::Admission::kAccepted);
  ASSERT_EQ(*submit(ingest, 2), store::Admission::kAccepted);
  std::this_thread::sleep_for(150ms);
  release_first.set_value();
  ASSERT_TRUE(eventually([&] { return seen_count() == 3; }));
  EXPECT_TRUE(eventually([&] { return in_inbox() == 0; }));
  std::lock_guard lock(seen_mutex);
  ASSERT_EQ(seen.size(), 3u) << "each ran once";
  for (size_t i = 1; i < 3; ++i) {
    EXPECT_TRUE(seen[i].delivery.dedupe_key.empty()) << seen[i].delivery.payload << " ran from memory after waiting";
    EXPECT_EQ(seen[i].attempts, 1) << "giving it back returned the attempt it never made";
  }
}

TEST_P(IngestTest, DeliveriesHandedOverAfterTheWorkersStoppedGoBackToTheQueue) {
  Workers workers(*inbox, record, 1);
  workers.start();
  workers.stop();
  Ingest::Handoff handoff = to(workers);
  handoff.room = [] { return size_t{10}; };
  Ingest ingest(*inbox, std::move(handoff));
  for (int n = 0; n < 2; ++n) ASSERT_EQ(*submit(ingest, n), store::Admission::kAccepted);
  ingest.stop();
  EXPECT_EQ(inbox->count_by_state()->at("queued"), 2);
  EXPECT_EQ(seen_count(), 0u);
}

TEST_P(IngestTest, StoppingGivesHandedOverDeliveriesNotYetStartedBackToTheQueue) {
  Workers workers(*inbox, record, 1);  // never started: nothing runs
  Ingest::Handoff handoff = to(workers);
  handoff.room = [] { return size_t{10}; };
  Ingest ingest(*inbox, std::move(handoff));
  for (int n = 0; n < 3; ++n) ASSERT_EQ(*submit(ingest, n), store::Admission::kAccepted);
  EXPECT_EQ(inbox->count_by_state()->at("working"), 3) << "held by this process";
  ingest.stop();
  workers.stop();
  EXPECT_EQ(inbox->count_by_state()->at("queued"), 3) << "the next start runs them at once, not after the lease";
  EXPECT_EQ(seen_count(), 0u);
  auto again = inbox->claim(60s);
  ASSERT_TRUE(again && again->has_value());
  EXPECT_EQ((*again)->attempts, 1) << "an attempt that never started is not counted";
}

TEST_P(IngestTest, AFinishedDeliveryReportedAfterTheWriterStoppedIsDeletedDirectly) {
  Ingest ingest(*inbox, Ingest::Handoff{});
  ASSERT_EQ(*submit(ingest, 1), store::Admission::kAccepted);
  auto claimed = inbox->claim(60s);
  ASSERT_TRUE(claimed && claimed->has_value());
  ingest.stop();
  ingest.complete((*claimed)->held());
  EXPECT_EQ(in_inbox(), 0);
}

// An audit entry is a write any job makes; what it says tells the writes apart.
store::Writes::Work audit_entry(const std::string& detail, std::function<void()> before = [] {}) {
  return [detail, before](store::Connection& tx) {
    before();
    return store::append_audit(tx, store::AuditEvent{"T1", "action", "U1", "", "", "", "", detail}, 1700000000);
  };
}

std::vector<std::string> audited(store::Database& db) {
  auto lease = db.acquire();
  auto rows = (*lease)->query("SELECT detail FROM audit_log ORDER BY id");
  std::vector<std::string> out;
  if (rows)
    for (const auto& row : *rows) out.push_back(row.text(0));
  return out;
}

// What happened, in order, across the test's and the writer's threads.
class EventLog {
 public:
  void note(const std::string& what) {
    std::lock_guard lock(mutex_);
    events_.push_back(what);
  }
  std::vector<std::string> events() {
    std::lock_guard lock(mutex_);
    return events_;
  }

 private:
  std::mutex mutex_;
  std::vector<std::string> events_;
};

// Keeps the writer busy with a first write until release(), so that what is asked for
// meanwhile queues behind it and goes in the writer's next round.
class BusyWriter {
 public:
  BusyWriter(Ingest& ingest, store::Writes::Written written) {
    std::shared_future<void> released = release_.get_future().share();
    ingest.write(audit_entry("first", [this, released] {
                   running_.set_value();
                   released.wait();
                 }),
                 store::Durability::kNormal, std::move(written));
    running_.get_future().wait();
  }
  void release() { release_.set_value(); }

 private:
  std::promise<void> release_;
  std::promise<void> running_;
};

TEST_P(IngestTest, WritesQueuedTogetherShareOneCommitAndOneThatFailsLeavesTheOthersBe) {
  Ingest ingest(*inbox, Ingest::Handoff{});
  EventLog log;
  auto note = [&](const std::string& what) { log.note(what); };
  std::promise<void> all_written;
  std::atomic<int> written{0};
  auto count = [&](const std::string& name) {
    return [&, name](Status s) {
      note("written " + name + (s.ok() ? "" : " (" + std::string(s.message()) + ")"));
      if (++written == 4) all_written.set_value();
    };
  };
  BusyWriter busy(ingest, count("first"));
  ingest.write(audit_entry("a", [&] { note("work a"); }), store::Durability::kNormal, count("a"));
  ingest.write(
      [&, entry = audit_entry("b")](store::Connection& tx) {
        note("work b");
        (void)entry(tx);
        return FailedPrecondition("b changed its mind");
      },
      store::Durability::kNormal, count("b"));
  ingest.write(audit_entry("c", [&] { note("work c"); }), store::Durability::kNormal, count("c"));
  busy.release();
  ASSERT_EQ(all_written.get_future().wait_for(10s), std::future_status::ready);
  ingest.stop();

  EXPECT_EQ(log.events(), (std::vector<std::string>{"written first", "work a", "work b", "work c", "written a",
                                           "written b (b changed its mind)", "written c"}))
      << "the three waiting writes ran in one transaction, each told after its commit";
  EXPECT_EQ(audited(*test_db.database), (std::vector<std::string>{"first", "a", "c"})) << "b's change was undone, and only b's";
}

TEST_P(IngestTest, AcksDoNotWaitForTheWritesQueuedBesideThem) {
  Ingest ingest(*inbox, Ingest::Handoff{});
  EventLog log;
  BusyWriter busy(ingest, [](Status) {});
  std::promise<void> second_written;
  ingest.write(audit_entry("second", [&] { log.note("job write"); }), store::Durability::kDurable,
               [&](Status) { second_written.set_value(); });
  std::promise<Result<store::Admission>> acked;
  ingest.submit(delivery(1), [&](Result<store::Admission> r) {
    log.note("ack");
    acked.set_value(std::move(r));
  });
  busy.release();
  auto ack = acked.get_future().get();
  ASSERT_TRUE(ack);
  EXPECT_EQ(*ack, store::Admission::kAccepted);
  ASSERT_EQ(second_written.get_future().wait_for(10s), std::future_status::ready);
  ingest.stop();
  EXPECT_EQ(log.events(), (std::vector<std::string>{"ack", "job write"})) << "the delivery is acked before the durable write beside it";
}

TEST_P(IngestTest, WhatTheWorkersFinishAndClaimIsWrittenAfterTheAcksNotInTheirTransaction) {
  ASSERT_EQ(*inbox->admit({delivery(1), delivery(2)}), (std::vector<store::Admission>{store::Admission::kAccepted, store::Admission::kAccepted}));
  auto running = inbox->claim(60s);
  ASSERT_TRUE(running && running->has_value());
  const store::Held finished = (*running)->held();
  auto state_of = [&](const std::string& payload) -> std::string {
    auto connection = test_db.database->acquire();
    if (!connection) return "?";
    auto rows = (*connection)->query("SELECT state FROM inbox WHERE payload = ?", {payload});
    return rows && !rows->empty() ? rows->front().text(0) : "gone";
  };

  Ingest ingest(*inbox, Ingest::Handoff{});
  BusyWriter busy(ingest, [](Status) {});
  ingest.complete(finished);
  auto claimed = std::async(std::launch::async, [&] { return ingest.claim(5, 60s); });
  std::promise<std::pair<std::string, std::string>> at_ack;
  ingest.submit(delivery(3), [&](Result<store::Admission>) { at_ack.set_value({state_of("payload-1"), state_of("payload-2")}); });
  std::this_thread::sleep_for(50ms);  // the claim queues beside the delivery (later, it would only prove less)
  busy.release();
  auto [finished_at_ack, queued_at_ack] = at_ack.get_future().get();
  EXPECT_EQ(finished_at_ack, "working") << "not deleted in the transaction Slack's ack waited for";
  EXPECT_EQ(queued_at_ack, "queued") << "not claimed in it either";
  auto backlog = claimed.get();
  ASSERT_TRUE(backlog) << backlog.status().message();
  ASSERT_EQ(backlog->size(), 2u);
  EXPECT_EQ((*backlog)[0].delivery.payload, "payload-2") << "oldest first";
  EXPECT_EQ((*backlog)[1].delivery.payload, "payload-3");
  ingest.stop();
  EXPECT_EQ(state_of("payload-1"), "gone") << "deleted right after";
}

TEST_P(IngestTest, AWriteThatAsksForDurabilityMakesItsWholeCommitDurable) {
  if (GetParam() != "sqlite") GTEST_SKIP() << "PostgreSQL commits are always durable";
  Ingest ingest(*inbox, Ingest::Handoff{});
  std::promise<int64_t> seen;
  ingest.write(
      [&](store::Connection& tx) -> Status {
        auto rows = tx.query("PRAGMA synchronous");
        seen.set_value(rows && !rows->empty() ? rows->front().integer(0) : -1);
        return Status::Ok();
      },
      store::Durability::kDurable, [](Status) {});
  EXPECT_EQ(seen.get_future().get(), 2) << "synchronous=FULL: the commit waits for the disk";
  ingest.stop();
}

TEST_P(IngestTest, AWriteAskedForAfterTheWriterStoppedIsCommittedAtOnce) {
  Ingest ingest(*inbox, Ingest::Handoff{});
  ingest.stop();
  std::optional<Status> told;
  ingest.write(audit_entry("late"), store::Durability::kNormal, [&](Status s) { told = s; });
  ASSERT_TRUE(told) << "on the caller's thread, before write() returns";
  EXPECT_TRUE(told->ok()) << told->message();
  EXPECT_EQ(audited(*test_db.database), (std::vector<std::string>{"late"}));
}

INSTANTIATE_TEST_SUITE_P(Backends, IngestTest, ::testing::Values("sqlite", "postgres"),
                         [](const auto& info) { return info.param; });

}  // namespace
}  // namespace deputy::engine
