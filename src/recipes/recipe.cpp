#include "recipes/recipe.h"

#include "recipes/values.h"

#include <yaml-cpp/yaml.h>

#include <nlohmann/json.hpp>

#include <algorithm>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <set>
#include <sstream>

#include "common/encoding.h"

namespace deputy::recipes {
namespace {

struct Context {
  const std::string& file;
  Status error(const YAML::Node& node, const std::string& field, const std::string& what) const {
    std::ostringstream out;
    out << file;
    if (node.IsDefined() && node.Mark().line >= 0) out << ":" << node.Mark().line + 1;
    out << ": " << field << ": " << what;
    return InvalidArgument(out.str());
  }
};

Status check_keys(const Context& c, const YAML::Node& map, const std::string& where, std::initializer_list<const char*> allowed) {
  for (const auto& entry : map) {
    auto key = entry.first.as<std::string>();
    if (std::none_of(allowed.begin(), allowed.end(), [&](const char* a) { return key == a; })) {
      std::string known;
      for (const char* a : allowed) known += std::string(known.empty() ? "" : ", ") + a;
      return c.error(entry.first, where.empty() ? key : where + "." + key, "unknown field (known: " + known + ")");
    }
  }
  return Status::Ok();
}

Status read_string(const Context& c, const YAML::Node& parent, const char* key, const std::string& path, std::string& out,
                   bool required) {
  YAML::Node node = parent[key];
  if (!node.IsDefined() || node.IsNull()) {
    if (required) return c.error(parent, path, "is required");
    return Status::Ok();
  }
  if (!node.IsScalar()) return c.error(node, path, "must be text");
  out = node.as<std::string>();
  return Status::Ok();
}

Status read_bool(const Context& c, const YAML::Node& parent, const char* key, const std::string& path, bool& out) {
  YAML::Node node = parent[key];
  if (!node.IsDefined() || node.IsNull()) return Status::Ok();
  try {
    out = node.as<bool>();
  } catch (const YAML::Exception&) {
    return c.error(node, path, "must be true or false");
  }
  return Status::Ok();
}

// YAML mapping -> JSON text, keeping scalars as strings unless they are plainly numbers or booleans.
std::string yaml_to_json(const YAML::Node& node);

std::string json_string(const std::string& s) {
  std::string out;
  append_json_string(out, s);
  return out;
}

std::string yaml_to_json(const YAML::Node& node) {
  if (node.IsMap()) {
    std::string out = "{";
    bool first = true;
    for (const auto& entry : node) {
      if (!first) out += ",";
      first = false;
      out += json_string(entry.first.as<std::string>()) + ":" + yaml_to_json(entry.second);
    }
    return out + "}";
  }
  if (node.IsSequence()) {
    std::string out = "[";
    for (size_t i = 0; i < node.size(); ++i) out += (i ? "," : "") + yaml_to_json(node[i]);
    return out + "]";
  }
  if (node.IsNull()) return "null";
  std::string text = node.as<std::string>();
  // Quoted YAML scalars have tag "!"; plain ones "?". Only plain ones may be numbers or booleans.
  if (node.Tag() != "!") {
    if (text == "true" || text == "false") return text;
    char* end = nullptr;
    std::strtod(text.c_str(), &end);
    if (!text.empty() && end && *end == '\0' && text.find_first_of("xX") == std::string::npos) return text;
  }
  return json_string(text);
}

Result<Parameter> parse_parameter(const Context& c, const YAML::Node& node, const std::string& path) {
  if (!node.IsMap()) return c.error(node, path, "must be a mapping with at least a name");
  if (Status s = check_keys(c, node, path, {"name", "type", "required", "positional", "description", "choices", "default", "min", "max",
                                            "decimals"});
      !s.ok())
    return s;
  Parameter p;
  if (Status s = read_string(c, node, "name", path + ".name", p.name, true); !s.ok()) return s;
  std::string type = "string";
  if (Status s = read_string(c, node, "type", path + ".type", type, false); !s.ok()) return s;
  if (type == "string") p.type = ParameterType::kString;
  else if (type == "number") p.type = ParameterType::kNumber;
  else if (type == "date") p.type = ParameterType::kDate;
  else if (type == "choice") p.type = ParameterType::kChoice;
  else if (type == "user") p.type = ParameterType::kUser;
  else if (type == "url") p.type = ParameterType::kUrl;
  else return c.error(node["type"], path + ".type", "must be string, number, date, choice, user or url (got '" + type + "')");
  if (Status s = read_bool(c, node, "required", path + ".required", p.required); !s.ok()) return s;
  if (Status s = read_bool(c, node, "positional", path + ".positional", p.positional); !s.ok()) return s;
  if (Status s = read_string(c, node, "description", path + ".description", p.description, false); !s.ok()) return s;
  if (YAML::Node def = node["default"]; def.IsDefined() && !def.IsNull()) {
    if (!def.IsScalar()) return c.error(def, path + ".default", "must be a single value");
    p.default_value = def.as<std::string>();
    p.required = false;
  }
  if (p.type == ParameterType::kChoice) {
    YAML::Node choices = node["choices"];
    if (!choices.IsSequence() || choices.size() == 0) return c.error(node, path + ".choices", "a choice parameter needs a list of choices");
    for (const auto& choice : choices) p.choices.push_back(choice.as<std::string>());
    if (p.default_value && std::find(p.choices.begin(), p.choices.end(), *p.default_value) == p.choices.end())
      return c.error(node["default"], path + ".default", "is not one of the choices");
  } else if (node["choices"].IsDefined()) {
    return c.error(node["choices"], path + ".choices", "only a choice parameter has choices");
  }
  for (const char* key : {"min", "max", "decimals"}) {
    YAML::Node limit = node[key];
    if (!limit.IsDefined()) continue;
    if (p.type != ParameterType::kNumber) return c.error(limit, path + "." + key, "only a number parameter has " + std::string(key));
    const std::string text = limit.IsScalar() ? limit.as<std::string>() : "";
    if (std::string_view(key) == "decimals") {
      auto d = parse_decimal(text);
      if (!d || d->negative || !d->fraction.empty() || d->whole.size() > 2)
        return c.error(limit, path + ".decimals", "must be a whole number of decimal places, 0 to 99");
      p.decimals = d->whole.empty() ? 0u : static_cast<unsigned>(std::stoul(d->whole));
    } else {
      if (!parse_decimal(text))
        return c.error(limit, path + "." + key, "must be a plain decimal number such as 0 or 1000000.00 (got '" + text + "')");
      (std::string_view(key) == "min" ? p.min : p.max) = text;
    }
  }
  if (p.min && p.max && compare(*parse_decimal(*p.min), *parse_decimal(*p.max)) > 0)
    return c.error(node["min"], path + ".min", "is greater than max");
  if (p.default_value) {
    // The default goes through the same checks as a typed value: a recipe cannot send what a
    // person could not type.
    if (auto problem = value_problem(p, *p.default_value)) return c.error(node["default"], path + ".default", *problem);
  }
  return p;
}

Result<Step> parse_step(const Context& c, const YAML::Node& node, const std::string& path) {
  if (!node.IsMap()) return c.error(node, path, "must be a mapping with an id and http or approval");
  if (Status s = check_keys(c, node, path, {"id", "http", "approval"}); !s.ok()) return s;
  Step step;
  if (Status s = read_string(c, node, "id", path + ".id", step.id, true); !s.ok()) return s;
  YAML::Node http = node["http"];
  YAML::Node approval = node["approval"];
  if (http.IsDefined() == approval.IsDefined()) return c.error(node, path, "needs exactly one of http or approval");
  if (http.IsDefined()) {
    if (!http.IsMap()) return c.error(http, path + ".http", "must be a mapping");
    if (Status s = check_keys(c, http, path + ".http", {"method", "path", "query", "body", "keep", "idempotent"}); !s.ok()) return s;
    HttpStep h;
    if (Status s = read_string(c, http, "method", path + ".http.method", h.method, false); !s.ok()) return s;
    std::transform(h.method.begin(), h.method.end(), h.method.begin(), ::toupper);
    static const std::set<std::string> kMethods = {"GET", "POST", "PUT", "PATCH", "DELETE"};
    if (!kMethods.count(h.method)) return c.error(http["method"], path + ".http.method", "must be GET, POST, PUT, PATCH or DELETE");
    if (Status s = read_string(c, http, "path", path + ".http.path", h.path, true); !s.ok()) return s;
    if (h.path.empty() || h.path[0] != '/') return c.error(http["path"], path + ".http.path", "must start with /");
    if (YAML::Node q = http["query"]; q.IsDefined()) {
      if (!q.IsMap()) return c.error(q, path + ".http.query", "must be a mapping of names to values");
      for (const auto& e : q) h.query[e.first.as<std::string>()] = e.second.as<std::string>();
    }
    if (YAML::Node b = http["body"]; b.IsDefined() && !b.IsNull()) {
      if (!b.IsMap() && !b.IsSequence()) return c.error(b, path + ".http.body", "must be a mapping (sent as JSON)");
      h.body_template = yaml_to_json(b);
      h.body = std::make_shared<const nlohmann::json>(nlohmann::json::parse(h.body_template));
    }
    if (YAML::Node k = http["keep"]; k.IsDefined()) {
      if (!k.IsMap()) return c.error(k, path + ".http.keep", "must map names to JSON pointers like /id");
      for (const auto& e : k) {
        std::string pointer = e.second.as<std::string>();
        if (pointer.empty() || pointer[0] != '/') return c.error(e.second, path + ".http.keep." + e.first.as<std::string>(), "must be a JSON pointer starting with /");
        h.keep[e.first.as<std::string>()] = pointer;
      }
    }
    h.idempotent = h.method == "GET" || h.method == "PUT" || h.method == "DELETE";
    if (Status s = read_bool(c, http, "idempotent", path + ".http.idempotent", h.idempotent); !s.ok()) return s;
    step.http = std::move(h);
  } else {
    if (!approval.IsMap()) return c.error(approval, path + ".approval", "must be a mapping");
    if (Status s = check_keys(c, approval, path + ".approval", {"approver", "text"}); !s.ok()) return s;
    ApprovalStep a;
    if (Status s = read_string(c, approval, "approver", path + ".approval.approver", a.approver, true); !s.ok()) return s;
    if (Status s = read_string(c, approval, "text", path + ".approval.text", a.text, true); !s.ok()) return s;
    step.approval = std::move(a);
  }
  return step;
}

}  // namespace

std::optional<std::string> value_problem(const Parameter& p, const std::string& typed) {
  if (p.type == ParameterType::kDate) {
    if (auto problem = date_problem(typed)) return "must be " + *problem;
    return std::nullopt;
  }
  if (p.type != ParameterType::kNumber) return std::nullopt;
  auto number = parse_decimal(typed);
  if (!number) return std::string("must be a number like 1250 or 1250.50: digits, with a - or a decimal point if need be, "
                                  "no exponent and no thousands separators");
  const std::string_view significant = std::string_view(number->fraction).substr(0, number->fraction.find_last_not_of('0') + 1);
  if (p.decimals && significant.size() > *p.decimals)
    return *p.decimals == 0 ? std::string("must be a whole number")
                            : "takes at most " + std::to_string(*p.decimals) + (*p.decimals == 1 ? " decimal place" : " decimal places");
  if (p.min && compare(*number, *parse_decimal(*p.min)) < 0) return "must be at least " + *p.min;
  if (p.max && compare(*number, *parse_decimal(*p.max)) > 0) return "must be at most " + *p.max;
  return std::nullopt;
}

const char* type_name(ParameterType type) {
  switch (type) {
    case ParameterType::kString: return "string";
    case ParameterType::kNumber: return "number";
    case ParameterType::kDate: return "date";
    case ParameterType::kChoice: return "choice";
    case ParameterType::kUser: return "user";
    case ParameterType::kUrl: return "url";
  }
  return "string";
}

std::string Recipe::usage() const {
  std::string out = command;
  for (const Parameter& p : parameters) {
    std::string shape;
    switch (p.type) {
      case ParameterType::kDate: shape = "YYYY-MM-DD"; break;
      case ParameterType::kNumber: shape = "number"; break;
      case ParameterType::kUser: shape = "@person"; break;
      case ParameterType::kUrl: shape = "https://…"; break;
      case ParameterType::kChoice: {
        for (size_t i = 0; i < p.choices.size(); ++i) shape += (i ? "|" : "") + p.choices[i];
        break;
      }
      case ParameterType::kString: shape = p.name; break;
    }
    if (p.required && p.positional) out += " <" + p.name + ">";
    else if (p.required) out += " " + p.name + "=<" + shape + ">";
    else out += " [" + p.name + "=" + shape + "]";
  }
  return out;
}

Result<Recipe> parse_recipe(const std::string& yaml_text, const std::string& file) {
  Context c{file};
  YAML::Node root;
  try {
    root = YAML::Load(yaml_text);
  } catch (const YAML::ParserException& e) {
    return InvalidArgument(file + ":" + std::to_string(e.mark.line + 1) + ": not valid YAML: " + e.msg);
  }
  if (!root.IsMap()) return c.error(root, "(top level)", "a recipe is a mapping with command, app and steps");
  if (Status s = check_keys(c, root, "", {"command", "description", "app", "verify_user_access_at_runtime", "parameters", "steps", "reply"});
      !s.ok())
    return s;
  Recipe r;
  r.file = file;
  if (Status s = read_string(c, root, "command", "command", r.command, true); !s.ok()) return s;
  auto words = split_words(to_lower(r.command));
  if (words.empty()) return c.error(root["command"], "command", "must have at least one word");
  r.command.clear();
  for (const auto& w : words) r.command += (r.command.empty() ? "" : " ") + w;
  if (Status s = read_string(c, root, "description", "description", r.description, false); !s.ok()) return s;
  if (Status s = read_string(c, root, "app", "app", r.app, true); !s.ok()) return s;
  if (Status s = read_bool(c, root, "verify_user_access_at_runtime", "verify_user_access_at_runtime", r.verify_user_access_at_runtime); !s.ok())
    return s;
  std::set<std::string> names;
  if (YAML::Node params = root["parameters"]; params.IsDefined() && !params.IsNull()) {
    if (!params.IsSequence()) return c.error(params, "parameters", "must be a list");
    bool optional_seen = false;
    for (size_t i = 0; i < params.size(); ++i) {
      auto p = parse_parameter(c, params[i], "parameters[" + std::to_string(i) + "]");
      if (!p) return p.status();
      if (!names.insert(p->name).second) return c.error(params[i], "parameters[" + std::to_string(i) + "].name", "is used twice");
      if (p->positional && !p->required) optional_seen = true;
      else if (p->positional && optional_seen)
        return c.error(params[i], "parameters[" + std::to_string(i) + "]", "a required positional parameter cannot follow an optional one");
      r.parameters.push_back(std::move(*p));
    }
  }
  YAML::Node steps = root["steps"];
  if (!steps.IsSequence() || steps.size() == 0) return c.error(steps.IsDefined() ? steps : root, "steps", "needs at least one step");
  std::set<std::string> step_ids;
  for (size_t i = 0; i < steps.size(); ++i) {
    auto step = parse_step(c, steps[i], "steps[" + std::to_string(i) + "]");
    if (!step) return step.status();
    if (!step_ids.insert(step->id).second) return c.error(steps[i], "steps[" + std::to_string(i) + "].id", "is used twice");
    r.steps.push_back(std::move(*step));
  }
  if (YAML::Node reply = root["reply"]; reply.IsDefined() && !reply.IsNull()) {
    if (!reply.IsMap()) return c.error(reply, "reply", "must have success and/or failure texts");
    if (Status s = check_keys(c, reply, "reply", {"success", "failure"}); !s.ok()) return s;
    if (Status s = read_string(c, reply, "success", "reply.success", r.reply_success, false); !s.ok()) return s;
    if (Status s = read_string(c, reply, "failure", "reply.failure", r.reply_failure, false); !s.ok()) return s;
  }
  return r;
}

Result<std::vector<Recipe>> load_folder(const std::string& dir) {
  namespace fs = std::filesystem;
  std::vector<Recipe> recipes;
  std::error_code ec;
  if (!fs::exists(dir, ec)) return recipes;
  std::vector<fs::path> files;
  for (auto it = fs::recursive_directory_iterator(dir, ec); !ec && it != fs::recursive_directory_iterator(); it.increment(ec)) {
    if (!it->is_regular_file()) continue;
    auto ext = it->path().extension().string();
    if (ext == ".yaml" || ext == ".yml") files.push_back(it->path());
  }
  if (ec) return Unavailable("cannot read recipes folder " + dir + ": " + ec.message());
  std::sort(files.begin(), files.end());
  std::map<std::string, std::string> commands;
  for (const auto& path : files) {
    std::ifstream in(path);
    std::stringstream text;
    text << in.rdbuf();
    auto recipe = parse_recipe(text.str(), path.string());
    if (!recipe) return recipe.status();
    auto [it, inserted] = commands.emplace(recipe->command, path.string());
    if (!inserted) return InvalidArgument(path.string() + ": command: '" + recipe->command + "' is already defined in " + it->second);
    recipes.push_back(std::move(*recipe));
  }
  return recipes;
}

}  // namespace deputy::recipes
