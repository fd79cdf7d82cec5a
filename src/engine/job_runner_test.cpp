#include "engine/job_runner.h"

#include <atomic>

#include <gtest/gtest.h>

#include <deque>

#include <nlohmann/json.hpp>

#include "testing/databases.h"
#include "testing/switchable_ownership.h"
#include "testing/demo_app.h"
#include "testing/fake_http_client.h"
#include "testing/sealed_connection.h"
#include "vault/token_vault.h"

namespace deputy::engine {
namespace {

// The runner with its stores on SQLite and Slack as a recorded fake; no app is ever called.
struct JobRunnerTest : ::testing::Test {
  testing::TestDatabase db{"sqlite", 4};
  FixedClock clock{1700000000};
  testing::FakeHttpClient slack_http;
  testing::FakeHttpClient app_http;
  metrics::Registry metrics;
  oauth::Protocol protocol{app_http};
  slack::WebApi slack{slack_http, slack::WebApiSettings{"http://slack.test/api", "xoxb-test"}, &metrics, [](auto) {}};
  vault::TokenVault vault{vault::Keyring::generate(1), ""};
  std::vector<recipes::Recipe> recipes;
  std::unique_ptr<store::Jobs> jobs;
  std::unique_ptr<store::Connections> connections;
  std::unique_ptr<store::OAuthStates> states;
  std::unique_ptr<oauth::AppRegistry> apps;
  std::unique_ptr<oauth::TokenSource> tokens;
  std::unique_ptr<oauth::LoginLinks> links;

  // The apps the runner knows, with their token source and connect links.
  void use_apps(std::map<std::string, oauth::App> configured) {
    apps = std::make_unique<oauth::AppRegistry>(std::move(configured), protocol);
    tokens = std::make_unique<oauth::TokenSource>(*apps, protocol, *connections, vault, clock, metrics, oauth::RenewalOptions{},
                                                  oauth::TokenSource::Post{}, [](std::chrono::milliseconds) {});
    links = std::make_unique<oauth::LoginLinks>(*apps, *states, vault, clock, metrics, oauth::LoginOptions{"https://deputy.test"});
  }
  std::unique_ptr<store::Inbox> inbox;
  std::unique_ptr<Outbox> outbox;
  std::unique_ptr<JobRunner> runner;

  void SetUp() override {
    DEPUTY_REQUIRE_DATABASE(db);
    jobs = std::make_unique<store::Jobs>(*db.database, clock);
    connections = std::make_unique<store::Connections>(*db.database, clock);
    states = std::make_unique<store::OAuthStates>(*db.database, clock);
    use_apps({});
    inbox = std::make_unique<store::Inbox>(*db.database, clock, std::chrono::seconds(3600));
    outbox = std::make_unique<Outbox>(slack, slack, *inbox, clock);
    runner = std::make_unique<JobRunner>(recipes, *jobs, *apps, *tokens, *links, *connections, app_http, slack, *outbox, metrics);
  }

  // Alice's "approve request" job, created and queued.
  void queued_job(const std::string& id) {
    store::JobRecord job;
    job.id = id;
    job.origin = "delivery:" + id;
    job.team_id = "T1";
    job.requester = "U0ALICE";
    job.recipe = "approve request";
    job.params = "{}";
    job.reply_to = "{}";
    ASSERT_TRUE(jobs->create(job));
  }

  // A job whose approval Bob has given, now queued to run.
  void approved_job(const std::string& id) {
    queued_job(id);
    auto claimed = jobs->claim(id);
    ASSERT_TRUE(claimed && claimed->has_value());
    ASSERT_TRUE(jobs->park(**claimed, store::job_state::kAwaitingApproval, "U0BOB", "", "{}").ok());
    ASSERT_EQ(*jobs->decide(id, 0, "T1", "U0BOB", true), store::Decision::kRecorded);
  }

