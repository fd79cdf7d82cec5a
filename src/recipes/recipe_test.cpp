#include "recipes/recipe.h"

#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include <filesystem>
#include <fstream>

#include "testing/temp_dir.h"

namespace deputy::recipes {
namespace {

constexpr const char* kOpportunity = R"(command: Create  Opportunity
description: Create a Salesforce opportunity as you
app: salesforce
verify_user_access_at_runtime: true
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
steps:
  - id: create
    http:
      method: post
      path: /sobjects/Opportunity
      body:
        Name: "{{params.name}}"
        Amount: "{{params.amount}}"
        Probability: 10
        Private: false
      keep:
        id: /id
reply:
  success: "Created {{params.name}}"
)";

TEST(Recipe, ParsesAWholeRecipe) {
  auto r = parse_recipe(kOpportunity, "opportunity.yaml");
  ASSERT_TRUE(r) << r.status().message();
  EXPECT_EQ(r->command, "create opportunity");
  EXPECT_TRUE(r->verify_user_access_at_runtime);
  ASSERT_EQ(r->parameters.size(), 4u);
  EXPECT_EQ(r->parameters[1].type, ParameterType::kNumber);
  EXPECT_FALSE(r->parameters[3].required);
  ASSERT_TRUE(r->steps[0].http);
  EXPECT_EQ(r->steps[0].http->method, "POST");
  EXPECT_FALSE(r->steps[0].http->idempotent);
  EXPECT_EQ(r->steps[0].http->body_template,
            R"({"Name":"{{params.name}}","Amount":"{{params.amount}}","Probability":10,"Private":false})");
  EXPECT_EQ(r->steps[0].http->keep.at("id"), "/id");
  EXPECT_EQ(r->usage(), "create opportunity <name> <amount> [close_date=YYYY-MM-DD] [stage=Prospecting|Qualification]");
}

TEST(Recipe, BodyTextIsEscapedAsJson) {
  std::string yaml = kOpportunity;
  const std::string anchor = "        Private: false\n";
  ASSERT_NE(yaml.find(anchor), std::string::npos);
  yaml.insert(yaml.find(anchor) + anchor.size(), R"(        Note: "say \"hi\"\n\tcaf\u00e9 \\ end\u0001")" "\n");
  auto r = parse_recipe(yaml, "opportunity.yaml");
  ASSERT_TRUE(r) << r.status().message();
  auto body = nlohmann::json::parse(r->steps[0].http->body_template);
  EXPECT_EQ(body["Note"], "say \"hi\"\n\tcaf\xC3\xA9 \\ end\x01");
  EXPECT_EQ(body["Name"], "{{params.name}}");
  ASSERT_TRUE(r->steps[0].http->body) << "read once, at load";
  EXPECT_EQ(*r->steps[0].http->body, body);
}

TEST(Recipe, ErrorsNameFileLineAndField) {
  std::string bad_type = kOpportunity;
  bad_type.replace(bad_type.find("type: number"), 12, "type: money ");
  auto r = parse_recipe(bad_type, "opportunity.yaml");
  ASSERT_FALSE(r);
  EXPECT_NE(r.status().message().find("opportunity.yaml:8: parameters[1].type"), std::string::npos) << r.status().message();

  auto no_steps = parse_recipe("command: x\napp: box\n", "x.yaml");
  ASSERT_FALSE(no_steps);
  EXPECT_NE(no_steps.status().message().find("steps"), std::string::npos);

  auto unknown = parse_recipe("command: x\napp: box\nstepz: []\n", "x.yaml");
  ASSERT_FALSE(unknown);
  EXPECT_NE(unknown.status().message().find("x.yaml:3: stepz: unknown field"), std::string::npos) << unknown.status().message();

  auto both = parse_recipe("command: x\napp: box\nsteps:\n  - id: a\n", "x.yaml");
  ASSERT_FALSE(both);
  EXPECT_NE(both.status().message().find("steps[0]"), std::string::npos);

  auto path = parse_recipe("command: x\napp: box\nsteps:\n  - id: a\n    http: {path: nope}\n", "x.yaml");
  ASSERT_FALSE(path);
  EXPECT_NE(path.status().message().find("steps[0].http.path: must start with /"), std::string::npos);
}

TEST(Recipe, LoadsAFolderAndRefusesDuplicateCommands) {
  testing::TempDir dir;
  std::filesystem::create_directories(dir.path() / "examples");
  std::ofstream(dir.file("examples/a.yaml")) << kOpportunity;
  std::ofstream(dir.file("b.yml")) << "command: find file\napp: box\nsteps:\n  - id: s\n    http: {path: /search}\n";
  std::ofstream(dir.file("notes.txt")) << "ignored";
  auto all = load_folder(dir.path().string());
  ASSERT_TRUE(all) << all.status().message();
  EXPECT_EQ(all->size(), 2u);
  std::ofstream(dir.file("c.yaml")) << "command: find   FILE\napp: box\nsteps:\n  - id: s\n    http: {path: /search}\n";
  auto dup = load_folder(dir.path().string());
  ASSERT_FALSE(dup);
  EXPECT_NE(dup.status().message().find("already defined"), std::string::npos);
  EXPECT_TRUE(load_folder(dir.file("missing"))->empty());
}

TEST(Recipe, TheShippedExamplesLoad) {
  auto examples = std::filesystem::path(__FILE__).parent_path().parent_path().parent_path() / "recipes" / "examples";
  auto loaded = load_folder(examples.string());
  ASSERT_TRUE(loaded) << loaded.status().message();
  std::vector<std::string> commands;
  for (const auto& r : *loaded) {
    commands.push_back(r.command);
    EXPECT_TRUE(r.verify_user_access_at_runtime) << r.command;
  }
  EXPECT_EQ(commands, (std::vector<std::string>{"find file", "create opportunity", "approve request", "create incident"}));
}

}  // namespace
}  // namespace deputy::recipes
