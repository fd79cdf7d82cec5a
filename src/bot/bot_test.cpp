#include "bot/bot.h"

#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include <mutex>
#include <optional>
#include <vector>

#include "testing/databases.h"
#include "testing/fake_http_client.h"
#include "testing/sealed_connection.h"

namespace deputy::bot {
namespace {

// Slack as it is under load: nothing is answered until the test says so.
class SlackThatAnswersLater final : public http::Client {
 public:
  void start(http::ClientRequest request, Done done) override {
    std::lock_guard lock(mutex_);
    requests.push_back(std::move(request));
    waiting_.push_back(std::move(done));
  }
  void answer_all() {
    std::vector<Done> waiting;
    {
      std::lock_guard lock(mutex_);
      waiting.swap(waiting_);
    }
    for (auto& done : waiting) {
      http::ClientOutcome outcome;
      outcome.reached = http::Reached::kAnswered;
      outcome.response = http::ClientResponse{200, {}, "ok"};
      done(std::move(outcome));
    }
  }
  std::vector<http::ClientRequest> requests;

 private:
  std::mutex mutex_;
  std::vector<Done> waiting_;
};

struct NoCommands final : CommandCatalog {
  std::vector<CommandInfo> commands() const override { return {}; }
};

struct NobodyListens final : oauth::LoginListener, oauth::Messenger, oauth::SlackDirectory {
  void on_connected(const oauth::Connected&) override {}
  std::optional<std::string> on_login_failed(const oauth::FailedLogin&) override { return std::nullopt; }
  void send_direct(const std::string&, const std::string&, const slack::Message&, std::function<void()> then) override {
    if (then) then();
  }
  Result<std::string> email_of(const std::string&) override { return std::string(); }
};

struct BotTest : ::testing::Test {
  testing::TestDatabase db{"sqlite", 4};
  FixedClock clock{1700000000};
  SlackThatAnswersLater slack_http;
  testing::FakeHttpClient idp;
  metrics::Registry metrics;
  oauth::Protocol protocol{idp};
  vault::TokenVault vault{vault::Keyring::generate(1), ""};
  slack::WebApi slack{slack_http, slack::WebApiSettings{"http://slack.test/api", "xoxb-test", 1}, &metrics, [](auto) {}};
  NoCommands catalog;
  NobodyListens nobody;
  std::unique_ptr<store::Connections> connections;
  std::unique_ptr<store::OAuthStates> states;
  std::unique_ptr<store::Inbox> inbox;
  std::unique_ptr<engine::Outbox> outbox;
  std::unique_ptr<oauth::AppRegistry> apps;
  std::unique_ptr<oauth::TokenSource> tokens;
  std::unique_ptr<oauth::LoginLinks> links;
  std::unique_ptr<oauth::LoginFlow> logins;
  std::unique_ptr<oauth::ConnectionService> service;
  std::unique_ptr<Bot> bot;

  void SetUp() override {
    DEPUTY_REQUIRE_DATABASE(db);
    connections = std::make_unique<store::Connections>(*db.database, clock);
    states = std::make_unique<store::OAuthStates>(*db.database, clock);
    inbox = std::make_unique<store::Inbox>(*db.database, clock, std::chrono::seconds(3600));
    outbox = std::make_unique<engine::Outbox>(slack, slack, *inbox, clock);
    apps = std::make_unique<oauth::AppRegistry>(std::map<std::string, oauth::App>{}, protocol);
    tokens = std::make_unique<oauth::TokenSource>(*apps, protocol, *connections, vault, clock, metrics);
    oauth::LoginOptions options{"https://deputy.test"};
    links = std::make_unique<oauth::LoginLinks>(*apps, *states, vault, clock, metrics, options);
    logins = std::make_unique<oauth::LoginFlow>(*apps, protocol, *connections, *states, vault, nobody, nobody, nobody, clock, metrics, options);
    service = std::make_unique<oauth::ConnectionService>(*apps, protocol, *connections, *states, vault, metrics);
    bot = std::make_unique<Bot>(slack, *outbox, catalog, Accounts{*apps, *service, *links, *logins, *tokens}, std::vector<std::string>{"UADMIN"});
  }

