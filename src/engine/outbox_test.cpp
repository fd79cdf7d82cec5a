#include "engine/outbox.h"

#include <gtest/gtest.h>

#include <optional>
#include <nlohmann/json.hpp>

#include "slack/web_api.h"
#include "testing/databases.h"
#include "testing/fake_http_client.h"

namespace deputy::engine {
namespace {

// Slack as a scripted fake that answers each call once (no retries inside the Web API client).
struct OutboxTest : ::testing::Test {
  testing::TestDatabase db{"sqlite"};
  FixedClock clock{1700000000};
  testing::FakeHttpClient slack_http;
  slack::WebApi slack{slack_http, slack::WebApiSettings{"http://slack.test/api", "xoxb-test", 1}, nullptr, [](auto) {}};
  std::unique_ptr<store::Inbox> inbox;
  std::unique_ptr<Outbox> outbox;

  void SetUp() override {
    DEPUTY_REQUIRE_DATABASE(db);
    inbox = std::make_unique<store::Inbox>(*db.database, clock, std::chrono::seconds(3600));
    outbox = std::make_unique<Outbox>(slack, slack, *inbox, clock);
  }

  static slack::Conversation slash_command() {
    slack::Conversation where;
    where.team_id = "T1";
    where.user_id = "U1";
    where.channel_id = "C1";
    where.response_url = "https://hooks.slack.test/commands/T1/1/abc";
    where.via = slack::ReplyVia::kResponseUrl;
    return where;
  }

  // Alice's direct messages with the bot: at the top, or in a thread of them.
  static slack::Conversation direct_messages(const std::string& channel, const std::string& thread_ts = "") {
    return slack::Conversation{"T1", "U1", channel, thread_ts, "", slack::ReplyVia::kDirectMessage};
  }

  static slack::Message result() {
    slack::Message message;
    message.text = "Opened incident \"INC1\"";
    message.blocks.section("Opened incident *INC1*").context({"Acted in ServiceNow as you"});
    return message;
  }

  // The first try; the fake client answers at once, so it is settled on return.
  Status send(const slack::Conversation& where, const slack::Message& message,
              std::chrono::seconds keep_for = engine::Outbox::kKeepFor) {
    std::optional<Status> sent;
    outbox->start_send(where, message, [&](Status s) { sent = std::move(s); }, keep_for);
    if (!sent) return Internal("the try was not settled");
    return *sent;
  }

  // The next try of a kept message, settled on return as send() is.
  Status resend(const store::ClaimedDelivery& delivery) {
    std::optional<Status> sent;
    outbox->start_resend(delivery, [&](Status s) { sent = std::move(s); });
    if (!sent) return Internal("the try was not settled");
    return *sent;
  }

