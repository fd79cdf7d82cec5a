#include "slack/blocks.h"

#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

namespace deputy::slack {
namespace {

TEST(Blocks, BuildsBlockKitJson) {
  Blocks b;
  b.header("Deputy").section("hi").actions({Button{"Personal accounts", "view.connections", "list", "", "primary", std::nullopt}}, "help");
  auto json = b.json();
  ASSERT_EQ(json.size(), 3u);
  EXPECT_EQ(json[0]["type"], "header");
  EXPECT_EQ(json[0]["text"]["type"], "plain_text");
  EXPECT_EQ(json[1]["text"]["type"], "mrkdwn");
  EXPECT_EQ(json[2]["elements"][0]["action_id"], "view.connections");
  EXPECT_EQ(json[2]["elements"][0]["style"], "primary");
  EXPECT_EQ(json[2]["block_id"], "help");
}

TEST(Blocks, AppliesSlackLimits) {
  Blocks b;
  for (int i = 0; i < 60; ++i) b.divider();
  EXPECT_EQ(b.size(), kMaxBlocksPerMessage);
  Blocks text;
  text.section(std::string(5000, 'x'));
  EXPECT_LE(text.json()[0]["text"]["text"].get<std::string>().size(), kMaxSectionText);
  Blocks button;
  button.actions({Button{std::string(100, 'b'), "a", "", "", "", std::nullopt}});
  EXPECT_LE(button.json()[0]["elements"][0]["text"]["text"].get<std::string>().size(), kMaxButtonText);
}

TEST(Blocks, ConfirmDialogs) {
  Blocks b;
  b.section("GitHub", Button{"Disconnect", "connection.disconnect", "7", "", "danger", Confirm{"Disconnect?", "Sure?", "Disconnect", "Cancel"}});
  auto confirm = b.json()[0]["accessory"]["confirm"];
  EXPECT_EQ(confirm["title"]["text"], "Disconnect?");
  EXPECT_EQ(confirm["style"], "danger");
}

TEST(Blocks, WritesValidJsonFromAnyText) {
  // Quotes, backslashes, newlines, control characters and broken UTF-8 from a user or an app
  // must still give Slack one valid document with the text as it was meant.
  const std::string text = "He said \"no\" \\ then\nleft\x01 caf\xC3\xA9 \xFF";
  Blocks b;
  b.header(text).section(text, Button{text, "a.b", text, "https://x.test/?q=\"1\"", "danger", Confirm{text, text, "Yes", "No"}});
  b.fields({text, "two"}).context({text}).actions({Button{"Go", "go", "", "", "", std::nullopt}}, "blk").divider();
  std::string out;
  b.append_json(out);
  auto json = nlohmann::json::parse(out);  // throws if it is not valid JSON
  ASSERT_EQ(json.size(), 6u);
  const std::string expected = "He said \"no\" \\ then\nleft\x01 caf\xC3\xA9 \xEF\xBF\xBD";
  EXPECT_EQ(json[0]["text"]["text"], expected);
  EXPECT_EQ(json[0]["text"]["emoji"], true);
  EXPECT_EQ(json[1]["text"]["text"], expected);
  EXPECT_EQ(json[1]["accessory"]["value"], expected);
  EXPECT_EQ(json[1]["accessory"]["url"], "https://x.test/?q=\"1\"");
  EXPECT_EQ(json[1]["accessory"]["confirm"]["text"]["type"], "mrkdwn");
  EXPECT_EQ(json[1]["accessory"]["confirm"]["deny"]["text"], "No");
  EXPECT_EQ(json[2]["fields"].size(), 2u);
  EXPECT_EQ(json[2]["fields"][1]["text"], "two");
  EXPECT_EQ(json[3]["elements"][0]["text"], expected);
  EXPECT_EQ(json[4]["elements"][0].contains("value"), false);
  EXPECT_EQ(json[4]["block_id"], "blk");
  EXPECT_EQ(json[5], nlohmann::json({{"type", "divider"}}));
  Blocks none;
  out.clear();
  none.append_json(out);
  EXPECT_EQ(out, "[]");
}

TEST(Blocks, IdentifiersAreCutAtCharacterBoundariesWithoutAnEllipsis) {
  // 254 ASCII bytes, then a two-byte character across the 255-byte limit of a block_id.
  const std::string id = std::string(254, 'b') + "\xC3\xA9";
  Blocks b;
  b.actions({Button{"Go", std::string(254, 'a') + "\xC3\xA9", "", "", "", std::nullopt}}, id);
  auto json = b.json();
  EXPECT_EQ(json[0]["block_id"], std::string(254, 'b'));
  EXPECT_EQ(json[0]["elements"][0]["action_id"], std::string(254, 'a'));
}

TEST(Blocks, TruncatesAtCharacterBoundaries) {
  std::string text = "\xC3\xA9\xC3\xA9\xC3\xA9\xC3\xA9";  // four two-byte characters
  std::string cut = truncate_utf8(text, 6);
  EXPECT_EQ(cut, "\xC3\xA9\xE2\x80\xA6");
  EXPECT_EQ(escape_mrkdwn("a<b>&c"), "a&lt;b&gt;&amp;c");
}

}  // namespace
}  // namespace deputy::slack
