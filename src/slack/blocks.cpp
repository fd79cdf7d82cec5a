#include "slack/blocks.h"

namespace deputy::slack {
namespace {

nlohmann::json plain(const std::string& text, size_t max) {
  return {{"type", "plain_text"}, {"text", truncate_utf8(text, max)}, {"emoji", true}};
}

nlohmann::json mrkdwn(const std::string& text, size_t max) {
  return {{"type", "mrkdwn"}, {"text", truncate_utf8(text, max)}};
}

nlohmann::json button_json(const Button& b) {
  nlohmann::json out = {{"type", "button"}, {"text", plain(b.text, kMaxButtonText)}, {"action_id", b.action_id.substr(0, kMaxActionId)}};
  if (!b.value.empty()) out["value"] = b.value.substr(0, kMaxButtonValue);
  if (!b.url.empty()) out["url"] = b.url.substr(0, kMaxUrl);
  if (!b.style.empty()) out["style"] = b.style;
  if (b.confirm) {
    out["confirm"] = {{"title", plain(b.confirm->title, 100)},
                      {"text", mrkdwn(b.confirm->text, 300)},
                      {"confirm", plain(b.confirm->confirm, 30)},
                      {"deny", plain(b.confirm->deny, 30)}};
    if (b.style == "danger") out["confirm"]["style"] = "danger";
  }
  return out;
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

std::string escape_mrkdwn(const std::string& text) {
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

Blocks& Blocks::add(nlohmann::json block) {
  // Past Slack's limit the message would be refused whole; callers page before this.
  if (!full()) blocks_.push_back(std::move(block));
  return *this;
}

Blocks& Blocks::header(const std::string& plain_text) {
  return add({{"type", "header"}, {"text", plain(plain_text, kMaxHeaderText)}});
}

Blocks& Blocks::section(const std::string& text) { return add({{"type", "section"}, {"text", mrkdwn(text, kMaxSectionText)}}); }

Blocks& Blocks::section(const std::string& text, const Button& accessory) {
  return add({{"type", "section"}, {"text", mrkdwn(text, kMaxSectionText)}, {"accessory", button_json(accessory)}});
}

Blocks& Blocks::fields(const std::vector<std::string>& mrkdwn_fields) {
  nlohmann::json list = nlohmann::json::array();
  for (size_t i = 0; i < mrkdwn_fields.size() && i < 10; ++i) list.push_back(mrkdwn(mrkdwn_fields[i], 2000));
  return add({{"type", "section"}, {"fields", std::move(list)}});
}

Blocks& Blocks::context(const std::vector<std::string>& elements) {
  nlohmann::json list = nlohmann::json::array();
  for (size_t i = 0; i < elements.size() && i < kMaxContextElements; ++i) list.push_back(mrkdwn(elements[i], 2000));
  return add({{"type", "context"}, {"elements", std::move(list)}});
}

Blocks& Blocks::actions(const std::vector<Button>& buttons, const std::string& block_id) {
  nlohmann::json list = nlohmann::json::array();
  for (size_t i = 0; i < buttons.size() && i < kMaxActionElements; ++i) list.push_back(button_json(buttons[i]));
  nlohmann::json block = {{"type", "actions"}, {"elements", std::move(list)}};
  if (!block_id.empty()) block["block_id"] = block_id.substr(0, 255);
  return add(std::move(block));
}

Blocks& Blocks::divider() { return add({{"type", "divider"}}); }

}  // namespace deputy::slack