  std::vector<store::ClaimedDelivery> due_after(std::chrono::seconds wait) {
    clock.advance(wait);
    auto claimed = inbox->claim_up_to(std::chrono::seconds(60), 10);
    if (!claimed) {
      ADD_FAILURE() << claimed.status().message();
      return {};
    }
    return *claimed;
  }
};

TEST_F(OutboxTest, AnAnswerSlackTakesIsSentOnceAndNothingIsKept) {
  ASSERT_TRUE(send(slash_command(), result()).ok());
  ASSERT_EQ(slack_http.requests.size(), 1u);
  EXPECT_EQ(slack_http.requests[0].url, "https://hooks.slack.test/commands/T1/1/abc");
  EXPECT_TRUE(due_after(std::chrono::hours(1)).empty());
}

TEST_F(OutboxTest, AnExpiredResponseUrlFallsBackToADirectMessage) {
  slack_http.push(404, "expired_url");
  ASSERT_TRUE(send(slash_command(), result()).ok());
  ASSERT_EQ(slack_http.requests.size(), 2u);
  EXPECT_EQ(slack_http.requests[1].url, "http://slack.test/api/chat.postMessage");
  EXPECT_EQ(nlohmann::json::parse(slack_http.requests[1].body)["channel"], "U1");
  EXPECT_TRUE(due_after(std::chrono::hours(1)).empty());
}

TEST_F(OutboxTest, WhileSlackIsDownTheMessageIsKeptAndSentWhenItIsBack) {
  slack_http.push(500, "down");
  ASSERT_TRUE(send(slash_command(), result()).ok()) << "kept, so the caller has nothing to redo";
  ASSERT_EQ(slack_http.requests.size(), 1u) << "no second copy elsewhere: a 500 may still have reached Slack";

  auto kept = due_after(std::chrono::seconds(2));
  ASSERT_EQ(kept.size(), 1u);
  EXPECT_EQ(kept[0].delivery.kind, Outbox::kKind);
  EXPECT_EQ(kept[0].delivery.team_id, "T1");

  slack_http.push(500, "still down");
  EXPECT_EQ(resend(kept[0]).code(), ErrorCode::kUnavailable) << "the workers try again later";

  const size_t before = slack_http.requests.size();
  ASSERT_TRUE(resend(kept[0]).ok());
  ASSERT_EQ(slack_http.requests.size(), before + 1);
  const auto& sent = slack_http.requests.back();
  EXPECT_EQ(sent.url, "https://hooks.slack.test/commands/T1/1/abc");
  auto body = nlohmann::json::parse(sent.body);
  EXPECT_EQ(body["text"], "Opened incident \"INC1\"");
  EXPECT_EQ(body["blocks"], result().blocks.json()) << "the same blocks as the first try";
}

TEST_F(OutboxTest, AMessageSlackRefusesForGoodIsNotKept) {
  slack_http.push(200, R"({"ok":false,"error":"channel_not_found"})");
  EXPECT_EQ(send(direct_messages("U1"), result()).code(), ErrorCode::kInvalidArgument);
  EXPECT_EQ(slack_http.requests.size(), 1u) << "a direct message has no other way to go";
  EXPECT_TRUE(due_after(std::chrono::hours(1)).empty());
}

TEST_F(OutboxTest, ADirectMessageToSomeoneElseIsKeptTooWhileSlackIsDown) {
  slack_http.push(500, "down");
  outbox->post_direct("T1", "U2", result());
  auto kept = due_after(std::chrono::seconds(2));
  ASSERT_EQ(kept.size(), 1u);
  ASSERT_TRUE(resend(kept[0]).ok());
  EXPECT_EQ(nlohmann::json::parse(slack_http.requests.back().body)["channel"], "U2");
}

TEST_F(OutboxTest, AnAnswerInADirectMessageThreadGoesToTheTopOnlyWhenTheThreadRefusesIt) {
  const slack::Conversation thread = direct_messages("D0U1", "1700000000.000100");
  slack_http.push(503, "down");
  ASSERT_TRUE(send(thread, result()).ok());
  EXPECT_EQ(slack_http.requests.size(), 1u) << "kept for the thread, not posted twice in the same conversation";

  slack_http.push(200, R"({"ok":false,"error":"thread_not_found"})");
  ASSERT_TRUE(send(thread, result()).ok());
  ASSERT_EQ(slack_http.requests.size(), 3u);
  auto top = nlohmann::json::parse(slack_http.requests[2].body);
  EXPECT_EQ(top["channel"], "U1");
  EXPECT_FALSE(top.contains("thread_ts"));
}

TEST_F(OutboxTest, AKeptMessagePastItsTimeIsDroppedUnsent) {
  slack_http.push(500, "down");
  ASSERT_TRUE(send(slash_command(), result(), std::chrono::seconds(600)).ok());
  auto kept = due_after(std::chrono::seconds(601));
  ASSERT_EQ(kept.size(), 1u);
  const size_t before = slack_http.requests.size();
  EXPECT_TRUE(resend(kept[0]).ok()) << "done with, so the workers delete it";
  EXPECT_EQ(slack_http.requests.size(), before) << "a Connect button is not sent after its link has expired";
}

// The workers' executor, run by hand: what the outbox posts waits until the test runs it.
struct HeldExecutor final : Executor {
  void post(std::function<void()> task) override { tasks.push_back(std::move(task)); }
  void run_all() {
    auto now = std::move(tasks);
    tasks.clear();
    for (auto& t : now) t();
  }
  std::vector<std::function<void()>> tasks;
};

TEST_F(OutboxTest, SentWithoutWaitingTheAnswerIsSettledOnTheExecutor) {
  auto executor = std::make_shared<HeldExecutor>();
  outbox->set_executor(executor);
  std::optional<Status> sent;
  outbox->start_send(slash_command(), result(), [&](Status s) { sent = s; });
  ASSERT_EQ(slack_http.requests.size(), 1u);
  EXPECT_FALSE(sent) << "not on the HTTP client's thread";
  executor->run_all();
  ASSERT_TRUE(sent && sent->ok());
  EXPECT_TRUE(due_after(std::chrono::hours(1)).empty());
}

TEST_F(OutboxTest, SentWithoutWaitingARateLimitedMessageIsKeptForAsLongAsSlackAsked) {
  slack_http.push(429, "", {{"Retry-After", "30"}});
  std::optional<Status> sent;
  outbox->start_send(slash_command(), result(), [&](Status s) { sent = s; });
  ASSERT_TRUE(sent && sent->ok()) << "kept, so the job has nothing to redo";
  ASSERT_EQ(slack_http.requests.size(), 1u) << "no sleep and no second try in the caller";
  EXPECT_TRUE(due_after(std::chrono::seconds(29)).empty()) << "not before Slack's Retry-After";
  auto kept = due_after(std::chrono::seconds(1));
  ASSERT_EQ(kept.size(), 1u);
  slack_http.push(429, "", {{"Retry-After", "12"}});
  Status again = resend(kept[0]);
  EXPECT_EQ(again.code(), ErrorCode::kUnavailable);
  EXPECT_EQ(again.retry_after(), std::chrono::seconds(12)) << "a later try waits as long as Slack asks again, without using a try";
}

TEST_F(OutboxTest, SentWithoutWaitingAnExpiredResponseUrlFallsBackToADirectMessage) {
  slack_http.push(404, "expired_url");
  std::optional<Status> sent;
  outbox->start_send(slash_command(), result(), [&](Status s) { sent = s; });
  ASSERT_TRUE(sent && sent->ok());
  ASSERT_EQ(slack_http.requests.size(), 2u);
  EXPECT_EQ(slack_http.requests[1].url, "http://slack.test/api/chat.postMessage");
  EXPECT_EQ(nlohmann::json::parse(slack_http.requests[1].body)["channel"], "U1");
  EXPECT_NE(slack_http.requests[1].body.find("Opened incident"), std::string::npos);
}

TEST_F(OutboxTest, SentWithoutWaitingAMessageSlackRefusesForGoodIsReported) {
  slack_http.push(200, R"({"ok":false,"error":"channel_not_found"})");
  std::optional<Status> sent;
  outbox->start_send(direct_messages("D1"), result(), [&](Status s) { sent = s; });
  ASSERT_TRUE(sent);
  EXPECT_EQ(sent->code(), ErrorCode::kInvalidArgument);
  EXPECT_TRUE(due_after(std::chrono::hours(1)).empty()) << "nothing kept to fail again";
}

}  // namespace
}  // namespace deputy::engine
