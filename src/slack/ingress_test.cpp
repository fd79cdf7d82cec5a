#include "slack/ingress.h"

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "common/encoding.h"
#include "slack/requests.h"

namespace deputy::slack {
namespace {

std::string event_envelope(const nlohmann::json& event, const std::string& event_id = "Ev0PV52K25") {
  return nlohmann::json{{"token", "XXYYZZ"},
                        {"team_id", "T0DEPUTY"},
                        {"api_app_id", "A0DEPUTY"},
                        {"event", event},
                        {"type", "event_callback"},
                        {"event_id", event_id},
                        {"event_time", 1700000000},
                        {"authorizations", {{{"team_id", "T0DEPUTY"}, {"user_id", "U0BOT"}, {"is_bot", true}}}}}
      .dump();
}

TEST(Ingress, AnswersUrlVerification) {
  auto in = classify("application/json", R"({"token":"Jhj5dZrVaK7ZwHHjRyZWjbDl","challenge":"3eZbrw1aBm2rZgRNFdxV2595E9CY3gmdALWMmHkvFXO7tYXAYM8P","type":"url_verification"})");
  ASSERT_EQ(in.kind, Inbound::Kind::kChallenge);
  EXPECT_EQ(in.challenge, "3eZbrw1aBm2rZgRNFdxV2595E9CY3gmdALWMmHkvFXO7tYXAYM8P");
}

TEST(Ingress, QueuesAppMentionsKeyedByEventId) {
  auto in = classify("application/json; charset=utf-8",
                     event_envelope({{"type", "app_mention"}, {"user", "U0ALICE"}, {"text", "<@U0BOT> help"}, {"ts", "1.2"}, {"channel", "C1"}}));
  ASSERT_EQ(in.kind, Inbound::Kind::kWork);
  EXPECT_EQ(in.delivery_kind, "event");
  EXPECT_EQ(in.team_id, "T0DEPUTY");
  EXPECT_EQ(in.dedupe_key, "event:T0DEPUTY:Ev0PV52K25");
}

TEST(Ingress, QueuesDirectMessagesButNotBotPostsOrEdits) {
  nlohmann::json dm = {{"type", "message"}, {"channel_type", "im"}, {"user", "U0ALICE"}, {"text", "help"}, {"channel", "D1"}, {"ts", "1.2"}};
  EXPECT_EQ(classify("application/json", event_envelope(dm)).kind, Inbound::Kind::kWork);
  auto bot = dm;
  bot["bot_id"] = "B0DEPUTY";
  EXPECT_EQ(classify("application/json", event_envelope(bot)).kind, Inbound::Kind::kIgnored);
  auto edit = dm;
  edit["subtype"] = "message_changed";
  EXPECT_EQ(classify("application/json", event_envelope(edit)).kind, Inbound::Kind::kIgnored);
  auto channel = dm;
  channel["channel_type"] = "channel";
  EXPECT_EQ(classify("application/json", event_envelope(channel)).kind, Inbound::Kind::kIgnored);
}

TEST(Ingress, QueuesSlashCommandsAsSlackSentThem) {
  std::string body = "token=x&team_id=T1DC2JH3J&channel_id=G8PSS9T3V&user_id=U2CERLKJA&command=%2Fdeputy&text=help+me"
                     "&response_url=https%3A%2F%2Fhooks.slack.com%2Fcommands%2F1&trigger_id=398738663015.47445629121.803a";
  auto in = classify("application/x-www-form-urlencoded", body);
  ASSERT_EQ(in.kind, Inbound::Kind::kWork);
  EXPECT_EQ(in.delivery_kind, "slash_command");
  EXPECT_EQ(in.team_id, "T1DC2JH3J");
  EXPECT_EQ(in.payload, body);
  auto request = interpret(in.delivery_kind, in.payload);
  ASSERT_TRUE(request) << request.status().message();
  const auto& command = std::get<CommandRequest>(*request);
  EXPECT_EQ(command.text, "help me");
  EXPECT_EQ(command.where.user_id, "U2CERLKJA");
  EXPECT_EQ(command.where.channel_id, "G8PSS9T3V");
  EXPECT_EQ(command.where.response_url, "https://hooks.slack.com/commands/1");
  EXPECT_EQ(in.dedupe_key, "slash:T1DC2JH3J:398738663015.47445629121.803a");
}

TEST(Ingress, KeysButtonClicksByUserMessageAndAction) {
  nlohmann::json payload = {{"type", "block_actions"},
                            {"user", {{"id", "U0ALICE"}}},
                            {"team", {{"id", "T0DEPUTY"}}},
                            {"trigger_id", "111.222.abc"},
                            {"container", {{"type", "message"}, {"message_ts", "1700000000.000100"}, {"channel_id", "C1"}}},
                            {"actions", {{{"action_id", "approval.approve"}, {"value", "job-7"}, {"action_ts", "1.1"}}}}};
  auto first = classify("application/x-www-form-urlencoded", "payload=" + url_encode(payload.dump()));
  payload["trigger_id"] = "333.444.def";
  payload["actions"][0]["action_ts"] = "1.2";
  auto second = classify("application/x-www-form-urlencoded", "payload=" + url_encode(payload.dump()));
  ASSERT_EQ(first.kind, Inbound::Kind::kWork);
  EXPECT_EQ(first.delivery_kind, "block_actions");
  EXPECT_EQ(first.dedupe_key, second.dedupe_key) << "a double click must map to one key";

  payload["actions"][0]["action_id"] = "view.connections";
  auto view = classify("application/x-www-form-urlencoded", "payload=" + url_encode(payload.dump()));
  EXPECT_EQ(view.dedupe_key, "action:T0DEPUTY:333.444.def");
}

TEST(Ingress, RefusesMalformedPayloads) {
  EXPECT_EQ(classify("application/json", "{not json").kind, Inbound::Kind::kMalformed);
  EXPECT_EQ(classify("application/json", "[1,2]").kind, Inbound::Kind::kMalformed);
  EXPECT_EQ(classify("application/x-www-form-urlencoded", "payload=%7Bbroken").kind, Inbound::Kind::kMalformed);
  EXPECT_EQ(classify("application/x-www-form-urlencoded", "a=%ZZ").kind, Inbound::Kind::kMalformed);
  EXPECT_EQ(classify("application/x-www-form-urlencoded", "foo=bar").kind, Inbound::Kind::kMalformed);
  EXPECT_EQ(classify("text/plain", "help").kind, Inbound::Kind::kMalformed);
  // %ff%fe%c3: bytes Slack never sends as text.
  EXPECT_EQ(classify("application/x-www-form-urlencoded", "command=%2Fdeputy&text=create+incident+%ff%fe%c3&user_id=U1&team_id=T1").kind,
            Inbound::Kind::kMalformed);
  EXPECT_EQ(classify("application/x-www-form-urlencoded", "command=%2Fdeputy&text=%E6%97%A5%E6%9C%AC&user_id=U1&team_id=T1").kind,
            Inbound::Kind::kWork);
  EXPECT_EQ(classify("application/json", R"({"type":"event_callback","team_id":"T","event":{"type":"app_mention"}})").kind,
            Inbound::Kind::kMalformed);
}

TEST(Ingress, IgnoresInteractionsItDoesNotHandle) {
  auto in = classify("application/x-www-form-urlencoded", "payload=" + url_encode(R"({"type":"view_submission"})"));
  EXPECT_EQ(in.kind, Inbound::Kind::kIgnored);
}

}  // namespace
}  // namespace deputy::slack
