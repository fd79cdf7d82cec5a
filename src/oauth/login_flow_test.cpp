#include "oauth/login_flow.h"

#include <gtest/gtest.h>

#include <optional>
#include <vector>

#include "common/encoding.h"
#include "testing/databases.h"
#include "testing/demo_app.h"
#include "testing/fake_http_client.h"

namespace deputy::oauth {
namespace {

class FakeDirectory final : public SlackDirectory {
 public:
  Result<std::string> email_of(const std::string& user_id) override {
    asked.push_back(user_id);
    return answer;
  }
  Result<std::string> answer = std::string("alice@example.com");
  std::vector<std::string> asked;
};

class RecordingListener final : public LoginListener {
 public:
  void on_connected(const Connected& c) override { connected.push_back(c); }
  std::optional<std::string> on_login_failed(const FailedLogin& login) override {
    failed.push_back(login);
    return cancelled_command;
  }
  std::vector<Connected> connected;
  std::vector<FailedLogin> failed;
  std::optional<std::string> cancelled_command;
};

class RecordingMessenger final : public Messenger {
 public:
  void send_direct(const std::string&, const std::string& user_id, const slack::Message& message, std::function<void()> then) override {
    sent.emplace_back(user_id, message.text);
    if (!then) return;
    if (hold) held.push_back(std::move(then));
    else then();
  }
  std::vector<std::pair<std::string, std::string>> sent;  // to whom, what
  bool hold = false;  // Slack has not answered yet
  std::vector<std::function<void()>> held;
};

struct LoginFlowTest : ::testing::Test {
  testing::TestDatabase db{"sqlite", 4};
  FixedClock clock{1700000000};
  testing::FakeHttpClient idp;
  metrics::Registry metrics;
  Protocol protocol{idp};
  vault::TokenVault vault{vault::Keyring::generate(1), ""};
  FakeDirectory slack;
  RecordingListener listener;
  RecordingMessenger messenger;
  std::unique_ptr<store::Connections> connections;
  std::unique_ptr<store::OAuthStates> states;
  std::unique_ptr<AppRegistry> apps;
  std::unique_ptr<LoginLinks> links;
  std::unique_ptr<LoginFlow> flow;

  void SetUp() override {
    DEPUTY_REQUIRE_DATABASE(db);
    connections = std::make_unique<store::Connections>(*db.database, clock);
    states = std::make_unique<store::OAuthStates>(*db.database, clock);
    App app = testing::demo_app();
    app.authorize_url = "http://idp.test/authorize";
    app.userinfo_url = "http://idp.test/userinfo";
    apps = std::make_unique<AppRegistry>(std::map<std::string, App>{{"demo", app}}, protocol);
    LoginOptions options{"https://deputy.test/"};
    links = std::make_unique<LoginLinks>(*apps, *states, vault, clock, metrics, options);
    flow = std::make_unique<LoginFlow>(*apps, protocol, *connections, *states, vault, slack, listener, messenger, clock, metrics, options);
  }

  // A Connect link for Alice, opened in a browser: the state, and the cookie it was given.
  std::pair<std::string, std::string> opened_link(const std::string& job_id = "") {
    auto link = links->connect_link({"T1", "U0ALICE", "demo", store::ConnectionMode::kPersonal, job_id});
    EXPECT_TRUE(link) << link.status().message();
    std::string state = url_decode(link->substr(link->find("state=") + 6)).value_or("");
    LoginPage started = flow->start(state);
    EXPECT_EQ(started.status, 302) << started.message;
    EXPECT_FALSE(started.browser_secret.empty());
    return {state, started.browser_secret};
  }

  // The app's token endpoint, then its userinfo endpoint.
  void app_answers(const std::string& email, bool verified = true) {
    idp.push(200, R"({"access_token":"at-1","refresh_token":"rt-1","token_type":"Bearer","expires_in":3600})");
    nlohmann::json info = {{"sub", "sub-1"}, {"email", email}, {"email_verified", verified}};
    idp.push(200, info.dump());
  }

