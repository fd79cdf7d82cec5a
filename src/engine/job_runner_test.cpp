#include "engine/job_runner.h"

#include <gtest/gtest.h>

#include "testing/databases.h"
#include "testing/fake_http_client.h"
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
  std::unique_ptr<oauth::ConnectionService> service;
  std::unique_ptr<store::Inbox> inbox;
  std::unique_ptr<Outbox> outbox;
  std::unique_ptr<JobRunner> runner;

  void SetUp() override {
    DEPUTY_REQUIRE_DATABASE(db);
    jobs = std::make_unique<store::Jobs>(*db.database, clock);
    connections = std::make_unique<store::Connections>(*db.database, clock);
    states = std::make_unique<store::OAuthStates>(*db.database, clock);
    service = std::make_unique<oauth::ConnectionService>(std::map<std::string, oauth::App>{}, protocol, *connections, *states,
                                                         vault, slack, clock, metrics, oauth::ServiceOptions{"https://deputy.test"},
                                                         [](std::chrono::milliseconds) {});
    inbox = std::make_unique<store::Inbox>(*db.database, clock, std::chrono::seconds(3600));
    outbox = std::make_unique<Outbox>(slack, slack, *inbox, clock);
    runner = std::make_unique<JobRunner>(recipes, *jobs, *service, *connections, app_http, slack, *outbox, metrics);
  }

  // A job whose approval Bob has given, now queued to run.
  void approved_job(const std::string& id) {
    store::JobRecord job;
    job.id = id;
    job.origin = "delivery:" + id;
    job.team_id = "T1";
    job.requester = "U0ALICE";
    job.recipe = "approve request";
    job.params = "{}";
    job.reply_to = "{}";
    ASSERT_TRUE(jobs->create(job));
    ASSERT_TRUE(jobs->park(id, store::job_state::kAwaitingApproval, "U0BOB", "", "{}").ok());
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

}  // namespace
}  // namespace deputy::engine
