#include "recipes/template.h"

#include "slack/text.h"

#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

namespace deputy::recipes {
namespace {

Recipe opportunity() {
  auto r = parse_recipe(R"(command: create opportunity
app: salesforce
parameters:
  - name: name
  - name: amount
    type: number
  - name: close_date
    type: date
    required: false
  - name: stage
    type: choice
    choices: [Prospecting, Qualification]
    default: Prospecting
  - name: approver
    type: user
    required: false
    positional: false
steps:
  - id: create
    http: {method: POST, path: /sobjects/Opportunity}
)", "o.yaml");
  return *r;
}

// The arguments of a command, given as Slack sends the text.
Result<std::map<std::string, std::string>> parse(const Recipe& r, std::string_view slack_text) {
  return parse_arguments(r, slack::typed_words(slack_text));
}

TEST(ParseArguments, PositionalNamedDefaultsAndTypes) {
  Recipe r = opportunity();
  auto v = parse(r, "Acme 5000.50 close_date=2026-12-31 approver=<@U0BOB|bob>");
  ASSERT_TRUE(v) << v.status().message();
  EXPECT_EQ(v->at("name"), "Acme");
  EXPECT_EQ(v->at("amount"), "5000.50");
  EXPECT_EQ(v->at("close_date"), "2026-12-31");
  EXPECT_EQ(v->at("stage"), "Prospecting");
  EXPECT_EQ(v->at("approver"), "U0BOB");

  auto named_first = parse(r, "amount=7 Acme stage=qualification");
  ASSERT_TRUE(named_first) << named_first.status().message();
  EXPECT_EQ(named_first->at("name"), "Acme");
  EXPECT_EQ(named_first->at("stage"), "Qualification");
}

TEST(ParseArguments, BadOrMissingValuesSayWhich) {
  Recipe r = opportunity();
  auto missing = parse(r, "Acme");
  ASSERT_FALSE(missing);
  EXPECT_NE(missing.status().message().find("*amount* is missing"), std::string::npos);
  auto not_number = parse(r, "Acme lots");
  ASSERT_FALSE(not_number);
  EXPECT_NE(not_number.status().message().find("*amount* must be a number"), std::string::npos);
  EXPECT_FALSE(parse(r, "Acme 1 close_date=31/12/2026"));
  EXPECT_FALSE(parse(r, "Acme 1 close_date=2026-13-01"));
  EXPECT_FALSE(parse(r, "Acme 1 stage=Closed"));
  EXPECT_FALSE(parse(r, "Acme 1 approver=bob"));
  auto extra = parse(r, "Acme 1 renewal");
  ASSERT_FALSE(extra);
  EXPECT_NE(extra.status().message().find("renewal"), std::string::npos);
  EXPECT_FALSE(parse(r, "Acme 1 amount=2"));
}

TEST(ParseArguments, TextArrivesAsTypedNotAsSlackEscapesIt) {
  Recipe r = opportunity();
  auto v = parse(r, "\"Tom &amp; Jerry &lt;b&gt; \xE2\x80\x9Cquoted\xE2\x80\x9D \xE6\x9D\xB1\xE4\xBA\xAC\" 7 approver=<@U0BOB>");
  ASSERT_TRUE(v) << v.status().message();
  EXPECT_EQ(v->at("name"), "Tom & Jerry <b> \xE2\x80\x9Cquoted\xE2\x80\x9D \xE6\x9D\xB1\xE4\xBA\xAC");
  EXPECT_EQ(v->at("approver"), "U0BOB");
  auto curly = parse(r, "\xE2\x80\x9CSmith &amp; Sons\xE2\x80\x9D 7 approver=<@W0ENTERPRISE|ent>");
  ASSERT_TRUE(curly) << curly.status().message();
  EXPECT_EQ(curly->at("name"), "Smith & Sons");
  EXPECT_EQ(curly->at("approver"), "W0ENTERPRISE");
  // A mention given to a text parameter reads as the person saw it.
  EXPECT_EQ(parse(r, "<@U0BOB|bob> 7")->at("name"), "@bob");
}

TEST(ParseArguments, AMentionTypedAsEscapedTextNamesNobody) {
  Recipe r = opportunity();
  // Someone types "<@U0EVE>" by hand: Slack sends it escaped, and it must not pick an approver.
  auto typed = parse(r, "Acme 7 approver=&lt;@U0EVE&gt;");
  ASSERT_FALSE(typed);
  EXPECT_NE(typed.status().message().find("must name a person"), std::string::npos);
  EXPECT_NE(typed.status().message().find("<@U0EVE>"), std::string::npos) << "quotes what was typed";
  EXPECT_FALSE(parse(r, "Acme 7 approver=&lt;@U0EVE|eve&gt;"));
  EXPECT_FALSE(parse(r, "Acme 7 approver=x<@U0BOB>")) << "a mention must be the whole value";
  EXPECT_FALSE(parse(r, "Acme 7 approver=<#C0GENERAL|general>"));
  EXPECT_EQ(parse(r, "Acme 7 approver=U0BOB")->at("approver"), "U0BOB") << "a bare id is still a person";
}

TEST(ParseArguments, LinksGiveTheirLabelToTextAndTheirAddressToUrls) {
  auto r = parse_recipe(R"(command: save link
app: box
parameters:
  - name: title
  - name: link
    type: url
steps:
  - id: save
    http: {method: POST, path: /links}
)", "l.yaml");
  ASSERT_TRUE(r) << r.status().message();
  auto both = parse(*r, "<https://example.com/q?a=1&amp;b=2|Q &amp; A> <https://example.com/q?a=1&amp;b=2|Q &amp; A>");
  ASSERT_TRUE(both) << both.status().message();
  EXPECT_EQ(both->at("title"), "Q & A");
  EXPECT_EQ(both->at("link"), "https://example.com/q?a=1&b=2");
  auto bare = parse(*r, "<mailto:ann@example.com|ann@example.com> <https://example.com>");
  ASSERT_TRUE(bare) << bare.status().message();
  EXPECT_EQ(bare->at("title"), "ann@example.com");
  EXPECT_EQ(bare->at("link"), "https://example.com");
  EXPECT_EQ(parse(*r, "t link=<https://example.com/x>")->at("link"), "https://example.com/x");
  // An '=' inside a link names no parameter.
  EXPECT_EQ(parse(*r, "<https://example.com/?title=x> <https://example.com>")->at("title"), "https://example.com/?title=x");
  EXPECT_FALSE(parse(*r, "t <mailto:ann@example.com|ann@example.com>")) << "a url parameter wants a web address";
  EXPECT_FALSE(parse(*r, "t &lt;https://example.com&gt;"));
  EXPECT_FALSE(parse(*r, "t example"));
}

TEST(Match, LongestCommandPrefixWins) {
  std::vector<Recipe> recipes = {opportunity(), opportunity()};
  recipes[1].command = "create opportunity fast";
  size_t consumed = 0;
  EXPECT_EQ(match(recipes, {"create", "opportunity", "fast", "x"}, consumed), &recipes[1]);
  EXPECT_EQ(consumed, 3u);
  EXPECT_EQ(match(recipes, {"create", "opportunity", "x"}, consumed), &recipes[0]);
  EXPECT_EQ(consumed, 2u);
  EXPECT_EQ(match(recipes, {"create"}, consumed), nullptr);
}

TEST(Render, FillsPathsAndEscapes) {
  nlohmann::json scope = {{"params", {{"name", "Acme & Co"}, {"amount", 5000}}}, {"steps", {{"create", {{"id", "006xx"}}}}}};
  EXPECT_EQ(render("Created {{ params.name }} ({{steps.create.id}}) for {{params.amount}}{{nope.x}}", scope),
            "Created Acme & Co (006xx) for 5000");
  EXPECT_EQ(render("/q/{{params.name}}", scope, [](std::string_view v) { return std::string(v.size(), '*'); }), "/q/*********");
  EXPECT_EQ(render("unclosed {{params.name", scope), "unclosed {{params.name");
  EXPECT_EQ(empty_placeholders("/a/{{steps.create.id}}/{{steps.find.sys_id}}/{{params.name}}", scope),
            std::vector<std::string>{"steps.find.sys_id"});
}

TEST(RenderJson, NumbersStayNumbersAndTextIsEscapedByJson) {
  nlohmann::json scope = {{"params", {{"name", "Quote \" and \\ back"}, {"amount", "5000.5"}, {"code", "0042"}}},
                          {"steps", {{"find", {{"count", 3}, {"open", true}}}}}};
  nlohmann::json body = nlohmann::json::parse(R"({"Name":"{{params.name}}","Amount":"{{params.amount}}","Code":"{{params.code}}",
    "Label":"n={{params.amount}}","List":["{{params.code}}",3,true],"Kept":"{{steps.find.count}}","Open":"{{steps.find.open}}"})");
  nlohmann::json out = nlohmann::json::parse(render_json(body, scope, {"params.amount"}));
  EXPECT_EQ(out["Name"], "Quote \" and \\ back");
  EXPECT_EQ(out["Amount"], 5000.5);
  EXPECT_EQ(out["Code"], "0042") << "a text parameter that looks like a number stays text";
  EXPECT_EQ(out["Label"], "n=5000.5");
  EXPECT_EQ(out["List"], nlohmann::json::parse(R"(["0042",3,true])"));
  EXPECT_EQ(out["Kept"], 3);
  EXPECT_EQ(out["Open"], true);
}

TEST(RenderJson, ANumberReachesTheAppWithEveryDigitTyped) {
  nlohmann::json scope = {{"params", {{"amount", "12345678901234567890.123"}, {"fee", "+007.50"}}}};
  nlohmann::json body = nlohmann::json::parse(R"({"Amount":"{{params.amount}}","Fee":"{{ params.fee }}"})");
  EXPECT_EQ(render_json(body, scope, {"params.amount", "params.fee"}), R"({"Amount":12345678901234567890.123,"Fee":7.50})")
      << "through a double it would be 1.2345678901234567e+19";
}

TEST(Parameters, NumbersDatesAndOptionsAreCheckedAndErrorsNameTheParameterAtFault) {
  auto recipe = parse_recipe(R"(command: create opportunity
app: demo
parameters:
  - {name: name}
  - {name: amount, type: number, min: 0, max: 1000000, decimals: 2}
  - {name: close_date, type: date}
  - {name: stage, type: choice, choices: [Prospecting, Closed Won], default: Prospecting}
steps:
  - id: create
    http: {method: POST, path: /x}
)",
                             "r.yaml");
  ASSERT_TRUE(recipe) << recipe.status().message();
  auto parse = [&](const std::string& text) { return parse_arguments(*recipe, slack::typed_words(text)); };
  auto error_of = [&](const std::string& text) {
    auto r = parse(text);
    return r ? std::string("accepted") : r.status().message();
  };
  auto ok = parse("Acme 12345.67 2028-02-29");
  ASSERT_TRUE(ok) << ok.status().message();
  EXPECT_EQ(ok->at("amount"), "12345.67");
  EXPECT_EQ(error_of("Acme 5000 2026-02-30"), "*close_date* must be a day that exists: February 2026 has 28 days (got “2026-02-30”)");
  EXPECT_EQ(error_of("Acme 1e400 2026-12-31").rfind("*amount* must be a number like 1250", 0), 0u) << error_of("Acme 1e400 2026-12-31");
  EXPECT_EQ(error_of("Acme 1,250 2026-12-31").rfind("*amount* must be a number", 0), 0u);
  EXPECT_EQ(error_of("Acme 1000000.01 2026-12-31"), "*amount* must be at most 1000000 (got “1000000.01”)");
  EXPECT_EQ(error_of("Acme -1 2026-12-31"), "*amount* must be at least 0 (got “-1”)");
  EXPECT_EQ(error_of("Acme 10.125 2026-12-31"), "*amount* takes at most 2 decimal places (got “10.125”)");
  EXPECT_EQ(error_of("Acme 10.100 2026-12-31"), "accepted") << "trailing zeros are not more precision";
  EXPECT_EQ(error_of("Acme 5000 2026-12-31 colour=red"),
            "*colour* is not an option of *create opportunity*; its options are name, amount, close_date, stage");
  EXPECT_EQ(error_of("\"Acme=Best\" 5000 2026-12-31"), "accepted") << "a quoted value may hold =";
  EXPECT_EQ(error_of("\"Acme Corp 5000 2026-12-31"), "a quote opened before “Acme Corp 5000 2026-12-31” is never closed");
}