  size_t requests_to(const std::string& path) const {
    size_t n = 0;
    for (const auto& r : idp.requests) n += r.url.find(path) != std::string::npos;
    return n;
  }

  size_t stored_connections() { return connections->of_user("T1", "U0ALICE").value().size(); }

  // The demo app found by OIDC discovery, whose document says whether the server names
  // itself in `iss` on every answer (RFC 9207).
  void use_discovered_app(bool says_it_sends_iss) {
    App app = testing::demo_app();
    app.issuer = "http://idp.test";
    app.discover = true;
    app.authorize_url = "http://idp.test/authorize";
    app.userinfo_url = "http://idp.test/userinfo";
    nlohmann::json document = {{"issuer", "http://idp.test"},
                               {"authorization_endpoint", "http://idp.test/authorize"},
                               {"token_endpoint", "http://idp.test/token"},
                               {"authorization_response_iss_parameter_supported", says_it_sends_iss}};
    idp.push(200, document.dump());
    apps = std::make_unique<AppRegistry>(std::map<std::string, App>{{"demo", app}}, protocol);
    LoginOptions options{"https://deputy.test/"};
    links = std::make_unique<LoginLinks>(*apps, *states, vault, clock, metrics, options);
    flow = std::make_unique<LoginFlow>(*apps, protocol, *connections, *states, vault, slack, listener, messenger, clock, metrics, options);
  }
};

TEST_F(LoginFlowTest, StartSendsTheBrowserToTheAppWithPkceAndTheState) {
  auto link = links->connect_link({"T1", "U0ALICE", "demo", store::ConnectionMode::kPersonal, ""});
  ASSERT_TRUE(link);
  EXPECT_EQ(link->rfind("https://deputy.test/oauth/start?state=", 0), 0u) << *link;
  std::string state = url_decode(link->substr(link->find("state=") + 6)).value();
  LoginPage started = flow->start(state);
  ASSERT_EQ(started.status, 302);
  EXPECT_EQ(started.redirect_to.rfind("http://idp.test/authorize?", 0), 0u);
  EXPECT_NE(started.redirect_to.find("code_challenge_method=S256"), std::string::npos);
  EXPECT_NE(started.redirect_to.find("state=" + url_encode(state)), std::string::npos);
  EXPECT_NE(started.redirect_to.find(url_encode("https://deputy.test/oauth/callback")), std::string::npos);
  EXPECT_EQ(flow->start(state).status, 400) << "a link opens once";
}

TEST_F(LoginFlowTest, AFinishedLoginStoresTheConnectionAndTellsWhoWaits) {
  auto [state, browser] = opened_link("job-1");
  app_answers("Alice@Example.com");
  LoginPage page = flow->callback({state, "", "", "the-code", browser});
  EXPECT_EQ(page.status, 200) << page.message;
  EXPECT_EQ(page.title, "Connected to Demo");
  EXPECT_EQ(stored_connections(), 1u);
  ASSERT_EQ(listener.connected.size(), 1u);
  EXPECT_EQ(listener.connected[0].job_id, "job-1");
  EXPECT_EQ(listener.connected[0].account, "Alice@Example.com");
  ASSERT_EQ(messenger.sent.size(), 1u);
  EXPECT_EQ(messenger.sent[0], (std::pair<std::string, std::string>{"U0ALICE", "Connected to Demo as Alice@Example.com."}));
  EXPECT_EQ(slack.asked, std::vector<std::string>{"U0ALICE"});

  EXPECT_EQ(flow->callback({state, "", "", "the-code", browser}).title, "Login already finished") << "a state is used once";
  EXPECT_EQ(requests_to("/token"), 1u);
}

TEST_F(LoginFlowTest, TheJobWaitingForTheLoginGoesOnOnceTheConnectedMessageIsSent) {
  auto [state, browser] = opened_link("job-2");
  app_answers("alice@example.com");
  messenger.hold = true;
  EXPECT_EQ(flow->callback({state, "", "", "the-code", browser}).status, 200);
  EXPECT_TRUE(listener.connected.empty()) << "its answer would come before \"Connected to\"";
  ASSERT_EQ(messenger.held.size(), 1u);
  messenger.held[0]();
  ASSERT_EQ(listener.connected.size(), 1u);
  EXPECT_EQ(listener.connected[0].job_id, "job-2");
}

TEST_F(LoginFlowTest, ALoginFinishedInAnotherBrowserConnectsNothing) {
  auto [state, browser] = opened_link();
  app_answers("alice@example.com");
  LoginPage page = flow->callback({state, "", "", "the-code", "another-browsers-cookie"});
  EXPECT_EQ(page.status, 400);
  EXPECT_EQ(page.title, "Finish in the same browser");
  EXPECT_EQ(requests_to("/token"), 0u) << "the code is never exchanged";
  EXPECT_EQ(stored_connections(), 0u);
  ASSERT_EQ(messenger.sent.size(), 1u);
  EXPECT_NE(messenger.sent[0].second.find("different browser"), std::string::npos);
}

TEST_F(LoginFlowTest, AnAnswerNamingAnotherIssuerConnectsNothing) {
  auto [state, browser] = opened_link();
  app_answers("alice@example.com");
  LoginPage page = flow->callback({state, "https://attacker.test", "", "the-code", browser});
  EXPECT_EQ(page.status, 400);
  EXPECT_EQ(page.title, "Login not accepted");
  EXPECT_EQ(requests_to("/token"), 0u);
  EXPECT_EQ(stored_connections(), 0u);
}

TEST_F(LoginFlowTest, AnAnswerWithoutIssFromAServerThatSaidItAlwaysSendsOneConnectsNothing) {
  use_discovered_app(/*says_it_sends_iss=*/true);
  auto [state, browser] = opened_link();
  ASSERT_EQ(requests_to("/.well-known/openid-configuration"), 1u);
  app_answers("alice@example.com");
  LoginPage page = flow->callback({state, "", "", "the-code", browser});
  EXPECT_EQ(page.status, 400);
  EXPECT_EQ(page.title, "Login not accepted");
  EXPECT_EQ(requests_to("/token"), 0u) << "the code is never exchanged";
  EXPECT_EQ(stored_connections(), 0u);
}

TEST_F(LoginFlowTest, AnAnswerWithTheDiscoveredIssuersIssIsAcceptedAndOneWithoutIsWhenTheServerNeverSaidItSendsOne) {
  use_discovered_app(/*says_it_sends_iss=*/true);
  auto [state, browser] = opened_link();
  app_answers("alice@example.com");
  EXPECT_EQ(flow->callback({state, "http://idp.test", "", "the-code", browser}).status, 200);

  use_discovered_app(/*says_it_sends_iss=*/false);
  auto [state2, browser2] = opened_link();
  app_answers("alice@example.com");
  LoginPage page = flow->callback({state2, "", "", "the-code", browser2});
  EXPECT_EQ(page.status, 200) << page.message;
}

TEST_F(LoginFlowTest, AnAnswerFromTheAppsOwnOriginIsAccepted) {
  auto [state, browser] = opened_link();
  app_answers("alice@example.com");
  EXPECT_EQ(flow->callback({state, "http://IDP.test:80", "", "the-code", browser}).status, 200);
}

TEST_F(LoginFlowTest, SomeoneElsesAccountIsRefusedAndItsGrantHandedBack) {
  auto [state, browser] = opened_link();
  app_answers("mallory@example.com");
  LoginPage page = flow->callback({state, "", "", "the-code", browser});
  EXPECT_EQ(page.status, 403);
  EXPECT_EQ(stored_connections(), 0u);
  EXPECT_EQ(requests_to("/revoke"), 1u) << "the refresh token Deputy will not keep is revoked";
  EXPECT_TRUE(listener.connected.empty());
  auto audit = connections->read_audit("T1", "U0ALICE", 10).value();
  ASSERT_FALSE(audit.empty());
  EXPECT_EQ(audit[0].event.event, "connect_refused");
}

TEST_F(LoginFlowTest, AnAddressTheAppHasNotVerifiedIsNoMatch) {
  auto [state, browser] = opened_link();
  app_answers("alice@example.com", /*verified=*/false);
  EXPECT_EQ(flow->callback({state, "", "", "the-code", browser}).status, 403);
  EXPECT_EQ(stored_connections(), 0u);
}

TEST_F(LoginFlowTest, WhileSlackCannotSayWhoAskedNothingIsConnected) {
  auto [state, browser] = opened_link();
  app_answers("alice@example.com");
  slack.answer = Unavailable("Slack answered HTTP 503");
  LoginPage page = flow->callback({state, "", "", "the-code", browser});
  EXPECT_EQ(page.status, 503);
  EXPECT_EQ(stored_connections(), 0u);
  EXPECT_EQ(requests_to("/revoke"), 1u);
}

TEST_F(LoginFlowTest, WithoutAnAddressOnTheSlackProfileTheLoginGoesThrough) {
  auto [state, browser] = opened_link();
  app_answers("alice@example.com");
  slack.answer = std::string();
  EXPECT_EQ(flow->callback({state, "", "", "the-code", browser}).status, 200);
  EXPECT_EQ(stored_connections(), 1u);
}

TEST_F(LoginFlowTest, ADeniedConsentCancelsTheJobThatWaitedAndSaysSo) {
  auto [state, browser] = opened_link("job-7");
  listener.cancelled_command = "create thing";
  LoginPage page = flow->callback({state, "", "access_denied", "", browser});
  EXPECT_EQ(page.title, "Nothing was connected");
  ASSERT_EQ(listener.failed.size(), 1u);
  EXPECT_EQ(listener.failed[0].job_id, "job-7");
  ASSERT_EQ(messenger.sent.size(), 1u);
  EXPECT_NE(messenger.sent[0].second.find("I cancelled *create thing*"), std::string::npos) << messenger.sent[0].second;
}

TEST_F(LoginFlowTest, AnExpiredLoginConnectsNothing) {
  auto [state, browser] = opened_link();
  clock.advance(std::chrono::seconds(601));
  app_answers("alice@example.com");
  EXPECT_EQ(flow->callback({state, "", "", "the-code", browser}).title, "Login expired");
  EXPECT_EQ(requests_to("/token"), 0u);
}

TEST_F(LoginFlowTest, AStateDeputyDidNotMakeIsRefused) {
  EXPECT_EQ(flow->callback({"made-up", "", "", "the-code", "x"}).title, "Login not recognised");
  EXPECT_EQ(flow->start("made-up").status, 400);
  EXPECT_TRUE(idp.requests.empty());
}

TEST(CompareEmails, OnlyTheSameVerifiedAddressMatches) {
  struct Directory final : SlackDirectory {
    Result<std::string> email_of(const std::string&) override { return answer; }
    Result<std::string> answer = std::string("Alice@Example.com");
  } slack;
  AppIdentity identity{"alice", "sub", "alice@example.com", true};
  EXPECT_EQ(compare_emails(slack, "U1", identity), SameEmail::kYes) << "case does not matter";
  identity.email_verified = false;
  EXPECT_EQ(compare_emails(slack, "U1", identity), SameEmail::kNo);
  identity = {"bob", "sub", "bob@example.com", true};
  EXPECT_EQ(compare_emails(slack, "U1", identity), SameEmail::kNo);
  identity.email.clear();
  EXPECT_EQ(compare_emails(slack, "U1", identity), SameEmail::kAppAccountHasNone);
  slack.answer = std::string();
  identity.email = "alice@example.com";
  EXPECT_EQ(compare_emails(slack, "U1", identity), SameEmail::kSlackProfileHasNone);
  slack.answer = Unavailable("down");
  EXPECT_EQ(compare_emails(slack, "U1", identity), SameEmail::kSlackUnavailable);
  slack.answer = FailedPrecondition("user_not_found");
  EXPECT_EQ(compare_emails(slack, "U1", identity), SameEmail::kSlackProfileHasNone) << "refused for good: nothing to compare";
}

}  // namespace
}  // namespace deputy::oauth
