// First look at a verified Slack request on the ack path: what kind it is, whether it
// carries work, and the key that makes Slack's retries and double clicks run once.
#pragma once

#include <string>
#include <string_view>

namespace deputy::slack {

struct Inbound {
  enum class Kind {
    kChallenge,  // url_verification: answer at once, enqueue nothing
    kWork,       // enqueue durably, then ack
    kIgnored,    // valid but nothing to do (bot's own messages, other event types)
    kMalformed,  // signed, but not a payload we can read: 400
  };
  Kind kind = Kind::kMalformed;
  std::string challenge;
  std::string team_id;
  std::string delivery_kind;  // slash_command, event, block_actions
  std::string payload;        // JSON
  std::string dedupe_key;     // empty: nothing to deduplicate on
  std::string reason;         // why ignored or malformed, for logs and the 400 body
};

Inbound classify(std::string_view content_type, std::string_view body);

// Slack's certificate probe for slash-command URLs (a form with ssl_check=1), which Slack
// sends unsigned: it is answered 200 with an empty body before the signature check, and
// nothing of it is stored or acted on, as Slack's Bolt frameworks do.
bool is_ssl_check(std::string_view content_type, std::string_view body);

}  // namespace deputy::slack