TEST(Parameters, APersonTypedWithAnAtThatSlackDidNotRecogniseIsNobodyNotAMissingAt) {
  auto recipe = parse_recipe("command: ask\napp: demo\nparameters:\n  - {name: approver, type: user}\nsteps:\n  - id: s\n    http: {method: GET, path: /x}\n",
                             "r.yaml");
  ASSERT_TRUE(recipe) << recipe.status().message();
  auto nobody = parse_arguments(*recipe, slack::typed_words("@nobody"));
  ASSERT_FALSE(nobody);
  EXPECT_EQ(nobody.status().message().rfind("*approver* must be someone in this workspace: “@nobody” is nobody Slack knows", 0), 0u)
      << nobody.status().message();
  auto bare = parse_arguments(*recipe, slack::typed_words("bob"));
  ASSERT_FALSE(bare);
  EXPECT_EQ(bare.status().message(), "*approver* must name a person with @ (got “bob”)");
  auto picked = parse_arguments(*recipe, slack::typed_words("<@U0BOB|bob>"));
  ASSERT_TRUE(picked) << picked.status().message();
  EXPECT_EQ(picked->at("approver"), "U0BOB");
}

TEST(Parameters, ARecipesOwnLimitsAndDefaultsAreCheckedWhenItIsLoaded) {
  auto with = [](const std::string& parameter) {
    auto r = parse_recipe("command: x\napp: demo\nparameters:\n  - " + parameter + "\nsteps:\n  - id: s\n    http: {method: GET, path: /x}\n",
                          "r.yaml");
    return r ? std::string("loaded") : r.status().message();
  };
  EXPECT_EQ(with("{name: n, type: number, min: 0, max: 10, decimals: 2, default: 5}"), "loaded");
  EXPECT_NE(with("{name: n, type: number, min: 1e3}").find("parameters[0].min: must be a plain decimal number"), std::string::npos);
  EXPECT_NE(with("{name: n, type: number, min: 10, max: 1}").find("greater than max"), std::string::npos);
  EXPECT_NE(with("{name: n, type: number, max: 10, default: 11}").find("must be at most 10"), std::string::npos);
  EXPECT_NE(with("{name: d, type: date, default: 2026-02-30}").find("February 2026 has 28 days"), std::string::npos);
  EXPECT_NE(with("{name: s, min: 1}").find("only a number parameter has min"), std::string::npos);
}

}  // namespace
}  // namespace deputy::recipes
