// Recipes: chat commands that do work in an app, loaded from YAML files.
#pragma once

#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json_fwd.hpp>

#include "common/result.h"

namespace deputy::recipes {

enum class ParameterType { kString, kNumber, kDate, kChoice, kUser, kUrl };

struct Parameter {
  std::string name;
  ParameterType type = ParameterType::kString;
  bool required = true;
  bool positional = true;  // may be given in order, without name=
  std::string description;
  std::vector<std::string> choices;  // kChoice
  std::optional<std::string> default_value;
  // kNumber: the least and greatest values allowed (exact decimals), and the most digits
  // after the point.
  std::optional<std::string> min;
  std::optional<std::string> max;
  std::optional<unsigned> decimals;
};

struct HttpStep {
  std::string method = "GET";
  std::string path;                           // appended to the app's API base URL; templated
  std::map<std::string, std::string> query;   // templated values
  std::string body_template;                  // JSON text with {{…}} placeholders; empty: no body
  std::shared_ptr<const nlohmann::json> body;  // body_template read once, at load
  std::map<std::string, std::string> keep;    // name -> JSON pointer into the response
  bool idempotent = false;                    // safe to repeat when the outcome is unknown
};

struct ApprovalStep {
  std::string approver;  // a Slack user id, or a template naming a parameter
  std::string text;      // what the approver is asked, templated
};

struct Step {
  std::string id;
  std::optional<HttpStep> http;
  std::optional<ApprovalStep> approval;
};

struct Recipe {
  std::string file;
  std::string command;  // the trigger words, lower case, e.g. "create opportunity"
  std::string description;
  std::string app;
  bool verify_user_access_at_runtime = false;
  std::vector<Parameter> parameters;
  std::vector<Step> steps;
  std::string reply_success;
  std::string reply_failure;

  // e.g. "create opportunity <name> <amount> [close_date=YYYY-MM-DD]"
  std::string usage() const;
};

const char* type_name(ParameterType type);
// What is wrong with `typed` as a value of `p` (a number or a date; the other types are read
// from the words themselves), said after the parameter's name: "must be at most 100".
std::optional<std::string> value_problem(const Parameter& p, const std::string& typed);

// Errors name the file, the line and the field.
Result<Recipe> parse_recipe(const std::string& yaml_text, const std::string& file);
// Every *.yaml / *.yml under `dir`, recursively, sorted by path. A missing folder is no recipes.
Result<std::vector<Recipe>> load_folder(const std::string& dir);

}  // namespace deputy::recipes
