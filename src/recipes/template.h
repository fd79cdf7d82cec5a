// What a typed command means for a recipe (its parameters), and filling recipe templates
// ({{params.name}}, {{user.email}}, {{steps.create.id}}) from what a job knows.
#pragma once

#include <map>
#include <set>
#include <string>
#include <vector>

#include <nlohmann/json_fwd.hpp>

#include "common/result.h"
#include "recipes/recipe.h"
#include "slack/text.h"

namespace deputy::recipes {

// The words after the command (slack::typed_words), as parameter values: text as typed, a
// user as the id of a mention, a url as a link's address. A bad or missing value is an
// InvalidArgument whose message a person can act on (the usage is added by the caller).
Result<std::map<std::string, std::string>> parse_arguments(const Recipe& recipe, const std::vector<slack::Word>& words);

// The recipe whose command words start `tokens` (longest match); nullptr when none.
const Recipe* match(const std::vector<Recipe>& recipes, const std::vector<std::string>& lowercase_tokens, size_t& consumed);

// Replaces each {{a.b.c}} with the value at that path in `scope` (numbers and booleans as
// text, missing values as empty). `escape` is applied to each inserted value.
std::string render(const std::string& text, const nlohmann::json& scope, std::string (*escape)(std::string_view) = nullptr);

// The placeholders in `text` that have no value (or an empty one) in `scope`.
std::vector<std::string> empty_placeholders(const std::string& text, const nlohmann::json& scope);

// A JSON body template, filled and written as JSON text. Strings are rendered. A string that
// is one placeholder becomes a JSON number when it names a number parameter (`numbers` holds
// their paths, such as "params.amount"; their values are the decimal text the person typed,
// written with every digit, never through a double), and stays the number or boolean it names
// otherwise (a field an earlier step kept).
std::string render_json(const nlohmann::json& body, const nlohmann::json& scope, const std::set<std::string>& numbers = {});
// The paths of `recipe`'s number parameters in a job's scope, for render_json.
std::set<std::string> number_paths(const Recipe& recipe);

// Whether `text` reads a field of the asker's Slack profile beyond their id.
bool mentions_profile(const Recipe& recipe);

}  // namespace deputy::recipes
