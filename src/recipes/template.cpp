#include "recipes/template.h"

#include <nlohmann/json.hpp>

#include <algorithm>
#include <cctype>
#include <cstdlib>
#include <set>

#include "common/encoding.h"
#include "recipes/values.h"

namespace deputy::recipes {
namespace {

bool is_option_name(std::string_view name) {
  if (name.empty() || !std::isalpha(static_cast<unsigned char>(name.front()))) return false;
  for (char c : name)
    if (!std::isalnum(static_cast<unsigned char>(c)) && c != '_' && c != '-') return false;
  return true;
}

bool is_web_address(std::string_view v) {
  return (v.rfind("https://", 0) == 0 || v.rfind("http://", 0) == 0) && v.find_first_of(" \t\r\n") == std::string_view::npos;
}

// The value of `p` from text[from, end) of `word`.
Result<std::string> check_value(const Parameter& p, const slack::Word& word, size_t from) {
  const std::string raw = word.text.substr(from);
  switch (p.type) {
    case ParameterType::kString: return raw;
    case ParameterType::kNumber:
    case ParameterType::kDate:
      if (auto problem = value_problem(p, raw)) return InvalidArgument("*" + p.name + "* " + *problem + " (got “" + raw + "”)");
      return raw;
    case ParameterType::kChoice: {
      for (const auto& choice : p.choices)
        if (to_lower(choice) == to_lower(raw)) return choice;
      std::string list;
      for (const auto& c : p.choices) list += (list.empty() ? "" : ", ") + c;
      return InvalidArgument("*" + p.name + "* must be one of " + list + " (got “" + raw + "”)");
    }
    case ParameterType::kUser: {
      std::string id = word.user_id(from);
      if (!id.empty()) return id;
      // Typed with an @ but not picked from Slack's list: Slack sends it as plain text.
      if (raw.rfind('@', 0) == 0)
        return InvalidArgument("*" + p.name + "* must be someone in this workspace: “" + raw +
                               "” is nobody Slack knows (pick the person from the list Slack shows as you type @)");
      return InvalidArgument("*" + p.name + "* must name a person with @ (got “" + raw + "”)");
    }
    case ParameterType::kUrl: {
      // Slack sends a typed address as a link form; the address is the value, not its label.
      const slack::Reference* link = word.sole_reference(from);
      if (link && link->kind == slack::Reference::Kind::kLink && is_web_address(link->target)) return link->target;
      if (word.references.empty() && is_web_address(raw)) return raw;
      return InvalidArgument("*" + p.name + "* must be a web address like https://example.com (got “" + raw + "”)");
    }
  }
  return raw;
}

const nlohmann::json* lookup(const nlohmann::json& scope, const std::string& path) {
  const nlohmann::json* at = &scope;
  size_t start = 0;
  while (start <= path.size()) {
    size_t dot = path.find('.', start);
    std::string key = path.substr(start, dot == std::string::npos ? std::string::npos : dot - start);
    if (!at->is_object()) return nullptr;
    auto it = at->find(key);
    if (it == at->end()) return nullptr;
    at = &*it;
    if (dot == std::string::npos) break;
    start = dot + 1;
  }
  return at;
}

std::string as_text(const nlohmann::json& value) {
  if (value.is_string()) return value.get<std::string>();
  if (value.is_null()) return "";
  return value.dump();
}

std::string trim(const std::string& s) {
  size_t b = s.find_first_not_of(' ');
  size_t e = s.find_last_not_of(' ');
  return b == std::string::npos ? "" : s.substr(b, e - b + 1);
}

}  // namespace

Result<std::map<std::string, std::string>> parse_arguments(const Recipe& recipe, const std::vector<slack::Word>& words) {
  std::map<std::string, std::string> values;
  std::vector<const slack::Word*> positional;
  for (const slack::Word& word : words) {
    if (word.unclosed) return InvalidArgument("a quote opened before “" + word.text + "” is never closed");
  }
  for (const slack::Word& word : words) {
    auto eq = word.text.find('=');
    // name= must be typed text: an '=' inside a link's label or address names nothing.
    bool typed = eq != std::string::npos && (word.references.empty() || word.references.front().begin > eq);
    if (typed && eq > 0) {
      std::string name = to_lower(word.text.substr(0, eq));
      auto p = std::find_if(recipe.parameters.begin(), recipe.parameters.end(), [&](const Parameter& x) { return x.name == name; });
      if (p != recipe.parameters.end()) {
        if (values.count(name)) return InvalidArgument("*" + name + "* is given twice");
        auto checked = check_value(*p, word, eq + 1);
        if (!checked) return checked.status();
        values[name] = *checked;
        continue;
      }
      // name=value with a name no parameter has: a mistyped option, not a value (a value
      // with = in it is typed in quotes).
      if (!word.quoted && is_option_name(name)) {
        std::string options;
        for (const Parameter& q : recipe.parameters) options += (options.empty() ? "" : ", ") + q.name;
        return InvalidArgument("*" + name + "* is not an option of *" + recipe.command + "*; its options are " + options);
      }
    }
    positional.push_back(&word);
  }
  size_t next = 0;
  for (const Parameter& p : recipe.parameters) {
    if (!p.positional || values.count(p.name)) continue;
    if (next >= positional.size()) break;
    auto checked = check_value(p, *positional[next++], 0);
    if (!checked) return checked.status();
    values[p.name] = *checked;
  }
  if (next < positional.size()) {
    // Extra words most often belong to the last text parameter ("create opportunity Acme renewal 5000").
    return InvalidArgument("I did not expect “" + positional[next]->text + "” (put text with spaces in \"quotes\")");
  }
  for (const Parameter& p : recipe.parameters) {
    if (values.count(p.name)) continue;
    if (p.default_value) values[p.name] = *p.default_value;
    else if (p.required) return InvalidArgument("*" + p.name + "* is missing");
  }
  return values;
}

const Recipe* match(const std::vector<Recipe>& recipes, const std::vector<std::string>& lowercase_tokens, size_t& consumed) {
  const Recipe* best = nullptr;
  size_t best_words = 0;
  for (const Recipe& r : recipes) {
    auto words = split_words(r.command);
    if (words.size() > lowercase_tokens.size() || words.size() <= best_words) continue;
    if (std::equal(words.begin(), words.end(), lowercase_tokens.begin())) {
      best = &r;
      best_words = words.size();
    }
  }
  consumed = best_words;
  return best;
}

std::string render(const std::string& text, const nlohmann::json& scope, std::string (*escape)(std::string_view)) {
  std::string out;
  size_t at = 0;
  while (at < text.size()) {
    size_t open = text.find("{{", at);
    if (open == std::string::npos) break;
    size_t close = text.find("}}", open + 2);
    if (close == std::string::npos) break;
    out.append(text, at, open - at);
    const nlohmann::json* value = lookup(scope, trim(text.substr(open + 2, close - open - 2)));
    std::string inserted = value ? as_text(*value) : "";
    out += escape ? escape(inserted) : inserted;
    at = close + 2;
  }
  out.append(text, at, std::string::npos);
  return out;
}

std::vector<std::string> empty_placeholders(const std::string& text, const nlohmann::json& scope) {
  std::vector<std::string> empty;
  for (size_t open = text.find("{{"); open != std::string::npos; open = text.find("{{", open + 2)) {
    size_t close = text.find("}}", open + 2);
    if (close == std::string::npos) break;
    std::string path = trim(text.substr(open + 2, close - open - 2));
    const nlohmann::json* value = lookup(scope, path);
    if (!value || as_text(*value).empty()) empty.push_back(path);
  }
  return empty;
}

namespace {

void write_json(const nlohmann::json& body, const nlohmann::json& scope, const std::set<std::string>& numbers, std::string& out) {
  if (body.is_object()) {
    out += '{';
    bool first = true;
    for (const auto& [key, value] : body.items()) {
      if (!first) out += ',';
      first = false;
      out += nlohmann::json(key).dump();
      out += ':';
      write_json(value, scope, numbers, out);
    }
    out += '}';
    return;
  }
  if (body.is_array()) {
    out += '[';
    for (size_t i = 0; i < body.size(); ++i) {
      if (i) out += ',';
      write_json(body[i], scope, numbers, out);
    }
    out += ']';
    return;
  }
  if (!body.is_string()) {
    out += body.dump();
    return;
  }
  const std::string& text = body.get_ref<const std::string&>();
  if (text.size() > 4 && text.rfind("{{", 0) == 0 && text.find("}}") == text.size() - 2 && text.find("{{", 2) == std::string::npos) {
    const std::string path = trim(text.substr(2, text.size() - 4));
    if (const nlohmann::json* value = lookup(scope, path)) {
      if (value->is_string() && numbers.count(path)) {
        // Checked when it was typed; a value that is not a number (a job stored before the
        // check existed) goes as the text it is.
        if (auto exact = parse_decimal(value->get_ref<const std::string&>())) {
          out += json_number(*exact);
          return;
        }
      }
      if (value->is_number() || value->is_boolean()) {
        out += value->dump();
        return;
      }
    }
  }
  out += nlohmann::json(render(text, scope)).dump();
}

}  // namespace

std::string render_json(const nlohmann::json& body, const nlohmann::json& scope, const std::set<std::string>& numbers) {
  std::string out;
  write_json(body, scope, numbers, out);
  return out;
}

std::set<std::string> number_paths(const Recipe& recipe) {
  std::set<std::string> paths;
  for (const Parameter& p : recipe.parameters)
    if (p.type == ParameterType::kNumber) paths.insert("params." + p.name);
  return paths;
}

bool mentions_profile(const Recipe& recipe) {
  auto reads = [](const std::string& text) {
    return text.find("user.email") != std::string::npos || text.find("user.name") != std::string::npos ||
           text.find("user.real_name") != std::string::npos;
  };
  if (reads(recipe.reply_success) || reads(recipe.reply_failure)) return true;
  for (const Step& s : recipe.steps) {
    if (s.http && (reads(s.http->path) || reads(s.http->body_template))) return true;
    if (s.http)
      for (const auto& [k, v] : s.http->query)
        if (reads(v)) return true;
    if (s.approval && reads(s.approval->text)) return true;
  }
  return false;
}

}  // namespace deputy::recipes
