// Handles one queued Slack delivery: routes commands and button clicks, answers the
// asker in the right place (ephemeral in channels, in-thread in DMs).
#pragma once

#include "bot/catalog.h"
#include "slack/requests.h"
#include "slack/web_api.h"
#include "store/inbox.h"

namespace deputy::bot {

namespace actions {
inline constexpr const char* kShowConnections = "view.connections";
}

class Bot {
 public:
  Bot(slack::WebApi& slack, const CommandCatalog& catalog);

  Status handle(const store::ClaimedDelivery& delivery);
  Status handle_command(const slack::CommandRequest& request);
  Status handle_action(const slack::ActionRequest& request);

  // Where an answer for this conversation goes (response_url, ephemeral, DM thread).
  Status reply(const slack::Conversation& where, const slack::Message& message);

  slack::Message help_message() const;
  slack::Message connections_message(const std::string& user_id) const;
  slack::Message unknown_command_message(const std::string& typed) const;

 private:
  std::vector<std::string> known_words() const;

  slack::WebApi& slack_;
  const CommandCatalog& catalog_;
};

}  // namespace deputy::bot
