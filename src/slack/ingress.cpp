#include "slack/ingress.h"
#include "common/delivery_kind.h"

#include <nlohmann/json.hpp>

#include "common/encoding.h"
#include "slack/json_field.h"

namespace deputy::slack {
namespace {

Inbound malformed(std::string reason) {
  Inbound in;
  in.kind = Inbound::Kind::kMalformed;
  in.reason = std::move(reason);
  return in;
}

Inbound ignored(std::string reason) {
  Inbound in;
  in.kind = Inbound::Kind::kIgnored;
  in.reason = std::move(reason);
  return in;
}

Inbound classify_event(std::string_view body) {
  auto json = nlohmann::json::parse(body, nullptr, false);
  if (json.is_discarded() || !json.is_object()) return malformed("body is not a JSON object");
  std::string type = json_string(json, "type");
  if (type == "url_verification") {
    Inbound in;
    in.kind = Inbound::Kind::kChallenge;
    in.challenge = json_string(json, "challenge");
    if (in.challenge.empty()) return malformed("url_verification without a challenge");
    return in;
  }
  if (type != "event_callback") return ignored("envelope type '" + type + "'");
  const auto& event = json["event"];
  if (!event.is_object()) return malformed("event_callback without an event");
  std::string event_type = json_string(event, "type");
  bool wanted = false;
  if (event_type == "app_mention") {
    wanted = true;
  } else if (event_type == "message" && json_string(event, "channel_type") == "im") {
    // Edits, joins and the bot's own posts arrive as messages too; only a person's new text is a command.
    wanted = !event.contains("subtype") && !event.contains("bot_id") && !json_string(event, "user").empty();
  }
  if (!wanted) return ignored("event '" + event_type + "'");
  Inbound in;
  in.kind = Inbound::Kind::kWork;
  in.team_id = json_string(json, "team_id");
  in.delivery_kind = kind_name(DeliveryKind::kEvent);
  std::string event_id = json_string(json, "event_id");
  if (event_id.empty()) return malformed("event_callback without event_id");
  in.dedupe_key = "event:" + in.team_id + ":" + event_id;
  in.payload = std::string(body);
  return in;
}

Inbound classify_form(std::string_view body) {
  auto form = FormView::parse(body);
  if (!form) return malformed("form body has a broken %-escape");
  if (auto payload = form->value("payload")) {
    auto json = nlohmann::json::parse(*payload, nullptr, false);
    if (json.is_discarded() || !json.is_object()) return malformed("payload field is not a JSON object");
    std::string type = json_string(json, "type");
    if (type != "block_actions") return ignored("interaction type '" + type + "'");
    const auto& actions = json["actions"];
    if (!actions.is_array() || actions.empty() || !actions[0].is_object()) return malformed("block_actions without actions");
    Inbound in;
    in.kind = Inbound::Kind::kWork;
    in.delivery_kind = kind_name(DeliveryKind::kBlockActions);
    in.team_id = json.contains("team") ? json_string(json["team"], "id") : std::string();
    std::string user = json.contains("user") ? json_string(json["user"], "id") : std::string();
    std::string action_id = json_string(actions[0], "action_id");
    std::string message_ts = json.contains("container") ? json_string(json["container"], "message_ts") : std::string();
    if (action_id.rfind("view.", 0) == 0 || message_ts.empty()) {
      // Views (lists) may be asked for again; only an exact redelivery is a duplicate.
      in.dedupe_key = "action:" + in.team_id + ":" + json_string(json, "trigger_id");
    } else {
      // A double click is the same user, message, button and value: it runs once.
      in.dedupe_key = "action:" + in.team_id + ":" + user + ":" + message_ts + ":" + action_id + ":" + json_string(actions[0], "value");
    }
    in.payload = std::move(*payload);
    return in;
  }
  if (form->value("command")) {
    Inbound in;
    in.kind = Inbound::Kind::kWork;
    in.delivery_kind = kind_name(DeliveryKind::kSlashCommand);
    in.team_id = form->value("team_id").value_or("");
    if (form->value("user_id").value_or("").empty()) return malformed("slash command without user_id");
    // Slack sends UTF-8; text that is not would only fail later, where nobody could be told.
    if (!is_valid_utf8(form->value("text").value_or(""))) return malformed("slash command text is not UTF-8");
    std::string trigger = form->value("trigger_id").value_or("");
    if (!trigger.empty()) in.dedupe_key = "slash:" + in.team_id + ":" + trigger;
    // Stored as Slack sent it (the form is already known to parse); the worker reads it.
    in.payload = std::string(body);
    return in;
  }
  return malformed("form body is neither a slash command nor an interaction payload");
}

std::string media_type(std::string_view content_type) { return to_lower(trim(content_type.substr(0, content_type.find(';')))); }

}  // namespace

bool is_ssl_check(std::string_view content_type, std::string_view body) {
  // Signed requests come this way too: the search keeps their cost to one scan of the body.
  if (body.find("ssl_check=") == std::string_view::npos) return false;
  if (media_type(content_type) != "application/x-www-form-urlencoded") return false;
  auto form = FormView::parse(body);
  return form && form->value("ssl_check") == "1";
}

Inbound classify(std::string_view content_type, std::string_view body) {
  std::string type = media_type(content_type);
  if (type == "application/json") return classify_event(body);
  if (type == "application/x-www-form-urlencoded") return classify_form(body);
  return malformed("unsupported content type '" + type + "'");
}

}  // namespace deputy::slack
