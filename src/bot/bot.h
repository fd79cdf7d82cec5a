// Handles one queued Slack delivery: routes commands and button clicks, answers the
// asker in the right place (ephemeral in channels, in-thread in DMs).
#pragma once

#include <optional>

#include "bot/catalog.h"
#include "engine/job_runner.h"
#include "oauth/app_registry.h"
#include "oauth/login_flow.h"
#include "oauth/login_links.h"
#include "oauth/service.h"
#include "oauth/token_source.h"
#include "recipes/recipe.h"
#include "slack/requests.h"
#include "slack/text.h"
#include "slack/web_api.h"
#include "store/inbox.h"

namespace deputy::bot {

namespace actions {
inline constexpr const char* kShowConnections = "view.connections";
inline constexpr const char* kDisconnect = "connection.disconnect";
// Link buttons still send a block_actions payload; there is nothing to do for it.
inline constexpr const char* kOpenLink = "link.open";
// An admin's confirmation of `admin offboard @person`; the value is the person's user id.
inline constexpr const char* kOffboard = "admin.offboard";
}

// What the bot's commands about people's accounts use.
struct Accounts {
  oauth::AppRegistry& apps;
  oauth::ConnectionService& connections;  // lists, disconnect, offboarding, the audit trail
  oauth::LoginLinks& links;
  oauth::LoginFlow& logins;  // `verify <code>`
  oauth::TokenSource& tokens;  // `check <app>`
};

class Bot {
 public:
  // `runner` and `recipes` may be absent (no recipes are run then). `app_calls`: where the
  // commands that call an app directly run (disconnect and offboarding revoke, `check` asks
  // who is logged in, a first connect link may discover endpoints); absent, in the caller.
  Bot(slack::WebApi& slack, engine::Outbox& outbox, const CommandCatalog& catalog, const Accounts& accounts,
      std::vector<std::string> admins, engine::JobRunner* runner = nullptr, const std::vector<recipes::Recipe>* recipes = nullptr,
      engine::Executor* app_calls = nullptr);

  // How a delivery ends: once, perhaps later (a job waiting on an app), from any worker.
  using Done = std::function<void(Status)>;
  // A delivery from Slack (a command, an event, a click); `delivery.attempts` counts tries of
  // the same work; transient trouble is retried by the worker.
  void handle(const store::ClaimedDelivery& delivery, Done done);
  void handle_command(const slack::CommandRequest& request, int64_t delivery_id, int attempt, Done done);
  void handle_action(const slack::ActionRequest& request, int attempt, Done done);

  // Where an answer for this conversation goes (response_url, ephemeral, DM thread).
  Status reply(const slack::Conversation& where, const slack::Message& message);
  // Replaces the message a button was clicked in (a page of a list, a list after a disconnect).
  Status replace(const slack::ActionRequest& request, const slack::Message& message);

  // Admins also see the admin commands.
  slack::Message help_message(bool for_admin) const;
  // One page of the person's connections (kConnectionsPerPage rows), with Next/Previous.
  slack::Message connections_message(const std::string& team_id, const std::string& user_id, size_t page = 0);
  static constexpr size_t kConnectionsPerPage = 20;
  // `typed`: the command as the person typed it (slack::as_typed), not as Slack escapes it.
  slack::Message unknown_command_message(const slack::CommandRequest& request) const;

 private:
  std::vector<std::string> known_words() const;
  // A built-in command that waits on an app (revocation, userinfo, discovery).
  static bool calls_an_app(const std::vector<std::string>& words);
  // A built-in command (they win over recipes), answered before returning; nullopt when the
  // (lower-case) words name none.
  std::optional<Status> builtin_command(const slack::CommandRequest& request, const std::vector<slack::Word>& typed,
                                        const std::vector<std::string>& words);
  // Buttons other than Approve and Reject, answered before returning.
  Status handle_action_now(const slack::ActionRequest& request);
  Status connect_command(const slack::CommandRequest& request, const std::vector<std::string>& words);
  Status disconnect_action(const slack::ActionRequest& request);
  // Offboards once an admin confirmed it; the click is checked to be an admin's again.
  Status offboard_action(const slack::ActionRequest& request);
  Status check_command(const slack::CommandRequest& request, const std::string& app);
  // admin connections [@person|app] · admin offboard @person · admin audit [@person] [count]
  Status admin_command(const slack::CommandRequest& request, const std::vector<slack::Word>& words);
  bool is_admin(const std::string& user_id) const;
  std::string app_name(const std::string& app_id) const;

  slack::WebApi& slack_;
  engine::Outbox& outbox_;
  const CommandCatalog& catalog_;
  oauth::AppRegistry& apps_;
  oauth::ConnectionService& connections_;
  oauth::LoginLinks& links_;
  oauth::LoginFlow& logins_;
  oauth::TokenSource& tokens_;
  std::vector<std::string> admins_;
  engine::JobRunner* runner_;
  const std::vector<recipes::Recipe>* recipes_;
  engine::Executor* app_calls_;
};

}  // namespace deputy::bot
