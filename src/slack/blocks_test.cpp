#include "slack/blocks.h"

#include <gtest/gtest.h>

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

TEST(Blocks, TruncatesAtCharacterBoundaries) {
  std::string text = "\xC3\xA9\xC3\xA9\xC3\xA9\xC3\xA9";  // four two-byte characters
  std::string cut = truncate_utf8(text, 6);
  EXPECT_EQ(cut, "\xC3\xA9\xE2\x80\xA6");
  EXPECT_EQ(escape_mrkdwn("a<b>&c"), "a&lt;b&gt;&amp;c");
}

}  // namespace
}  // namespace deputy::slack