  static store::ClaimedDelivery slash_command(const std::string& text) {
    store::ClaimedDelivery d;
    d.id = 1;
    d.attempts = 1;
    d.delivery.team_id = "T1";
    d.delivery.kind = "slash_command";
    d.delivery.payload = "team_id=T1&user_id=U1&channel_id=C1&text=" + text + "&response_url=https%3A%2F%2Fhooks.slack.test%2Fx";
    return d;
  }
};

TEST_F(BotTest, ADeliveryEndsOnlyOnceSlackHasTakenItsAnswer) {
  std::optional<Status> finished;
  bot->handle(slash_command("help"), [&](Status s) { finished = std::move(s); });
  ASSERT_EQ(slack_http.requests.size(), 1u) << "the answer is on its way";
  EXPECT_EQ(slack_http.requests[0].url, "https://hooks.slack.test/x");
  EXPECT_FALSE(finished) << "a worker that took the next delivery now would have no bound on answers in flight";
  slack_http.answer_all();
  ASSERT_TRUE(finished);
  EXPECT_TRUE(finished->ok()) << finished->message();
}

TEST_F(BotTest, AnUnknownCommandIsAnsweredTheSameWay) {
  std::optional<Status> finished;
  bot->handle(slash_command("frobnicate"), [&](Status s) { finished = std::move(s); });
  EXPECT_FALSE(finished);
  slack_http.answer_all();
  ASSERT_TRUE(finished);
  EXPECT_TRUE(finished->ok());
}

TEST_F(BotTest, AnAdminsHelpListsTheAdminCommandsAndNobodyElsesDoes) {
  store::ClaimedDelivery from_admin = slash_command("help");
  from_admin.delivery.payload = "team_id=T1&user_id=UADMIN&channel_id=C1&text=help&response_url=https%3A%2F%2Fhooks.slack.test%2Fx";
  bot->handle(from_admin, [](Status) {});
  bot->handle(slash_command("help"), [](Status) {});
  ASSERT_EQ(slack_http.requests.size(), 2u);
  EXPECT_NE(slack_http.requests[0].body.find("admin offboard @person"), std::string::npos) << slack_http.requests[0].body;
  EXPECT_EQ(slack_http.requests[1].body.find("admin offboard"), std::string::npos) << "U1 is not an admin";
  slack_http.answer_all();
}

TEST_F(BotTest, OffboardingWaitsForAnAdminsConfirmationAndAClickFromAnyoneElseChangesNothing) {
  auto alices = testing::sealed_connection(vault, "conn-alice", "U0ALICE", "demo", R"({"access_token":"at"})", clock.unix_seconds() + 3600,
                                           "http://api.test");
  ASSERT_TRUE(connections->upsert(alices, std::nullopt).ok());
  auto still_there = [&] { return connections->of_user("T1", "U0ALICE")->size(); };

  store::ClaimedDelivery typed = slash_command("admin offboard <@U0ALICE|alice>");
  typed.delivery.payload = "team_id=T1&user_id=UADMIN&channel_id=C1&text=admin+offboard+%3C%40U0ALICE%7Calice%3E&response_url=https%3A%2F%2Fhooks.slack.test%2Fx";
  bot->handle(typed, [](Status) {});
  ASSERT_EQ(slack_http.requests.size(), 1u);
  EXPECT_NE(slack_http.requests[0].body.find(actions::kOffboard), std::string::npos) << "a button to confirm: " << slack_http.requests[0].body;
  EXPECT_NE(slack_http.requests[0].body.find("\"confirm\""), std::string::npos) << "and Slack's own are-you-sure dialog";
  EXPECT_EQ(still_there(), 1u) << "nothing is revoked before the confirmation";
  slack_http.answer_all();

  auto click_by = [&](const std::string& user) {
    store::ClaimedDelivery d;
    d.id = 2;
    d.attempts = 1;
    d.delivery.team_id = "T1";
    d.delivery.kind = "block_actions";
    d.delivery.payload = nlohmann::json{{"type", "block_actions"}, {"team", {{"id", "T1"}}}, {"user", {{"id", user}}},
                                        {"channel", {{"id", "C1"}}}, {"response_url", "https://hooks.slack.test/y"},
                                        {"actions", {{{"action_id", actions::kOffboard}, {"value", "U0ALICE"}}}}}
                             .dump();
    return d;
  };
  bot->handle(click_by("U0MALLORY"), [](Status) {});
  ASSERT_EQ(slack_http.requests.size(), 2u);
  EXPECT_NE(slack_http.requests[1].body.find("Only Deputy admins can offboard people"), std::string::npos) << slack_http.requests[1].body;
  EXPECT_EQ(still_there(), 1u) << "a forged click from someone who is not an admin revokes nothing";
  slack_http.answer_all();
}

TEST_F(BotTest, ADisconnectClickForSomeoneElsesConnectionIsRefusedWhateverItsValueSays) {
  auto alices = testing::sealed_connection(vault, "conn-alice", "U0ALICE", "demo", R"({"access_token":"at"})", clock.unix_seconds() + 3600,
                                           "http://api.test");
  ASSERT_TRUE(connections->upsert(alices, std::nullopt).ok());
  auto click = [&](const std::string& user, const std::string& team) {
    store::ClaimedDelivery d;
    d.id = 3;
    d.attempts = 1;
    d.delivery.team_id = team;
    d.delivery.kind = "block_actions";
    d.delivery.payload = nlohmann::json{{"type", "block_actions"}, {"team", {{"id", team}}}, {"user", {{"id", user}}},
                                        {"channel", {{"id", "D1"}}}, {"response_url", "https://hooks.slack.test/z"},
                                        {"actions", {{{"action_id", actions::kDisconnect}, {"value", "conn-alice"}}}}}
                             .dump();
    return d;
  };
  // Mallory forges a click carrying Alice's connection id; so does someone of another
  // workspace with Alice's own user id.
  for (auto [user, team] : {std::pair<std::string, std::string>{"U0MALLORY", "T1"}, {"U0ALICE", "T2"}}) {
    slack_http.requests.clear();
    bot->handle(click(user, team), [](Status) {});
    ASSERT_EQ(slack_http.requests.size(), 1u) << user;
    EXPECT_NE(slack_http.requests[0].body.find("That connection is not yours"), std::string::npos) << slack_http.requests[0].body;
    slack_http.answer_all();
    EXPECT_EQ(connections->of_user("T1", "U0ALICE")->size(), 1u) << user << " of " << team << " disconnected Alice";
  }
  auto refused = connections->read_audit("T1", "U0MALLORY", 50);
  ASSERT_TRUE(refused) << refused.status().message();
  size_t audited = 0;
  for (const auto& entry : *refused) audited += entry.event.event == "disconnect_refused";
  EXPECT_EQ(audited, 1u) << "the forged click is audited";

  // Alice's own click is not refused.
  slack_http.requests.clear();
  bot->handle(click("U0ALICE", "T1"), [](Status) {});
  slack_http.answer_all();
  for (const auto& r : slack_http.requests) EXPECT_EQ(r.body.find("not yours"), std::string::npos) << r.body;
  EXPECT_EQ(connections->of_user("T1", "U0ALICE")->size(), 0u);
}

TEST_F(BotTest, TheHelpHintIsTheWayThePersonAsked) {
  // In a slash command, help is the slash command as this workspace named it.
  store::ClaimedDelivery renamed = slash_command("frobnicate");
  renamed.delivery.payload += "&command=%2Fops";
  bot->handle(renamed, [](Status) {});
  ASSERT_EQ(slack_http.requests.size(), 1u);
  EXPECT_NE(slack_http.requests[0].body.find("Type `/ops help` to see what I can do"), std::string::npos) << slack_http.requests[0].body;
  slack_http.answer_all();
}

}  // namespace
}  // namespace deputy::bot
