#include "server/slack_endpoint.h"

#include <gtest/gtest.h>

#include <optional>

#include "testing/databases.h"

namespace deputy::server {
namespace {

constexpr const char* kSecret = "8f742231b10e8888abcd99yyyzzz85a5";
constexpr int64_t kNow = 1700000000;
constexpr const char* kForm = "application/x-www-form-urlencoded";

struct SlackEndpointTest : ::testing::Test {
  testing::TestDatabase test_db{"sqlite"};
  FixedClock clock{kNow};
  store::Inbox inbox{*test_db.database, clock, std::chrono::seconds(600)};
  engine::Ingest ingest{inbox, engine::Ingest::Handoff{}};
  metrics::Registry metrics;
  SlackEndpoint endpoint{kSecret, ingest, clock, metrics};

  ~SlackEndpointTest() override { ingest.stop(); }

  http::Response post(std::string body, const char* content_type, std::optional<int64_t> signed_at) {
    http::Request request;
    request.method = "POST";
    request.path = request.target = "/slack/events";
    request.headers.emplace_back("Content-Type", content_type);
    if (signed_at) {
      std::string timestamp = std::to_string(*signed_at);
      request.headers.emplace_back("X-Slack-Request-Timestamp", timestamp);
      request.headers.emplace_back("X-Slack-Signature", slack::RequestVerifier(kSecret).sign(timestamp, body));
    }
    request.body = std::move(body);
    std::promise<http::Response> answered;
    endpoint.handle(std::move(request), [&](http::Response r) { answered.set_value(std::move(r)); });
    return answered.get_future().get();
  }

  int64_t stored() {
    auto states = inbox.count_by_state();
    int64_t total = 0;
    if (states)
      for (const auto& [state, count] : *states) total += count;
    return total;
  }
};

const std::string kCommand =
    "token=gIkuvaNzQIHg97ATvDxqgjtO&team_id=T0001&user_id=U2147483697&command=%2Fdeputy&text=help"
    "&response_url=https%3A%2F%2Fhooks.slack.com%2Fcommands%2F1234%2F5678&trigger_id=13345224609.738474920.8088930838d88f008e0";

TEST_F(SlackEndpointTest, SlacksCertificateProbeGetsAnEmptyOkAndStoresNothing) {
  // Slack sends the probe unsigned: "ssl_check=1&token=…".
  http::Response probe = post("ssl_check=1&token=gIkuvaNzQIHg97ATvDxqgjtO", kForm, std::nullopt);
  EXPECT_EQ(probe.status, 200);
  EXPECT_EQ(probe.body, "");
  // A probe that carries a command as well stores nothing either: it is never work.
  EXPECT_EQ(post("ssl_check=1&" + kCommand, kForm, std::nullopt).status, 200);
  EXPECT_EQ(stored(), 0);
}

TEST_F(SlackEndpointTest, OnlyTheProbeIsExemptFromTheSignature) {
  // Unsigned requests that merely mention ssl_check are refused like any other.
  EXPECT_EQ(post(kCommand, kForm, std::nullopt).status, 401);
  EXPECT_EQ(post("ssl_check=0&" + kCommand, kForm, std::nullopt).status, 401);
  EXPECT_EQ(post(kCommand + "&x=ssl_check%3D1", kForm, std::nullopt).status, 401) << "in a value, not the field";
  EXPECT_EQ(post(R"({"ssl_check":"1","type":"event_callback"})", "application/json", std::nullopt).status, 401);
  EXPECT_EQ(post("ssl_check=1", "text/plain", std::nullopt).status, 401);
  EXPECT_EQ(post(kCommand, kForm, kNow - 301).status, 401) << "stale";
  EXPECT_EQ(stored(), 0);
  // The same command, signed, is work.
  EXPECT_EQ(post(kCommand, kForm, kNow).status, 200);
  EXPECT_EQ(stored(), 1);
}

}  // namespace
}  // namespace deputy::server
