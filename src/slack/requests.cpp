#include "slack/requests.h"

#include <nlohmann/json.hpp>

#include "common/delivery_kind.h"
#include "common/encoding.h"
#include "slack/json_field.h"
#include "slack/web_api.h"

namespace deputy::slack {
namespace {

// Removes "<@BOT>" (and "<@BOT|name>") mentions of the bot from the text (raw Slack text, in
// which '<' only ever opens a form). When the envelope does not say who the bot is, the first
// mention of an app_mention is the one that called it; a DM keeps its mentions then.
std::string strip_mentions(std::string text, const std::string& bot_user_id, bool first_is_the_bot) {
  size_t from = 0;
  bool removed_any = false;
  while ((from = text.find("<@", from)) != std::string::npos) {
    size_t end = text.find('>', from);
    if (end == std::string::npos) break;
    std::string id = text.substr(from + 2, end - from - 2);
    id = id.substr(0, id.find('|'));
    if ((!bot_user_id.empty() && id == bot_user_id) || (bot_user_id.empty() && first_is_the_bot && !removed_any)) {
      text.erase(from, end - from + 1);
      removed_any = true;
    } else {
      from = end + 1;
    }
  }
  return std::string(trim(text));
}

// `field` reads one named field of the command, whichever way it was stored.
template <typename Field>
Result<Request> slash_command(Field field) {
  CommandRequest request;
  request.origin = Origin::kSlashCommand;
  request.text = std::string(trim(field("text")));
  request.slash = field("command");
  request.where.team_id = field("team_id");
  request.where.user_id = field("user_id");
  request.where.channel_id = field("channel_id");
  request.where.response_url = field("response_url");
  request.where.via = ReplyVia::kResponseUrl;
  if (request.where.response_url.empty()) request.where.via = ReplyVia::kEphemeral;
  return Request(request);
}

Result<Request> event(const nlohmann::json& json) {
  const auto& event = json["event"];
  CommandRequest request;
  request.where.team_id = json_string(json, "team_id");
  request.where.user_id = json_string(event, "user");
  request.where.channel_id = json_string(event, "channel");
  std::string bot_user_id;
  if (json.contains("authorizations") && json["authorizations"].is_array() && !json["authorizations"].empty()) {
    bot_user_id = json_string(json["authorizations"][0], "user_id");
  }
  if (json_string(event, "type") == "app_mention") {
    request.origin = Origin::kMention;
    request.where.via = ReplyVia::kEphemeral;
    request.where.thread_ts = json_string(event, "thread_ts");
  } else {
    // A DM is answered inline, as a person would answer it; in a thread only when written in one.
    request.origin = Origin::kDirectMessage;
    request.where.via = ReplyVia::kDirectMessage;
    request.where.thread_ts = json_string(event, "thread_ts");
  }
  request.text = strip_mentions(json_string(event, "text"), bot_user_id, request.origin == Origin::kMention);
  if (request.where.user_id.empty() || request.where.channel_id.empty()) return InvalidArgument("event without user or channel");
  return Request(request);
}

Result<Request> block_actions(const nlohmann::json& json) {
  ActionRequest request;
  const auto& action = json["actions"][0];
  request.action_id = json_string(action, "action_id");
  request.value = json_string(action, "value");
  request.block_id = json_string(action, "block_id");
  request.where.team_id = json.contains("team") ? json_string(json["team"], "id") : "";
  request.where.user_id = json.contains("user") ? json_string(json["user"], "id") : "";
  request.where.response_url = json_string(json, "response_url");
  const auto& container = json.contains("container") ? json["container"] : nlohmann::json::object();
  request.message_ts = json_string(container, "message_ts");
  request.in_ephemeral_message = container.is_object() && container.value("is_ephemeral", false);
  request.where.channel_id = json.contains("channel") ? json_string(json["channel"], "id") : "";
  if (request.where.channel_id.empty()) request.where.channel_id = json_string(container, "channel_id");
  bool direct = !request.where.channel_id.empty() && request.where.channel_id[0] == 'D';
  if (direct && !request.in_ephemeral_message) {
    // Answered beside the message with the button: in its thread when it sits in one.
    request.where.via = ReplyVia::kDirectMessage;
    request.where.thread_ts = json.contains("message") ? json_string(json["message"], "thread_ts") : "";
  } else {
    request.where.via = request.where.response_url.empty() ? ReplyVia::kEphemeral : ReplyVia::kResponseUrl;
  }
  if (request.where.user_id.empty()) return InvalidArgument("block_actions without a user");
  return Request(request);
}

}  // namespace

Result<Request> interpret(const std::string& stored_kind, const std::string& payload) {
  const auto kind = delivery_kind(stored_kind);
  if (kind == DeliveryKind::kSlashCommand && (payload.empty() || payload.front() != '{')) {
    // Slash commands are stored as Slack's form body; earlier versions stored JSON (below).
    auto fields = parse_form(payload);
    if (!fields) return InvalidArgument("stored slash command is not a form");
    return slash_command([&](const char* name) { return form_value(*fields, name).value_or(""); });
  }
  auto json = nlohmann::json::parse(payload, nullptr, false);
  if (json.is_discarded() || !json.is_object()) return InvalidArgument("stored payload is not JSON");
  if (kind == DeliveryKind::kSlashCommand) return slash_command([&](const char* name) { return json_string(json, name); });
  if (kind == DeliveryKind::kEvent) return event(json);
  if (kind == DeliveryKind::kBlockActions) return block_actions(json);
  return InvalidArgument("not a delivery from Slack: kind '" + stored_kind.substr(0, 40) + "'");
}

std::string to_json(const Conversation& where) {
  return nlohmann::json{{"team_id", where.team_id},     {"user_id", where.user_id},           {"channel_id", where.channel_id},
                        {"thread_ts", where.thread_ts}, {"response_url", where.response_url}, {"via", static_cast<int>(where.via)}}
      .dump();
}

Result<Conversation> conversation_from_json(const std::string& text) {
  auto j = nlohmann::json::parse(text, nullptr, false);
  if (!j.is_object()) return InvalidArgument("not a stored conversation");
  Conversation where;
  where.team_id = j.value("team_id", "");
  where.user_id = j.value("user_id", "");
  where.channel_id = j.value("channel_id", "");
  where.thread_ts = j.value("thread_ts", "");
  where.response_url = j.value("response_url", "");
  int via = j.value("via", 1);
  if (via < 0 || via > 2) return InvalidArgument("not a stored conversation");
  where.via = static_cast<ReplyVia>(via);
  return where;
}

void start_delivery(WebApi& slack, const Conversation& where, const Message& message, std::function<void(Status)> delivered) {
  auto to_status = [delivered = std::move(delivered)](Result<nlohmann::json> reply) { delivered(reply ? Status::Ok() : reply.status()); };
  nlohmann::json fields = {{"channel", where.channel_id}};
  if (!where.thread_ts.empty()) fields["thread_ts"] = where.thread_ts;
  switch (where.via) {
    case ReplyVia::kResponseUrl: return slack.start_respond(where.response_url, message, false, true, std::move(to_status));
    case ReplyVia::kEphemeral:
      fields["user"] = where.user_id;
      return slack.start_call_json("chat.postEphemeral", message_json(message, std::move(fields)), std::move(to_status));
    case ReplyVia::kDirectMessage:
      return slack.start_call_json("chat.postMessage", message_json(message, std::move(fields)), std::move(to_status));
  }
  to_status(Internal("unknown reply route"));
}

}  // namespace deputy::slack
