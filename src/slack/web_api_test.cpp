#include "slack/web_api.h"

#include <gtest/gtest.h>

#include "testing/fake_http_client.h"

namespace deputy::slack {
namespace {

struct WebApiTest : ::testing::Test {
  testing::FakeHttpClient http;
  metrics::Registry metrics;
  std::vector<std::chrono::milliseconds> sleeps;
  WebApi api{http, WebApiSettings{"http://slack.test/api/", "xoxb-test-token"}, &metrics,
             [this](std::chrono::milliseconds d) { sleeps.push_back(d); }};
};

TEST_F(WebApiTest, PostsJsonWithTheBotToken) {
  http.push(200, R"({"ok":true,"channel":"C1","ts":"1700000000.000200"})");
  Message m;
  m.text = "hello";
  m.blocks.section("*hello*");
  auto posted = api.post_message("C1", m, "1.1");
  ASSERT_TRUE(posted) << posted.status().message();
  EXPECT_EQ(posted->ts, "1700000000.000200");
  ASSERT_EQ(http.requests.size(), 1u);
  const auto& r = http.requests[0];
  EXPECT_EQ(r.url, "http://slack.test/api/chat.postMessage");
  EXPECT_EQ(r.method, "POST");
  EXPECT_TRUE(r.is_idempotent()) << "Slack's calls may reuse a kept-alive connection";
  bool auth = false, json = false;
  for (auto& [k, v] : r.headers) {
    if (k == "Authorization" && v == "Bearer xoxb-test-token") auth = true;
    if (k == "Content-Type" && v == "application/json; charset=utf-8") json = true;
  }
  EXPECT_TRUE(auth);
  EXPECT_TRUE(json);
  auto body = nlohmann::json::parse(r.body);
  EXPECT_EQ(body["channel"], "C1");
  EXPECT_EQ(body["thread_ts"], "1.1");
  EXPECT_EQ(body["blocks"][0]["type"], "section");
}

TEST_F(WebApiTest, WaitsOutA429AsRetryAfterSays) {
  http.push(429, R"({"ok":false,"error":"ratelimited"})", {{"Retry-After", "7"}});
  http.push(200, R"({"ok":true})");
  Message m;
  m.text = "x";
  EXPECT_TRUE(api.post_ephemeral("C1", "U1", m).ok());
  ASSERT_EQ(sleeps.size(), 1u);
  EXPECT_EQ(sleeps[0], std::chrono::seconds(7));
  EXPECT_EQ(http.requests.size(), 2u);
  EXPECT_EQ(metrics.counter_value("deputy_slack_api_calls_total", {{"method", "chat.postEphemeral"}, {"outcome", "rate_limited"}}), 1);
}

TEST_F(WebApiTest, RetriesServerErrorsABoundedNumberOfTimes) {
  for (int i = 0; i < 10; ++i) http.push(503, "down");
  Message m;
  m.text = "x";
  auto s = api.update("C1", "1.1", m);
  EXPECT_EQ(s.code(), ErrorCode::kUnavailable);
  EXPECT_EQ(http.requests.size(), 4u);
  EXPECT_EQ(sleeps.size(), 3u);
  EXPECT_LT(sleeps[0], sleeps[1]) << "backoff grows";
}

TEST_F(WebApiTest, SurfacesOkFalseAsAnErrorWithoutRetrying) {
  http.push(200, R"({"ok":false,"error":"channel_not_found"})");
  Message m;
  m.text = "x";
  auto s = api.post_message("C404", m);
  ASSERT_FALSE(s);
  EXPECT_NE(s.status().message().find("channel_not_found"), std::string::npos);
  EXPECT_EQ(http.requests.size(), 1u);
  EXPECT_EQ(metrics.counter_value("deputy_slack_api_calls_total", {{"method", "chat.postMessage"}, {"outcome", "error"}}), 1);
}

TEST_F(WebApiTest, ResponseUrlGetsNoBotToken) {
  Message m;
  m.text = "x";
  http.push(200, "ok");
  EXPECT_TRUE(api.respond("https://hooks.slack.com/commands/T/1/abc", m).ok());
  for (auto& [k, v] : http.requests[0].headers) EXPECT_NE(k, "Authorization");
  auto body = nlohmann::json::parse(http.requests[0].body);
  EXPECT_EQ(body["response_type"], "ephemeral");
  EXPECT_EQ(body["replace_original"], false);
  EXPECT_FALSE(body.contains("blocks"));  // a message without blocks sends none
}

TEST_F(WebApiTest, MessageBodiesCarryTextBlocksAndFields) {
  Message m;
  m.text = "done \"now\" \xFF";
  m.blocks.section("*Done*").divider();
  http.push(200, "ok");
  EXPECT_TRUE(api.respond("https://hooks.slack.com/actions/T/1/abc", m, true, false).ok());
  http.push(200, R"({"ok":true})");
  EXPECT_TRUE(api.update("C1", "1700000000.000200", m).ok());
  ASSERT_EQ(http.requests.size(), 2u);
  auto answer = nlohmann::json::parse(http.requests[0].body);
  EXPECT_EQ(answer["response_type"], "in_channel");
  EXPECT_EQ(answer["replace_original"], true);
  EXPECT_EQ(answer["text"], "done \"now\" \xEF\xBF\xBD");  // broken UTF-8 replaced, not a failed send
  ASSERT_EQ(answer["blocks"].size(), 2u);
  EXPECT_EQ(answer["blocks"][0]["text"]["text"], "*Done*");
  EXPECT_EQ(answer["blocks"][1]["type"], "divider");
  auto update = nlohmann::json::parse(http.requests[1].body);
  EXPECT_EQ(update["channel"], "C1");
  EXPECT_EQ(update["ts"], "1700000000.000200");
  EXPECT_EQ(update["blocks"], answer["blocks"]);
}

TEST_F(WebApiTest, ReadsUserProfilesWithFormFields) {
  http.push(200, R"({"ok":true,"user":{"id":"U1","name":"alice","real_name":"Alice","profile":{"email":"alice@acme.com"}}})");
  auto user = api.users_info("U1");
  ASSERT_TRUE(user);
  EXPECT_EQ(user->email, "alice@acme.com");
  EXPECT_EQ(http.requests[0].body, "user=U1");
}

TEST_F(WebApiTest, TransportErrorsAreRetriedThenReported) {
  for (int i = 0; i < 4; ++i) http.push_failure(Unavailable("connection refused"));
  Message m;
  m.text = "x";
  auto s = api.post_ephemeral("C1", "U1", m);
  EXPECT_EQ(s.code(), ErrorCode::kUnavailable);
}

}  // namespace
}  // namespace deputy::slack
