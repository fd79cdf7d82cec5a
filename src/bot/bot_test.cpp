#include "bot/bot.h"

#include <gtest/gtest.h>

#include <mutex>
#include <optional>
#include <vector>

#include "testing/databases.h"
#include "testing/fake_http_client.h"

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
    bot = std::make_unique<Bot>(slack, *outbox, catalog, Accounts{*apps, *service, *links, *logins, *tokens}, std::vector<std::string>{});
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

}  // namespace
}  // namespace deputy::bot