  static slack::ActionRequest bobs_click(const std::string& job_id) {
    slack::ActionRequest click;
    click.where = slack::Conversation{"T1", "U0BOB", "D0BOB", "", "", slack::ReplyVia::kDirectMessage};
    click.action_id = job_actions::kApprove;
    click.value = job_id + ":0";
    return click;
  }
};

TEST_F(JobRunnerTest, AClickWhileAnotherRunnerRunsTheDecidedJobIsToldItChangesNothing) {
  approved_job("J1");
  // Another worker has just taken the approved job and is running it.
  auto taken = jobs->claim("J1");
  ASSERT_TRUE(taken && taken->has_value());

  ASSERT_TRUE(runner->decide(bobs_click("J1"), true, 1).ok());

  ASSERT_EQ(slack_http.requests.size(), 1u);
  EXPECT_NE(slack_http.requests[0].url.find("chat.postMessage"), std::string::npos) << slack_http.requests[0].url;
  EXPECT_NE(slack_http.requests[0].body.find("already been decided; nothing changed"), std::string::npos)
      << slack_http.requests[0].body;
  EXPECT_EQ((*jobs->get("J1"))->state, store::job_state::kRunning) << "the other runner still has it";
}

TEST_F(JobRunnerTest, AClickBeforeTheJobHasRecordedThatItWaitsComesBackShortlyInsteadOfBeingTurnedAway) {
  // The approval request reached Bob; the job that sent it has not yet parked itself.
  queued_job("J2");
  auto running = jobs->claim("J2");
  ASSERT_TRUE(running && running->has_value());

  Status early = runner->decide(bobs_click("J2"), true, 1);
  EXPECT_EQ(early.code(), ErrorCode::kUnavailable) << early.message();
  EXPECT_GT(early.retry_after().count(), 0) << "a wait, not a failed try";
  EXPECT_TRUE(slack_http.requests.empty()) << "Bob is not told the request no longer waits";

  // Once the job has finished, a click is turned away as before.
  ASSERT_TRUE(jobs->park(**running, store::job_state::kAwaitingApproval, "U0BOB", "", "{}").ok());
  ASSERT_EQ(*jobs->decide("J2", 0, "T1", "U0BOB", false), store::Decision::kRecorded);
}

// Writes held until the test lets each one through, to see what the runner does while one waits.
class HeldWrites final : public store::Writes {
 public:
  explicit HeldWrites(store::Database& database) : direct_(database) {}
  void write(Work work, store::Durability durability, Written written) override {
    held_.push_back({std::move(work), durability, std::move(written)});
  }
  size_t held() const { return held_.size(); }
  store::Durability next_durability() const { return held_.front().durability; }
  // Commits the oldest held write and tells its caller.
  void let_one_through() {
    ASSERT_FALSE(held_.empty());
    Held next = std::move(held_.front());
    held_.pop_front();
    next.written(direct_.write_now(next.work, next.durability));
  }

 private:
  struct Held {
    Work work;
    store::Durability durability;
    Written written;
  };
  store::DirectWrites direct_;
  std::deque<Held> held_;
};

struct JobRunnerWritesTest : JobRunnerTest {
  std::unique_ptr<HeldWrites> writes;

  void SetUp() override {
    JobRunnerTest::SetUp();
    if (IsSkipped()) return;
    use_apps({{"demo", testing::demo_app()}});
    auto recipe = recipes::parse_recipe(R"(command: create thing
app: demo
verify_user_access_at_runtime: true
steps:
  - id: create
    http:
      method: POST
      path: /things
      body: {name: "x"}
      keep: {id: /id}
reply:
  success: "made {{steps.create.id}}"
)",
                                        "create-thing.yaml");
    ASSERT_TRUE(recipe) << recipe.status().message();
    recipes.push_back(*recipe);
    runner = std::make_unique<JobRunner>(recipes, *jobs, *apps, *tokens, *links, *connections, app_http, slack, *outbox, metrics);
    writes = std::make_unique<HeldWrites>(*db.database);
    jobs->set_writes(*writes);
    seed_alices_connection();
  }

  void seed_alices_connection() {
    nlohmann::json bundle = {{"access_token", "at-alice"}, {"token_type", "Bearer"}};
    auto r = testing::sealed_connection(vault, "conn-alice", "U0ALICE", "demo", bundle.dump(), clock.unix_seconds() + 3600,
                                        "http://api.test");
    ASSERT_TRUE(connections->upsert(r, std::nullopt).ok());
  }

