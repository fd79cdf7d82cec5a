// Reading Slack's JSON payloads, where a missing or mistyped field reads as empty.
#pragma once

#include <nlohmann/json.hpp>

#include <string>

namespace deputy::slack {

// The string at object[key]; empty when object is not an object or the field is not a string.
inline std::string json_string(const nlohmann::json& object, const char* key) {
  if (!object.is_object()) return {};
  auto it = object.find(key);
  return it != object.end() && it->is_string() ? it->get<std::string>() : std::string();
}

}  // namespace deputy::slack
