// Block Kit builder: messages are assembled from typed parts, never by concatenating
// JSON, and Slack's documented size limits are applied here once.
#pragma once

#include <nlohmann/json_fwd.hpp>

#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace deputy::slack {

// Limits from Slack's Block Kit reference.
inline constexpr size_t kMaxBlocksPerMessage = 50;
inline constexpr size_t kMaxSectionText = 3000;
inline constexpr size_t kMaxButtonText = 75;
inline constexpr size_t kMaxActionId = 255;
inline constexpr size_t kMaxButtonValue = 2000;
inline constexpr size_t kMaxUrl = 3000;
inline constexpr size_t kMaxContextElements = 10;
inline constexpr size_t kMaxActionElements = 25;
inline constexpr size_t kMaxHeaderText = 150;
inline constexpr size_t kMaxMessageText = 4000;

struct Confirm {
  std::string title;    // plain text, max 100
  std::string text;     // mrkdwn, max 300
  std::string confirm;  // plain text, max 30
  std::string deny;     // plain text, max 30
};

struct Button {
  std::string text;
  std::string action_id;
  std::string value;
  std::string url;    // a link button opens this; Slack still sends a block_actions
  std::string style;  // "", "primary" or "danger"
  std::optional<Confirm> confirm;
};

class Blocks {
 public:
  Blocks& header(const std::string& plain_text);
  Blocks& section(const std::string& mrkdwn);
  Blocks& section(const std::string& mrkdwn, const Button& accessory);
  Blocks& fields(const std::vector<std::string>& mrkdwn_fields);
  Blocks& context(const std::vector<std::string>& mrkdwn_elements);
  Blocks& actions(const std::vector<Button>& buttons, const std::string& block_id = "");
  Blocks& divider();

  size_t size() const { return count_; }
  bool full() const { return count_ >= kMaxBlocksPerMessage; }
  // Appends the blocks as a JSON array.
  void append_json(std::string& out) const;
  // The same array as a document, to inspect (tests).
  nlohmann::json json() const;
  // Blocks written out by append_json and read back (a message kept to be sent again).
  static Blocks from_json(const nlohmann::json& array);

 private:
  // Starts the next block, or says there is no room for it.
  bool begin_block();

  // The blocks written as JSON, comma-separated, without the array's brackets: a message is
  // built once and sent once, and building a document tree first cost ten times the sending.
  std::string items_;
  size_t count_ = 0;
};

struct Message {
  std::string text;  // notification and fallback text
  Blocks blocks;
};

// Cuts at a UTF-8 character boundary and marks the cut with an ellipsis.
std::string truncate_utf8(const std::string& text, size_t max_bytes);
// Escapes &, < and > as Slack's mrkdwn requires for user-supplied text.
std::string escape_mrkdwn(std::string_view text);

}  // namespace deputy::slack
