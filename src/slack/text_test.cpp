#include "slack/text.h"

#include <gtest/gtest.h>

namespace deputy::slack {
namespace {

std::vector<std::string> texts(std::string_view slack_text) {
  std::vector<std::string> out;
  for (const Word& w : typed_words(slack_text)) out.push_back(w.text);
  return out;
}

TEST(SlackText, DecodesTheThreeEntitiesOnly) {
  EXPECT_EQ(decode_entities("Tom &amp; Jerry &lt;b&gt;"), "Tom & Jerry <b>");
  // One pass: "&amp;lt;" is how Slack sends a typed "&lt;".
  EXPECT_EQ(decode_entities("&amp;lt; &amp;amp;"), "&lt; &amp;");
  EXPECT_EQ(decode_entities("&quot; &#39; &nbsp; & &am"), "&quot; &#39; &nbsp; & &am");
}

TEST(SlackText, KeepsQuotedTextTogether) {
  EXPECT_EQ(texts(R"(create opportunity "Acme renewal" 5000  stage=Qualification)"),
            (std::vector<std::string>{"create", "opportunity", "Acme renewal", "5000", "stage=Qualification"}));
  EXPECT_EQ(texts(R"(a "" b)"), (std::vector<std::string>{"a", "", "b"}));
  EXPECT_TRUE(texts("   ").empty());
  EXPECT_TRUE(texts("").empty());
  EXPECT_EQ(texts("one\ttwo\nthree"), (std::vector<std::string>{"one", "two", "three"}));
}

TEST(SlackText, CurlyQuotesGroupWordsLikeStraightOnes) {
  EXPECT_EQ(texts("name=\xE2\x80\x9C" "Big deal\xE2\x80\x9D x"), (std::vector<std::string>{"name=Big deal", "x"}));
  EXPECT_EQ(texts("\"Tom \xE2\x80\x9Cquoted\xE2\x80\x9D\" x"), (std::vector<std::string>{"Tom \xE2\x80\x9Cquoted\xE2\x80\x9D", "x"}))
      << "curly quotes inside straight ones are text";
  EXPECT_EQ(texts("\xE2\x80\x9D" "Stor aff\xC3\xA4r\xE2\x80\x9D x"), (std::vector<std::string>{"Stor aff\xC3\xA4r", "x"})) << "Swedish quotes";
  EXPECT_EQ(texts("\xE2\x80\x9E" "Gro\xC3\x9F" "e Sache\xE2\x80\x9C x"), (std::vector<std::string>{"Gro\xC3\x9F" "e Sache", "x"})) << "German quotes";
  // Escaped text never opens a quote, and quotes typed inside a form's label do not either.
  EXPECT_EQ(texts("<https://e.com|say \"hi> there"), (std::vector<std::string>{"say \"hi", "there"}));
}

TEST(SlackText, FormsAreSplitOutBeforeEntitiesAreDecoded) {
  // Security rule: a person who types "<@U0EVE>" sends "&lt;@U0EVE&gt;"; it stays text.
  auto words = typed_words("&lt;@U0EVE&gt; &lt;@U0EVE|eve&gt; &lt;!here&gt; &lt;https://evil.example|bank&gt;");
  ASSERT_EQ(words.size(), 4u);
  EXPECT_EQ(words[0].text, "<@U0EVE>");
  EXPECT_EQ(words[1].text, "<@U0EVE|eve>");
  EXPECT_EQ(words[2].text, "<!here>");
  EXPECT_EQ(words[3].text, "<https://evil.example|bank>");
  for (const Word& w : words) {
    EXPECT_TRUE(w.references.empty()) << w.text;
    EXPECT_EQ(w.user_id(), "") << w.text;
  }
  // Nor does an entity inside a form's label make one.
  auto label = typed_words("<https://e.com|&lt;@U0EVE&gt;>");
  ASSERT_EQ(label.size(), 1u);
  EXPECT_EQ(label[0].text, "<@U0EVE>");
  ASSERT_EQ(label[0].references.size(), 1u);
  EXPECT_EQ(label[0].references[0].kind, Reference::Kind::kLink);
  EXPECT_EQ(label[0].user_id(), "");
}

TEST(SlackText, UserMentionsWithAndWithoutLabels) {
  auto words = typed_words("<@U0BOB|bob> <@W0ENT> <@U0ALICE> x=<@U0CAROL|carol>");
  ASSERT_EQ(words.size(), 4u);
  EXPECT_EQ(words[0].text, "@bob");
  EXPECT_EQ(words[0].user_id(), "U0BOB");
  EXPECT_EQ(words[1].text, "@W0ENT");
  EXPECT_EQ(words[1].user_id(), "W0ENT");
  EXPECT_EQ(words[2].user_id(), "U0ALICE");
  EXPECT_EQ(words[3].text, "x=@carol");
  EXPECT_EQ(words[3].user_id(), "") << "the word is more than the mention";
  EXPECT_EQ(words[3].user_id(2), "U0CAROL");
  ASSERT_EQ(words[3].references.size(), 1u);
  EXPECT_EQ(words[3].references[0].begin, 2u);
  EXPECT_EQ(words[3].references[0].end, words[3].text.size());
  EXPECT_EQ(typed_words("<@U0BOB><@U0ALICE>")[0].user_id(), "") << "two mentions are not one person";
  EXPECT_EQ(typed_words("U0BOB")[0].user_id(), "U0BOB") << "a bare id typed as text";
  EXPECT_EQ(typed_words("bob")[0].user_id(), "");
  EXPECT_EQ(typed_words("u0bob")[0].user_id(), "");
  EXPECT_EQ(typed_words("<@bob>")[0].user_id(), "") << "not a user id";
}

TEST(SlackText, ChannelsBroadcastsGroupsAndLinks) {
  auto words = typed_words("<#C0GENERAL|general> <#C0RANDOM|> <!here> <!channel> <!subteam^S0DEVS|@devs> <!subteam^S0OPS> "
                           "<mailto:ann@example.com|ann@example.com> <https://example.com/a?b=1&amp;c=2|the &amp; page> <http://e.com> "
                           "<!date^1392734382^{date_short}|Feb 18, 2014>");
  ASSERT_EQ(words.size(), 10u);
  EXPECT_EQ(words[0].text, "#general");
  EXPECT_EQ(words[0].references[0].kind, Reference::Kind::kChannel);
  EXPECT_EQ(words[0].references[0].target, "C0GENERAL");
  EXPECT_EQ(words[1].text, "#C0RANDOM") << "an empty label shows the id";
  EXPECT_EQ(words[2].text, "@here");
  EXPECT_EQ(words[2].references[0].kind, Reference::Kind::kBroadcast);
  EXPECT_EQ(words[3].text, "@channel");
  EXPECT_EQ(words[4].text, "@devs");
  EXPECT_EQ(words[4].references[0].kind, Reference::Kind::kUserGroup);
  EXPECT_EQ(words[4].references[0].target, "S0DEVS");
  EXPECT_EQ(words[5].text, "@S0OPS");
  EXPECT_EQ(words[6].text, "ann@example.com");
  EXPECT_EQ(words[6].references[0].kind, Reference::Kind::kLink);
  EXPECT_EQ(words[6].references[0].target, "mailto:ann@example.com");
  EXPECT_EQ(words[7].text, "the & page") << "a label with spaces stays one word";
  EXPECT_EQ(words[7].sole_reference()->target, "https://example.com/a?b=1&c=2");
  EXPECT_EQ(words[8].text, "http://e.com");
  EXPECT_EQ(words[9].text, "Feb 18, 2014");
  EXPECT_EQ(words[9].references[0].kind, Reference::Kind::kOther);
}

TEST(SlackText, UnicodeAndEmojiShortcodesPassThrough) {
  EXPECT_EQ(texts("\xE6\x9D\xB1\xE4\xBA\xAC :tada: caf\xC3\xA9 \xF0\x9F\x8E\x89"),
            (std::vector<std::string>{"\xE6\x9D\xB1\xE4\xBA\xAC", ":tada:", "caf\xC3\xA9", "\xF0\x9F\x8E\x89"}));
}

TEST(SlackText, StrayBracketsAreText) {
  EXPECT_EQ(texts("a < b > c <> <unclosed"), (std::vector<std::string>{"a", "<", "b", ">", "c", "<>", "<unclosed"}));
  EXPECT_EQ(texts("<|label only> <no-scheme|x>"), (std::vector<std::string>{"<|label", "only>", "<no-scheme|x>"}));
}

TEST(SlackText, AsTypedIsTheWholeText) {
  EXPECT_EQ(as_typed("Tom &amp; Jerry &lt;b&gt; for <@U0BOB|bob> in <#C1|general>: <https://e.com|docs>"),
            "Tom & Jerry <b> for @bob in #general: docs");
  EXPECT_EQ(as_typed("\"quotes\" stay"), "\"quotes\" stay");
}

}  // namespace
}  // namespace deputy::slack
