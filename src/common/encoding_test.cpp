#include "common/encoding.h"

#include <gtest/gtest.h>

namespace deputy {
namespace {

TEST(Encoding, HexRoundTrip) {
  EXPECT_EQ(to_hex("\x01\xab\xff"), "01abff");
  EXPECT_EQ(from_hex("01ABff").value(), "\x01\xab\xff");
  EXPECT_FALSE(from_hex("abc"));
  EXPECT_FALSE(from_hex("zz"));
}

TEST(Encoding, Base64FollowsRfc4648) {
  EXPECT_EQ(base64_encode("foobar"), "Zm9vYmFy");
  EXPECT_EQ(base64_encode("fo"), "Zm8=");
  EXPECT_EQ(base64url_encode("\xfb\xff"), "-_8");
  EXPECT_EQ(base64_decode("Zm8=").value(), "fo");
  EXPECT_EQ(base64url_decode("-_8").value(), "\xfb\xff");
  EXPECT_FALSE(base64_decode("Z"));
  EXPECT_FALSE(base64_decode("Zm9v*mFy"));
}

TEST(Encoding, FormParsingDecodesAndRefusesBrokenEscapes) {
  auto fields = parse_form("a=1&b=hello+world&c=%2Fdeputy&d=&e");
  ASSERT_TRUE(fields);
  EXPECT_EQ(form_value(*fields, "b").value(), "hello world");
  EXPECT_EQ(form_value(*fields, "c").value(), "/deputy");
  EXPECT_EQ(form_value(*fields, "d").value(), "");
  EXPECT_EQ(form_value(*fields, "e").value(), "");
  EXPECT_FALSE(parse_form("a=%2"));
  EXPECT_FALSE(parse_form("a=%G1"));
  EXPECT_FALSE(parse_form("a=%"));
}

TEST(Encoding, UrlDecodeHandlesRunsEscapesAndPlus) {
  EXPECT_EQ(url_decode("plain").value(), "plain");
  EXPECT_EQ(url_decode("").value(), "");
  EXPECT_EQ(url_decode("%2f%2F").value(), "//");
  EXPECT_EQ(url_decode("a+b%20c+").value(), "a b c ");
  EXPECT_EQ(url_decode("ends%3d").value(), "ends=");
  EXPECT_EQ(url_decode("%E2%9C%93ok").value(), "\xE2\x9C\x93ok");
  EXPECT_EQ(url_decode("a+b", /*plus_is_space=*/false).value(), "a+b");
  EXPECT_FALSE(url_decode("ok%4"));
  EXPECT_FALSE(url_decode("ok%4g+"));
}

TEST(Encoding, FormViewDecodesOnlyTheFieldAskedFor) {
  auto form = FormView::parse("command=%2Fdeputy&text=hello+world&text=second&&empty=&bare&team%5Fid=T1&a+b=c");
  ASSERT_TRUE(form);
  EXPECT_EQ(form->value("command").value(), "/deputy");
  EXPECT_EQ(form->value("text").value(), "hello world");  // the first, as form_value
  EXPECT_EQ(form->value("empty").value(), "");
  EXPECT_EQ(form->value("bare").value(), "");
  EXPECT_EQ(form->value("team_id").value(), "T1");  // an escaped name still matches
  EXPECT_EQ(form->value("a b").value(), "c");
  EXPECT_FALSE(form->value("a+b"));  // names compare decoded, as form_value
  EXPECT_FALSE(form->value("team%5Fid"));
  EXPECT_FALSE(form->value("user_id"));
  EXPECT_FALSE(form->value(""));
  ASSERT_TRUE(FormView::parse(""));
  EXPECT_FALSE(FormView::parse("")->value("text"));
  EXPECT_FALSE(FormView::parse("a=1&b=%2"));
  EXPECT_FALSE(FormView::parse("a=%&b=2"));
  EXPECT_FALSE(FormView::parse("a%G1=2"));
  EXPECT_EQ(FormView::parse("a=100%25&b=%41")->value("b").value(), "A");
}

TEST(Encoding, FormEncodingRoundTrips) {
  FormFields fields = {{"text", "create opportunity \"Acme\" 5000"}, {"x", "a&b=c/d"}};
  auto parsed = parse_form(encode_form(fields));
  ASSERT_TRUE(parsed);
  EXPECT_EQ(*parsed, fields);
}

TEST(Encoding, EqualIgnoringAsciiCase) {
  EXPECT_TRUE(equal_ignoring_ascii_case("X-Slack-Signature", "x-slack-SIGNATURE"));
  EXPECT_TRUE(equal_ignoring_ascii_case("", ""));
  EXPECT_FALSE(equal_ignoring_ascii_case("X-Slack-Signature", "X-Slack-Signatur"));
  EXPECT_FALSE(equal_ignoring_ascii_case("a[", "A{"));  // '[' and '{' differ only in the case bit
  EXPECT_FALSE(equal_ignoring_ascii_case("Content-Type", "Content_Type"));
}

TEST(Encoding, ConstantTimeEqual) {
  EXPECT_TRUE(constant_time_equal("abc", "abc"));
  EXPECT_FALSE(constant_time_equal("abc", "abd"));
  EXPECT_FALSE(constant_time_equal("abc", "abcd"));
}

std::string json_string(std::string_view text) {
  std::string out = "x";  // appends, keeping what is there
  append_json_string(out, text);
  return out.substr(1);
}

TEST(Encoding, JsonStringEscapesWhatJsonRequires) {
  EXPECT_EQ(json_string(""), R"("")");
  EXPECT_EQ(json_string("plain <text> & 'quotes'/"), R"("plain <text> & 'quotes'/")");
  EXPECT_EQ(json_string("say \"hi\"\\ now"), R"("say \"hi\"\\ now")");
  EXPECT_EQ(json_string("a\nb\tc\rd\be\ff"), R"("a\nb\tc\rd\be\ff")");
  EXPECT_EQ(json_string(std::string_view("\0\x01\x1f", 3)), R"("\u0000\u0001\u001f")");
  EXPECT_EQ(json_string("\x7f"), "\"\x7f\"");  // DEL needs no escape in JSON
}

TEST(Encoding, JsonStringKeepsValidUtf8AndReplacesTheRest) {
  // Two-, three- and four-byte characters pass as they are.
  EXPECT_EQ(json_string("caf\xC3\xA9 \xE2\x80\x94 \xF0\x9F\x91\x8D"), "\"caf\xC3\xA9 \xE2\x80\x94 \xF0\x9F\x91\x8D\"");
  const std::string replacement = "\xEF\xBF\xBD";
  EXPECT_EQ(json_string("a\xFF" "b"), "\"a" + replacement + "b\"");                         // never a UTF-8 byte
  EXPECT_EQ(json_string("a\xC3"), "\"a" + replacement + "\"");                           // cut short at the end
  EXPECT_EQ(json_string("\xC3(x"), "\"" + replacement + "(x\"");                         // lead without continuation
  EXPECT_EQ(json_string("\xC0\xAF"), "\"" + replacement + replacement + "\"");            // overlong '/'
  EXPECT_EQ(json_string("\xED\xA0\x80"), "\"" + replacement + replacement + replacement + "\"");  // a surrogate
  EXPECT_EQ(json_string("\xF4\x90\x80\x80"), "\"" + replacement + replacement + replacement + replacement + "\"");  // past U+10FFFF
  EXPECT_EQ(json_string("\x80\"q"), "\"" + replacement + "\\\"q\"");                   // escaping goes on after a bad byte
  EXPECT_EQ(json_string("\xE0\x80\x80"), "\"" + replacement + replacement + replacement + "\"");  // overlong three-byte
  EXPECT_EQ(json_string("\xE0\xA0\x80"), "\"\xE0\xA0\x80\"");                         // the smallest three-byte one
  EXPECT_EQ(json_string("\xF0\x80\x80\x80"), "\"" + replacement + replacement + replacement + replacement + "\"");  // overlong four-byte
  EXPECT_EQ(json_string("\xF0\x90\x80\x80"), "\"\xF0\x90\x80\x80\"");                 // the smallest four-byte one
  EXPECT_EQ(json_string("\xF4\x8F\xBF\xBF"), "\"\xF4\x8F\xBF\xBF\"");                 // U+10FFFF, the largest
  EXPECT_EQ(json_string("\xF5" "a"), "\"" + replacement + "a\"");                        // never a lead byte
  EXPECT_EQ(json_string("a\xE2\x80"), "\"a" + replacement + replacement + "\"");         // three-byte cut short
  EXPECT_EQ(json_string("a\xF0\x9F\x91"), "\"a" + replacement + replacement + replacement + "\"");  // four-byte cut short
}

TEST(Encoding, ValidUtf8IsToldFromTheRest) {
  EXPECT_TRUE(is_valid_utf8(""));
  EXPECT_TRUE(is_valid_utf8("plain ascii"));
  EXPECT_TRUE(is_valid_utf8("caf\xC3\xA9 \xE6\x97\xA5\xE6\x9C\xAC \xF0\x9F\x91\x8D \xF4\x8F\xBF\xBF"));
  EXPECT_FALSE(is_valid_utf8("a\xFF"));
  EXPECT_FALSE(is_valid_utf8("a\xC3"));
  EXPECT_FALSE(is_valid_utf8("\xC0\xAF"));
  EXPECT_FALSE(is_valid_utf8("\xED\xA0\x80"));
  EXPECT_FALSE(is_valid_utf8("\xF4\x90\x80\x80"));
}

TEST(Encoding, SplitWordsAndTrim) {
  EXPECT_EQ(split_words("  create   opportunity\tAcme \n"), (std::vector<std::string>{"create", "opportunity", "Acme"}));
  EXPECT_EQ(trim("  x y  "), "x y");
}

}  // namespace
}  // namespace deputy