  int64_t audited_actions() {
    auto lease = db.database->acquire();
    auto rows = (*lease)->query("SELECT COUNT(*) FROM audit_log WHERE event = 'action'");
    return rows ? rows->front().integer(0) : -1;
  }
};

TEST_F(JobRunnerWritesTest, EachStepWaitsForItsWriteAndTheAppIsCalledOnlyOnceTheStepsStartIsDurable) {
  slack::CommandRequest request;
  request.where = slack::Conversation{"T1", "U0ALICE", "D0ALICE", "", "", slack::ReplyVia::kDirectMessage};
  app_http.push(201, R"({"id":"T-7"})");
  std::optional<Status> ended;
  runner->start(recipes.front(), {}, request, 42, 1, [&](Status s) { ended = s; });

  ASSERT_EQ(writes->held(), 1u) << "the job is stored and claimed first";
  writes->let_one_through();
  ASSERT_EQ(writes->held(), 1u) << "the step's start";
  EXPECT_EQ(writes->next_durability(), store::Durability::kDurable);
  EXPECT_TRUE(app_http.requests.empty()) << "the app is not called before the step's start is written";
  writes->let_one_through();
  ASSERT_EQ(app_http.requests.size(), 1u);
  EXPECT_EQ(app_http.requests[0].url, "http://api.test/things");

  ASSERT_EQ(writes->held(), 1u) << "the step's end";
  EXPECT_EQ(writes->next_durability(), store::Durability::kDurable);
  EXPECT_EQ(audited_actions(), 0);
  EXPECT_EQ((*jobs->step((*jobs->recent("T1", 1)).front().id, 0))->state, store::step_state::kStarted);
  writes->let_one_through();
  EXPECT_EQ(audited_actions(), 1) << "the app call is audited with the step's end, in the same write";

  ASSERT_EQ(writes->held(), 1u) << "the job's end, after its answer went to Slack";
  ASSERT_EQ(slack_http.requests.size(), 1u);
  EXPECT_NE(slack_http.requests[0].body.find("made T-7"), std::string::npos) << slack_http.requests[0].body;
  EXPECT_FALSE(ended) << "the run ends only once the job's end is written";
  writes->let_one_through();
  ASSERT_TRUE(ended);
  EXPECT_TRUE(ended->ok()) << ended->message();
  EXPECT_EQ((*jobs->recent("T1", 1)).front().state, store::job_state::kSucceeded);
}


using testing::SwitchableOwnership;

struct JobRunnerOwnershipTest : JobRunnerWritesTest {
  SwitchableOwnership owner;
  std::optional<Status> ended;

  void SetUp() override {
    JobRunnerWritesTest::SetUp();
    if (IsSkipped()) return;
    jobs = std::make_unique<store::Jobs>(*db.database, clock, std::chrono::seconds(300), owner);
    jobs->set_writes(*writes);
    runner = std::make_unique<JobRunner>(recipes, *jobs, *apps, *tokens, *links, *connections, app_http, slack, *outbox, metrics);
  }

  // Started, with its claim and its step's start written; the app is next.
  void start_until_the_app_is_next() {
    slack::CommandRequest request;
    request.where = slack::Conversation{"T1", "U0ALICE", "D0ALICE", "", "", slack::ReplyVia::kDirectMessage};
    app_http.push(201, R"({"id":"T-7"})");
    runner->start(recipes.front(), {}, request, 42, 1, [this](Status s) { ended = s; });
    ASSERT_EQ(writes->held(), 1u);
    writes->let_one_through();  // stored and claimed
    ASSERT_EQ(writes->held(), 1u);
  }
  void let_all_through() {
    while (writes->held() > 0) writes->let_one_through();
  }
};

TEST_F(JobRunnerOwnershipTest, AProcessWhoseHeartbeatIsLateCallsNoAppAndPutsTheJobBack) {
  start_until_the_app_is_next();
  owner.heartbeat_held = false;
  let_all_through();
  EXPECT_TRUE(app_http.requests.empty()) << "others may be taking this process's work over";
  EXPECT_TRUE(slack_http.requests.empty()) << "and nobody is told anything";
  ASSERT_TRUE(ended);
  EXPECT_EQ(ended->code(), ErrorCode::kUnavailable) << ended->message();
  EXPECT_GT(ended->retry_after().count(), 0) << "a wait, not a failed try";
  const auto job = (*jobs->recent("T1", 1)).front();
  EXPECT_EQ(job.state, store::job_state::kQueued) << "back in the queue, for whichever process holds its heartbeat";
  auto step = jobs->step(job.id, 0);
  ASSERT_TRUE(step);
  EXPECT_FALSE(step->has_value() && (*step)->state == store::step_state::kStarted) << "the call was not made, so it is not in doubt";
}

TEST_F(JobRunnerOwnershipTest, ARunTakenOverCallsNoAppTellsNobodyAndLeavesTheJobAlone) {
  start_until_the_app_is_next();
  owner.current = 8;  // this process joined again after its run was taken over
  let_all_through();
  EXPECT_TRUE(app_http.requests.empty());
  EXPECT_TRUE(slack_http.requests.empty());
  ASSERT_TRUE(ended);
  EXPECT_EQ(ended->code(), ErrorCode::kAborted) << ended->message();
}

}  // namespace
}  // namespace deputy::engine
