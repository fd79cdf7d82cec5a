// What a queued Slack delivery asks for, and where its answer must go.
#pragma once

#include <functional>
#include <string>
#include <variant>

#include "common/result.h"

namespace deputy::slack {

enum class ReplyVia {
  kResponseUrl,  // slash commands and clicks in channels: ephemeral through response_url
  kEphemeral,    // mentions in channels: chat.postEphemeral to the asker only
  kDirectMessage,  // direct messages: chat.postMessage, in the thread when there is one
};

struct Conversation {
  std::string team_id;
  std::string user_id;
  std::string channel_id;
  std::string thread_ts;
  std::string response_url;
  ReplyVia via = ReplyVia::kEphemeral;
};

enum class Origin { kSlashCommand, kMention, kDirectMessage };

struct CommandRequest {
  Conversation where;
  Origin origin = Origin::kDirectMessage;
  std::string text;  // the words after /deputy, @Deputy, or the whole DM
  std::string slash;  // the slash command as the workspace named it ("/deputy"); slash commands only
};

struct ActionRequest {
  Conversation where;
  std::string action_id;
  std::string value;
  std::string block_id;
  std::string message_ts;  // the message holding the button, for chat.update
  bool in_ephemeral_message = false;
};

using Request = std::variant<CommandRequest, ActionRequest>;

// kind and payload as the ingress stored them.
Result<Request> interpret(const std::string& kind, const std::string& payload);

// A conversation kept with a job, to answer in the same place later.
std::string to_json(const Conversation& where);
Result<Conversation> conversation_from_json(const std::string& text);

class WebApi;
struct Message;
// Answers where the conversation asks (response_url, ephemeral, DM thread), without holding
// the calling thread: one try, `delivered` runs on the HTTP client's thread.
void start_delivery(WebApi& slack, const Conversation& where, const Message& message, std::function<void(Status)> delivered);

}  // namespace deputy::slack
