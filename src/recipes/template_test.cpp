#include "recipes/template.h"

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

TEST(Tokenize, KeepsQuotedTextTogether) {
  EXPECT_EQ(tokenize(R"(create opportunity "Acme renewal" 5000  stage=Qualification)"),
            (std::vector<std::string>{"create", "opportunity", "Acme renewal", "5000", "stage=Qualification"}));
  EXPECT_EQ(tokenize("name=\xE2\x80\x9C" "Big deal\xE2\x80\x9D x"), (std::vector<std::string>{"name=Big deal", "x"}));
  EXPECT_EQ(tokenize(R"(a "" b)"), (std::vector<std::string>{"a", "", "b"}));
  EXPECT_TRUE(tokenize("   ").empty());
}

TEST(ParseArguments, PositionalNamedDefaultsAndTypes) {
  Recipe r = opportunity();
  auto v = parse_arguments(r, {"Acme", "5000.50", "close_date=2026-12-31", "approver=<@U0BOB|bob>"});
  ASSERT_TRUE(v) << v.status().message();
  EXPECT_EQ(v->at("name"), "Acme");
  EXPECT_EQ(v->at("amount"), "5000.50");
  EXPECT_EQ(v->at("close_date"), "2026-12-31");
  EXPECT_EQ(v->at("stage"), "Prospecting");
  EXPECT_EQ(v->at("approver"), "U0BOB");

  auto named_first = parse_arguments(r, {"amount=7", "Acme", "stage=qualification"});
  ASSERT_TRUE(named_first) << named_first.status().message();
  EXPECT_EQ(named_first->at("name"), "Acme");
  EXPECT_EQ(named_first->at("stage"), "Qualification");
}

TEST(ParseArguments, BadOrMissingValuesSayWhich) {
  Recipe r = opportunity();
  auto missing = parse_arguments(r, {"Acme"});
  ASSERT_FALSE(missing);
  EXPECT_NE(missing.status().message().find("*amount* is missing"), std::string::npos);
  auto not_number = parse_arguments(r, {"Acme", "lots"});
  ASSERT_FALSE(not_number);
  EXPECT_NE(not_number.status().message().find("*amount* must be a number"), std::string::npos);
  EXPECT_FALSE(parse_arguments(r, {"Acme", "1", "close_date=31/12/2026"}));
  EXPECT_FALSE(parse_arguments(r, {"Acme", "1", "close_date=2026-13-01"}));
  EXPECT_FALSE(parse_arguments(r, {"Acme", "1", "stage=Closed"}));
  EXPECT_FALSE(parse_arguments(r, {"Acme", "1", "approver=bob"}));
  auto extra = parse_arguments(r, {"Acme", "1", "renewal"});
  ASSERT_FALSE(extra);
  EXPECT_NE(extra.status().message().find("renewal"), std::string::npos);
  EXPECT_FALSE(parse_arguments(r, {"Acme", "1", "amount=2"}));
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
  nlohmann::json scope = {{"params", {{"name", "Quote \" and \\ back"}, {"amount", 5000.5}, {"code", "0042"}}}};
  nlohmann::json body = nlohmann::json::parse(R"({"Name":"{{params.name}}","Amount":"{{params.amount}}","Code":"{{params.code}}",
    "Label":"n={{params.amount}}","List":["{{params.code}}",3,true]})");
  nlohmann::json out = render_json(body, scope);
  EXPECT_EQ(out["Name"], "Quote \" and \\ back");
  EXPECT_EQ(out["Amount"], 5000.5);
  EXPECT_EQ(out["Code"], "0042");
  EXPECT_EQ(out["Label"], "n=5000.5");
  EXPECT_EQ(out["List"], nlohmann::json::parse(R"(["0042",3,true])"));
}

}  // namespace
}  // namespace deputy::recipes
