#include "slack/blocks.h"

#include <nlohmann/json.hpp>

#include "common/encoding.h"

namespace deputy::slack {
namespace {

// Small writers for the JSON text of a block. Each value goes after a key or into an array;
// the comma before it is decided by what was written last.
void separate(std::string& out) {
  if (!out.empty() && out.back() != '{' && out.back() != '[' && out.back() != ':') out += ',';
}

void key(std::string& out, std::string_view name) {
  separate(out);
  out += '"';
  out += name;  // names are literals here, never user text
  out += "\":";
}

void string_field(std::string& out, std::string_view name, std::string_view value) {
  key(out, name);
  append_json_string(out, value);
}

// An identifier or URL cut to Slack's limit, at a character boundary and without an
// ellipsis: a value that comes back in an action must come back as a prefix of itself.
std::string_view prefix_utf8(std::string_view text, size_t max_bytes) {
  if (text.size() <= max_bytes) return text;
  size_t cut = max_bytes;
  while (cut > 0 && (static_cast<unsigned char>(text[cut]) & 0xC0) == 0x80) --cut;
  return text.substr(0, cut);
}

// Text cut to Slack's limit for that field, at a character boundary.
void limited_string(std::string& out, const std::string& text, size_t max) {
  if (text.size() <= max) return append_json_string(out, text);
  append_json_string(out, truncate_utf8(text, max));
}

void plain(std::string& out, std::string_view name, const std::string& text, size_t max) {
  key(out, name);
  out += R"({"type":"plain_text","text":)";
  limited_string(out, text, max);
  out += R"(,"emoji":true})";
}

void mrkdwn_value(std::string& out, const std::string& text, size_t max) {
  separate(out);
  out += R"({"type":"mrkdwn","text":)";
  limited_string(out, text, max);
  out += '}';
}

void mrkdwn(std::string& out, std::string_view name, const std::string& text, size_t max) {
  key(out, name);
  mrkdwn_value(out, text, max);
}

void button(std::string& out, const Button& b) {
  separate(out);
  out += R"({"type":"button")";
  plain(out, "text", b.text, kMaxButtonText);
  string_field(out, "action_id", prefix_utf8(b.action_id, kMaxActionId));
  if (!b.value.empty()) string_field(out, "value", prefix_utf8(b.value, kMaxButtonValue));
  if (!b.url.empty()) string_field(out, "url", prefix_utf8(b.url, kMaxUrl));
  if (!b.style.empty()) string_field(out, "style", b.style);
  if (b.confirm) {
    key(out, "confirm");
    out += '{';
    plain(out, "title", b.confirm->title, 100);
    mrkdwn(out, "text", b.confirm->text, 300);
    plain(out, "confirm", b.confirm->confirm, 30);
    plain(out, "deny", b.confirm->deny, 30);
    if (b.style == "danger") string_field(out, "style", "danger");
    out += '}';
  }
  out += '}';
}

}  // namespace

std::string truncate_utf8(const std::string& text, size_t max_bytes) {
  if (text.size() <= max_bytes) return text;
  static const std::string kEllipsis = "\xE2\x80\xA6";
  size_t cut = max_bytes >= kEllipsis.size() ? max_bytes - kEllipsis.size() : 0;
  // Back up over continuation bytes (10xxxxxx) so no character is split.
  while (cut > 0 && (static_cast<unsigned char>(text[cut]) & 0xC0) == 0x80) --cut;
  return text.substr(0, cut) + kEllipsis;
}

std::string escape_mrkdwn(std::string_view text) {
  std::string out;
  out.reserve(text.size());
  for (char c : text) {
    switch (c) {
      case '&': out += "&amp;"; break;
      case '<': out += "&lt;"; break;
      case '>': out += "&gt;"; break;
      default: out += c;
    }
  }
  return out;
}

bool Blocks::begin_block() {
  // Past Slack's limit the message would be refused whole; callers page before this.
  if (full()) return false;
  if (count_++ > 0) items_ += ',';
  return true;
}

void Blocks::append_json(std::string& out) const {
  out += '[';
  out += items_;
  out += ']';
}

nlohmann::json Blocks::json() const {
  std::string text;
  append_json(text);
  return nlohmann::json::parse(text);
}

Blocks Blocks::from_json(const nlohmann::json& array) {
  Blocks blocks;
  if (!array.is_array()) return blocks;
  for (const auto& block : array) {
    if (blocks.begin_block()) blocks.items_ += block.dump();
  }
  return blocks;
}

Blocks& Blocks::header(const std::string& plain_text) {
  if (!begin_block()) return *this;
  items_ += R"({"type":"header")";
  plain(items_, "text", plain_text, kMaxHeaderText);
  items_ += '}';
  return *this;
}

Blocks& Blocks::section(const std::string& text) {
  if (!begin_block()) return *this;
  items_ += R"({"type":"section")";
  mrkdwn(items_, "text", text, kMaxSectionText);
  items_ += '}';
  return *this;
}

Blocks& Blocks::section(const std::string& text, const Button& accessory) {
  if (!begin_block()) return *this;
  items_ += R"({"type":"section")";
  mrkdwn(items_, "text", text, kMaxSectionText);
  key(items_, "accessory");
  button(items_, accessory);
  items_ += '}';
  return *this;
}

Blocks& Blocks::fields(const std::vector<std::string>& mrkdwn_fields) {
  if (!begin_block()) return *this;
  items_ += R"({"type":"section","fields":[)";
  for (size_t i = 0; i < mrkdwn_fields.size() && i < 10; ++i) mrkdwn_value(items_, mrkdwn_fields[i], 2000);
  items_ += "]}";
  return *this;
}

Blocks& Blocks::context(const std::vector<std::string>& elements) {
  if (!begin_block()) return *this;
  items_ += R"({"type":"context","elements":[)";
  for (size_t i = 0; i < elements.size() && i < kMaxContextElements; ++i) mrkdwn_value(items_, elements[i], 2000);
  items_ += "]}";
  return *this;
}

Blocks& Blocks::actions(const std::vector<Button>& buttons, const std::string& block_id) {
  if (!begin_block()) return *this;
  items_ += R"({"type":"actions","elements":[)";
  for (size_t i = 0; i < buttons.size() && i < kMaxActionElements; ++i) button(items_, buttons[i]);
  items_ += ']';
  if (!block_id.empty()) string_field(items_, "block_id", prefix_utf8(block_id, 255));
  items_ += '}';
  return *this;
}

Blocks& Blocks::divider() {
  if (begin_block()) items_ += R"({"type":"divider"})";
  return *this;
}

}  // namespace deputy::slack
