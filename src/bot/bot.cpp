#include "bot/bot.h"

#include <spdlog/spdlog.h>

#include "common/encoding.h"

namespace deputy::bot {

Bot::Bot(slack::WebApi& slack, const CommandCatalog& catalog) : slack_(slack), catalog_(catalog) {}

std::vector<std::string> Bot::known_words() const {
  std::vector<std::string> words;
  for (const auto& c : builtin_commands()) words.push_back(c.words);
  for (const auto& c : catalog_.commands()) words.push_back(c.words);
  return words;
}

Status Bot::handle(const store::ClaimedDelivery& delivery) {
  auto request = slack::interpret(delivery.delivery.kind, delivery.delivery.payload);
  if (!request) {
    // Stored deliveries were checked at the door; one that still cannot be read is dropped loudly.
    spdlog::error("delivery {} cannot be interpreted: {}", delivery.id, request.status().message());
    return request.status();
  }
  if (auto* command = std::get_if<slack::CommandRequest>(&*request)) return handle_command(*command);
  return handle_action(std::get<slack::ActionRequest>(*request));
}

Status Bot::handle_command(const slack::CommandRequest& request) {
  std::string text = to_lower(request.text);
  auto words = split_words(text);
  if (words.empty() || words[0] == "help") return reply(request.where, help_message());
  if (words[0] == "connections" || (words.size() >= 2 && words[0] == "personal" && words[1] == "accounts")) {
    return reply(request.where, connections_message(request.where.user_id));
  }
  return reply(request.where, unknown_command_message(request.text));
}

Status Bot::handle_action(const slack::ActionRequest& request) {
  if (request.action_id == actions::kShowConnections) return reply(request.where, connections_message(request.where.user_id));
  spdlog::warn("unknown button action '{}' from {}", request.action_id, request.where.user_id);
  slack::Message message;
  message.text = "That button no longer does anything. Type `help` to see what I can do.";
  message.blocks.section(message.text);
  return reply(request.where, message);
}

Status Bot::reply(const slack::Conversation& where, const slack::Message& message) {
  switch (where.via) {
    case slack::ReplyVia::kResponseUrl: return slack_.respond(where.response_url, message);
    case slack::ReplyVia::kEphemeral: return slack_.post_ephemeral(where.channel_id, where.user_id, message, where.thread_ts);
    case slack::ReplyVia::kDirectThread: {
      auto posted = slack_.post_message(where.channel_id, message, where.thread_ts);
      return posted ? Status::Ok() : posted.status();
    }
  }
  return Internal("unknown reply route");
}

slack::Message Bot::help_message() const {
  slack::Message message;
  message.text = "Here is what I can do for you.";
  message.blocks.header("Deputy");
  auto recipes = catalog_.commands();
  if (recipes.empty()) {
    message.blocks.section("No recipes are loaded yet, so I only know my built-in commands. An admin adds recipes to the recipes folder.");
  } else {
    message.blocks.section("*Commands*");
    for (const auto& c : recipes) {
      if (message.blocks.size() >= slack::kMaxBlocksPerMessage - 5) {
        message.blocks.context({"…and more; ask an admin for the full list."});
        break;
      }
      std::string line = "*" + slack::escape_mrkdwn(c.words) + "*";
      if (!c.description.empty()) line += " — " + slack::escape_mrkdwn(c.description);
      line += "\n`" + slack::escape_mrkdwn(c.usage.empty() ? c.words : c.usage) + "`";
      if (!c.app.empty()) line += c.personal ? "\n_Acts in " + c.app + " as you_" : "\n_Acts in " + c.app + " with a shared account_";
      message.blocks.section(line);
    }
  }
  message.blocks.divider();
  message.blocks.section("*Built in*\n`help` — this list\n`connections` — the accounts I can act as for you");
  message.blocks.actions({slack::Button{"Personal accounts", actions::kShowConnections, "list", "", "primary", std::nullopt}},
                         "deputy.help");
  return message;
}

slack::Message Bot::connections_message(const std::string&) const {
  slack::Message message;
  message.text = "Your personal accounts";
  message.blocks.header("Personal accounts");
  message.blocks.section(
      "You have no personal accounts connected. When a command needs to act as you, I will send you a *Connect* button "
      "— only you will see it.");
  return message;
}

slack::Message Bot::unknown_command_message(const std::string& typed) const {
  std::string shown = slack::escape_mrkdwn(std::string(trim(typed)).substr(0, 200));
  std::string suggestion = suggest(typed, known_words());
  slack::Message message;
  message.text = "I don't know the command \"" + std::string(trim(typed)).substr(0, 200) + "\".";
  std::string body = "I don't know the command *" + shown + "*.";
  if (!suggestion.empty()) body += " Did you mean *" + suggestion + "*?";
  body += "\nType `help` to see what I can do.";
  message.blocks.section(body);
  return message;
}

}  // namespace deputy::bot
