#include "slack/requests.h"

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

namespace deputy::slack {
namespace {

TEST(Requests, SlashCommandsAnswerThroughResponseUrl) {
  auto r = interpret("slash_command", "team_id=T1&user_id=U1&channel_id=C1&text=++help+&response_url=https%3A%2F%2Fhooks.slack.com%2Fx");
  ASSERT_TRUE(r);
  auto& form = std::get<CommandRequest>(*r);
  EXPECT_EQ(form.text, "help");
  EXPECT_EQ(form.where.team_id, "T1");
  EXPECT_EQ(form.where.response_url, "https://hooks.slack.com/x");
  EXPECT_FALSE(interpret("slash_command", "text=%ZZ")) << "a broken stored form is refused, not guessed at";
}

TEST(Requests, SlashCommandsStoredAsJsonByEarlierVersionsStillRun) {
  auto r = interpret("slash_command", R"({"team_id":"T1","user_id":"U1","channel_id":"C1","text":"  help ","response_url":"https://hooks.slack.com/x"})");
  ASSERT_TRUE(r);
  auto& c = std::get<CommandRequest>(*r);
  EXPECT_EQ(c.text, "help");
  EXPECT_EQ(c.origin, Origin::kSlashCommand);
  EXPECT_EQ(c.where.via, ReplyVia::kResponseUrl);
  EXPECT_EQ(c.where.response_url, "https://hooks.slack.com/x");
}

TEST(Requests, MentionsStripTheBotAndAnswerEphemerally) {
  nlohmann::json env = {{"team_id", "T1"},
                        {"authorizations", {{{"user_id", "U0BOT"}}}},
                        {"event", {{"type", "app_mention"}, {"user", "U1"}, {"channel", "C1"}, {"ts", "5.5"}, {"text", "<@U0BOT> connections"}}}};
  auto r = interpret("event", env.dump());
  ASSERT_TRUE(r);
  auto& c = std::get<CommandRequest>(*r);
  EXPECT_EQ(c.text, "connections");
  EXPECT_EQ(c.where.via, ReplyVia::kEphemeral);
  EXPECT_EQ(c.where.thread_ts, "");
  env["event"]["thread_ts"] = "4.4";
  env["event"]["text"] = "hey <@U0BOT|deputy> help <@U9OTHER>";
  auto threaded = std::get<CommandRequest>(*interpret("event", env.dump()));
  EXPECT_EQ(threaded.where.thread_ts, "4.4");
  EXPECT_EQ(threaded.text, "hey  help <@U9OTHER>");
}

TEST(Requests, DirectMessagesAreAnsweredInlineUnlessWrittenInAThread) {
  nlohmann::json env = {{"team_id", "T1"},
                        {"authorizations", {{{"user_id", "U0BOT"}}}},
                        {"event", {{"type", "message"}, {"channel_type", "im"}, {"user", "U1"}, {"channel", "D1"}, {"ts", "7.7"}, {"text", "help"}}}};
  auto c = std::get<CommandRequest>(*interpret("event", env.dump()));
  EXPECT_EQ(c.where.via, ReplyVia::kDirectMessage);
  EXPECT_EQ(c.where.thread_ts, "") << "inline, as a person answers a DM";
  EXPECT_EQ(c.origin, Origin::kDirectMessage);
  env["event"]["thread_ts"] = "6.6";
  env["event"]["ts"] = "7.8";
  auto threaded = std::get<CommandRequest>(*interpret("event", env.dump()));
  EXPECT_EQ(threaded.where.thread_ts, "6.6") << "in the thread the person wrote in";
}

TEST(Requests, DirectMessagesKeepOtherPeoplesMentions) {
  nlohmann::json env = {{"team_id", "T1"},
                        {"event", {{"type", "message"}, {"channel_type", "im"}, {"user", "U1"}, {"channel", "D1"}, {"ts", "7.7"},
                                   {"text", "approve request R1 <@U0BOB>"}}}};
  // Without authorizations the bot's id is unknown; a DM's first mention is then someone else.
  EXPECT_EQ(std::get<CommandRequest>(*interpret("event", env.dump())).text, "approve request R1 <@U0BOB>");
  env["authorizations"] = {{{"user_id", "U0BOT"}}};
  env["event"]["text"] = "<@U0BOT> approve request R1 <@U0BOB>";
  EXPECT_EQ(std::get<CommandRequest>(*interpret("event", env.dump())).text, "approve request R1 <@U0BOB>");
}

TEST(Requests, TextIsKeptAsSlackSentIt) {
  // Decoding happens once, where the words are read (slack::typed_words), never here: a
  // decoded "&lt;@U1&gt;" would look like a mention to anything reading it after.
  nlohmann::json env = {{"team_id", "T1"},
                        {"authorizations", {{{"user_id", "U0BOT"}}}},
                        {"event", {{"type", "app_mention"}, {"user", "U1"}, {"channel", "C1"}, {"ts", "5.5"},
                                   {"text", "<@U0BOT> create Tom &amp; Jerry &lt;@U0EVE&gt;"}}}};
  EXPECT_EQ(std::get<CommandRequest>(*interpret("event", env.dump())).text, "create Tom &amp; Jerry &lt;@U0EVE&gt;");
}

TEST(Requests, ClicksInDirectMessagesAnswerWhereTheButtonIs) {
  nlohmann::json payload = {{"type", "block_actions"},
                            {"user", {{"id", "U1"}}},
                            {"team", {{"id", "T1"}}},
                            {"channel", {{"id", "D1"}}},
                            {"container", {{"message_ts", "8.8"}, {"is_ephemeral", false}}},
                            {"message", {{"ts", "8.8"}, {"thread_ts", "7.7"}}},
                            {"response_url", "https://hooks.slack.com/actions/1"},
                            {"actions", {{{"action_id", "view.connections"}, {"value", "list"}}}}};
  auto a = std::get<ActionRequest>(*interpret("block_actions", payload.dump()));
  EXPECT_EQ(a.where.via, ReplyVia::kDirectMessage);
  EXPECT_EQ(a.where.thread_ts, "7.7");
  payload["message"].erase("thread_ts");
  auto inline_click = std::get<ActionRequest>(*interpret("block_actions", payload.dump()));
  EXPECT_EQ(inline_click.where.thread_ts, "") << "a button in the DM itself is answered in the DM itself";
  payload["channel"]["id"] = "C1";
  auto in_channel = std::get<ActionRequest>(*interpret("block_actions", payload.dump()));
  EXPECT_EQ(in_channel.where.via, ReplyVia::kResponseUrl);
}

TEST(Requests, RefusesUnreadablePayloads) {
  EXPECT_FALSE(interpret("event", "nope"));
  EXPECT_FALSE(interpret("mystery", "{}"));
  EXPECT_FALSE(interpret("event", R"({"event":{"type":"app_mention"}})"));
}

}  // namespace
}  // namespace deputy::slack
