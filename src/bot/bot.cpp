#include "bot/bot.h"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <atomic>
#include <memory>
#include <mutex>
#include <utility>

#include "common/encoding.h"
#include "recipes/template.h"

namespace deputy::bot {
namespace {

// A delivery and the replies sent while handling it. The worker's Finish runs once the
// handler is done and each reply has settled (sent, kept by the outbox, or refused), so the
// workers' limit on deliveries in flight also bounds the messages on their way to Slack.
class OpenDelivery {
 public:
  explicit OpenDelivery(Bot::Done done) : done_(std::move(done)) {}
  void add() { pending_.fetch_add(1); }
  // The first failure is the delivery's, as when a reply was sent before returning.
  void settle(Status status) {
    {
      std::lock_guard lock(mutex_);
      if (status_.ok() && !status.ok()) status_ = std::move(status);
    }
    if (pending_.fetch_sub(1) == 1) done_(status_);
  }

 private:
  std::mutex mutex_;
  Status status_;
  std::atomic<int> pending_{1};  // the handler, and each reply not yet settled
  Bot::Done done_;
};

// The delivery this thread is handling, for reply() to join. Built-in commands answer before
// they return, so their replies are made on the thread that handles them.
thread_local std::shared_ptr<OpenDelivery> handling;

class Handling {
 public:
  explicit Handling(std::shared_ptr<OpenDelivery> open) : previous_(std::exchange(handling, std::move(open))) {}
  ~Handling() { handling = std::move(previous_); }
  Handling(const Handling&) = delete;
  Handling& operator=(const Handling&) = delete;

 private:
  std::shared_ptr<OpenDelivery> previous_;
};

Bot::Done settling(const std::shared_ptr<OpenDelivery>& open) {
  return [open](Status s) { open->settle(std::move(s)); };
}

}  // namespace


Bot::Bot(slack::WebApi& slack, engine::Outbox& outbox, const CommandCatalog& catalog, const Accounts& accounts,
         std::vector<std::string> admins, engine::JobRunner* runner, const std::vector<recipes::Recipe>* recipes,
         engine::Executor* app_calls)
    : slack_(slack), outbox_(outbox), catalog_(catalog), apps_(accounts.apps),
      connections_(accounts.connections),
      links_(accounts.links),
      logins_(accounts.logins),
      tokens_(accounts.tokens),
      admins_(std::move(admins)), runner_(runner), recipes_(recipes), app_calls_(app_calls) {}

bool Bot::is_admin(const std::string& user_id) const {
  return std::find(admins_.begin(), admins_.end(), user_id) != admins_.end();
}

std::string Bot::app_name(const std::string& app_id) const {
  return apps_.display_name(app_id);
}

std::vector<std::string> Bot::known_words() const {
  std::vector<std::string> words;
  for (const auto& c : builtin_commands()) words.push_back(c.words);
  for (const auto& c : catalog_.commands()) words.push_back(c.words);
  return words;
}

void Bot::handle(const store::ClaimedDelivery& delivery, Done finish) {
  auto open = std::make_shared<OpenDelivery>(std::move(finish));
  Handling scope(open);
  Done done = settling(open);
  auto request = slack::interpret(delivery.delivery.kind, delivery.delivery.payload);
  if (!request) {
    // Stored deliveries were checked at the door; one that still cannot be read is dropped loudly.
    spdlog::error("delivery {} cannot be interpreted: {}", delivery.id, request.status().message());
    return done(request.status());
  }
  if (auto* command = std::get_if<slack::CommandRequest>(&*request))
    return handle_command(*command, delivery.id, delivery.attempts, std::move(done));
  handle_action(std::get<slack::ActionRequest>(*request), delivery.attempts, std::move(done));
}

void Bot::handle_command(const slack::CommandRequest& request, int64_t delivery_id, int attempt, Done done) {
  // Read as typed before anything looks at the words: Slack's escaping must not reach apps.
  const std::vector<slack::Word> typed = slack::typed_words(request.text);
  std::vector<std::string> words;
  words.reserve(typed.size());
  for (const auto& w : typed) words.push_back(to_lower(w.text));
  if (app_calls_ && calls_an_app(words)) {
    return app_calls_->post([this, request, typed, words, open = handling, done = std::move(done)] {
      Handling scope(open);
      done(builtin_command(request, typed, words).value_or(Status::Ok()));
    });
  }
  if (auto answered = builtin_command(request, typed, words)) return done(*answered);
  if (runner_ && recipes_) {
    size_t consumed = 0;
    if (const recipes::Recipe* recipe = recipes::match(*recipes_, words, consumed)) {
      auto params = recipes::parse_arguments(*recipe, std::vector<slack::Word>(typed.begin() + static_cast<long>(consumed), typed.end()));
      if (!params) {
        // The message quotes what was typed, which may hold & < >.
        slack::Message message;
        message.text = slack::escape_mrkdwn(params.status().message());
        message.blocks.section(message.text + "\nUsage: `" + slack::escape_mrkdwn(recipe->usage()) + "`");
        return done(reply(request.where, message));
      }
      // A job, which may wait on an app without holding this thread.
      return runner_->start(*recipe, *params, request, delivery_id, attempt, std::move(done));
    }
  }
  done(reply(request.where, unknown_command_message(request)));
}

bool Bot::calls_an_app(const std::vector<std::string>& words) {
  if (words.empty()) return false;
  // The same words builtin_command() answers, so none of these falls through to the recipes.
  // (`admin offboard` only asks for a confirmation; the click that confirms it revokes.)
  return (words[0] == "check" && words.size() == 2) || words[0] == "connect";
}

std::optional<Status> Bot::builtin_command(const slack::CommandRequest& request, const std::vector<slack::Word>& typed,
                                           const std::vector<std::string>& words) {
  if (words.empty() || words[0] == "help") return reply(request.where, help_message(is_admin(request.where.user_id)));
  if (words[0] == "connections" || (words.size() >= 2 && words[0] == "personal" && words[1] == "accounts")) {
    return reply(request.where, connections_message(request.where.team_id, request.where.user_id));
  }
  if (words[0] == "connect") return connect_command(request, words);
  if (words[0] == "admin") return admin_command(request, typed);
  if (words[0] == "check" && words.size() == 2) return check_command(request, words[1]);
  if (words[0] == "verify" && words.size() == 2) {
    auto confirmed = logins_.confirm_code(request.where.team_id, request.where.user_id, words[1]);
    if (confirmed) return Status::Ok();  // the service has already said "Connected to …"
    slack::Message message;
    message.text = "That code does not match a connection waiting for you (codes work for 10 minutes). Connect again to get a new one.";
    message.blocks.section(message.text);
    return reply(request.where, message);
  }
  return std::nullopt;
}

void Bot::handle_action(const slack::ActionRequest& request, int attempt, Done done) {
  if (runner_ && (request.action_id == engine::job_actions::kApprove || request.action_id == engine::job_actions::kReject))
    return runner_->decide(request, request.action_id == engine::job_actions::kApprove, attempt, std::move(done));
  if (app_calls_ && (request.action_id == actions::kDisconnect || request.action_id == actions::kOffboard))
    return app_calls_->post([this, request, open = handling, done = std::move(done)] {
      Handling scope(open);
      done(handle_action_now(request));
    });
  done(handle_action_now(request));
}

Status Bot::handle_action_now(const slack::ActionRequest& request) {
  if (request.action_id.rfind(actions::kShowConnections, 0) == 0) {
    const bool paging = request.value.rfind("page:", 0) == 0;
    size_t page = paging ? std::strtoul(request.value.c_str() + 5, nullptr, 10) : 0;
    slack::Message list = connections_message(request.where.team_id, request.where.user_id, page);
    // Paging replaces the list it came from; the button under help opens a new one.
    return paging ? replace(request, list) : reply(request.where, list);
  }
  if (request.action_id == actions::kDisconnect) return disconnect_action(request);
  if (request.action_id == actions::kOffboard) return offboard_action(request);
  if (request.action_id.rfind(actions::kOpenLink, 0) == 0) return Status::Ok();
  spdlog::warn("unknown button action '{}' from {}", request.action_id, request.where.user_id);
  slack::Message message;
  message.text = "That button no longer does anything. Type `help` to see what I can do.";
  message.blocks.section(message.text);
  return reply(request.where, message);
}

Status Bot::reply(const slack::Conversation& where, const slack::Message& message) {
  // Sent without holding the worker; the outbox keeps what Slack does not take yet. The
  // delivery being handled ends once this has settled.
  if (auto open = handling) {
    open->add();
    outbox_.start_send(where, message, settling(open));
  } else {
    outbox_.post(where, message);
  }
  return Status::Ok();
}

Status Bot::replace(const slack::ActionRequest& request, const slack::Message& message) {
  const bool by_response_url = request.where.via == slack::ReplyVia::kResponseUrl;
  const bool by_update = !by_response_url && !request.message_ts.empty() && !request.in_ephemeral_message;
  if (!by_response_url && !by_update) return reply(request.where, message);
  // A message that could not be replaced is logged; the click's work is done either way.
  auto open = handling;
  if (open) open->add();
  auto logged = [user = request.where.user_id, open](Result<nlohmann::json> replaced) {
    if (!replaced) spdlog::warn("could not replace the message {} clicked in: {}", user, replaced.status().message());
    if (open) open->settle(Status::Ok());
  };
  if (by_response_url) {
    slack_.start_respond(request.where.response_url, message, true, true, std::move(logged));
  } else {
    slack_.start_call_json("chat.update",
                           slack::message_json(message, {{"channel", request.where.channel_id}, {"ts", request.message_ts}}),
                           std::move(logged));
  }
  return Status::Ok();
}

slack::Message Bot::help_message(bool for_admin) const {
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
  message.blocks.section(
      "*Built in*\n`help` — this list\n`connections` — the accounts I can act as for you\n`connect &lt;app&gt;` — log in to an app as yourself\n"
      "`check &lt;app&gt;` — ask the app who I act as for you");
  if (for_admin) {
    message.blocks.section(
        "*For admins*\n`connect shared &lt;app&gt;` — the account recipes without a personal login act as\n"
        "`admin connections [@person|app]` — who has connected what\n"
        "`admin offboard @person` — revoke and delete every login the person holds\n"
        "`admin audit [@person] [count]` — the latest entries of the audit log");
  }
  message.blocks.actions({slack::Button{"Personal accounts", actions::kShowConnections, "list", "", "primary", std::nullopt}},
                         "deputy.help");
  return message;
}

namespace {

std::string when(int64_t unix_seconds) {
  if (unix_seconds <= 0) return "never";
  // Slack renders this in the reader's own time zone.
  return "<!date^" + std::to_string(unix_seconds) + "^{date_short_pretty} {time}|" + std::to_string(unix_seconds) + ">";
}

}  // namespace

slack::Message Bot::connections_message(const std::string& team_id, const std::string& user_id, size_t page) {
  slack::Message message;
  message.text = "Your personal accounts";
  message.blocks.header("Personal accounts");
  auto mine = connections_.connections_of(team_id, user_id);
  if (!mine) {
    message.blocks.section("I could not read your connections just now. Try again in a moment.");
    return message;
  }
  std::vector<std::string> connected_apps;
  if (mine->empty()) {
    message.blocks.section(
        "You have no personal accounts connected. When a command needs to act as you, I will send you a *Connect* button "
        "— only you will see it.");
  }
  for (const auto& c : *mine) connected_apps.push_back(c.app);
  const size_t pages = (mine->size() + kConnectionsPerPage - 1) / kConnectionsPerPage;
  if (pages > 0 && page >= pages) page = pages - 1;
  for (size_t i = page * kConnectionsPerPage; i < mine->size() && i < (page + 1) * kConnectionsPerPage; ++i) {
    const auto& c = (*mine)[i];
    std::string status = c.status == "active" ? "active" : c.status == "needs_reauth" ? "needs re-login" : "waiting for your code";
    slack::Button disconnect{"Disconnect", actions::kDisconnect, c.id, "", "danger",
                             slack::Confirm{"Disconnect " + app_name(c.app) + "?",
                                            "Deputy will no longer be able to act as *" + slack::escape_mrkdwn(c.account) + "* in " +
                                                app_name(c.app) + ". The login is revoked at " + app_name(c.app) + ".",
                                            "Disconnect", "Cancel"}};
    message.blocks.section("*" + slack::escape_mrkdwn(app_name(c.app)) + "* — " + slack::escape_mrkdwn(c.account) + "\nConnected " +
                               when(c.created_at) + " · last used " + when(c.last_used_at) + " · " + status,
                           disconnect);
  }
  if (pages > 1) {
    std::vector<slack::Button> nav;
    if (page > 0) nav.push_back({"Previous", std::string(actions::kShowConnections) + ".previous", "page:" + std::to_string(page - 1), "", "", std::nullopt});
    if (page + 1 < pages) nav.push_back({"Next", std::string(actions::kShowConnections) + ".next", "page:" + std::to_string(page + 1), "", "", std::nullopt});
    message.blocks.context({"Page " + std::to_string(page + 1) + " of " + std::to_string(pages) + " · " + std::to_string(mine->size()) + " accounts"});
    message.blocks.actions(nav, "deputy.connections.pages");
  }
  std::vector<slack::Button> connect_buttons;
  std::vector<std::string> wanted;
  for (const auto& command : catalog_.commands()) {
    if (command.personal && std::find(wanted.begin(), wanted.end(), command.app) == wanted.end()) wanted.push_back(command.app);
  }
  for (const auto& app : wanted) {
    if (std::find(connected_apps.begin(), connected_apps.end(), app) != connected_apps.end()) continue;
    auto link = links_.connect_link({team_id, user_id, app, store::ConnectionMode::kPersonal, ""});
    if (!link) continue;
    connect_buttons.push_back(slack::Button{"Connect " + app_name(app), std::string(actions::kOpenLink) + "." + app, app, *link, "primary", std::nullopt});
  }
  if (!connect_buttons.empty()) {
    message.blocks.section("Apps your commands use that you have not connected:");
    message.blocks.actions(connect_buttons, "deputy.connect");
  }
  return message;
}

Status Bot::connect_command(const slack::CommandRequest& request, const std::vector<std::string>& words) {
  bool shared = words.size() >= 2 && words[1] == "shared";
  size_t app_word = shared ? 2 : 1;
  slack::Message message;
  if (words.size() <= app_word) {
    message.text = "Which app? For example `connect salesforce`.";
    message.blocks.section(message.text);
    return reply(request.where, message);
  }
  std::string app = words[app_word];
  if (shared && !is_admin(request.where.user_id)) {
    message.text = "Only Deputy admins can connect shared accounts.";
    message.blocks.section(message.text);
    return reply(request.where, message);
  }
  auto link = links_.connect_link({request.where.team_id, request.where.user_id, app,
                                         shared ? store::ConnectionMode::kShared : store::ConnectionMode::kPersonal, ""});
  if (!link) {
    message.text = link.status().code() == ErrorCode::kNotFound ? "I don't know an app called " + app + "." : link.status().message();
    message.blocks.section(slack::escape_mrkdwn(message.text));
    return reply(request.where, message);
  }
  std::string name = app_name(app);
  message.text = shared ? "Connect the shared " + name + " account" : "Connect your " + name + " account";
  message.blocks.section(shared ? "Log in with the *shared* " + slack::escape_mrkdwn(name) + " account that recipes should use for everyone. The link works once, for 10 minutes."
                                : "Log in to " + slack::escape_mrkdwn(name) + " as yourself. The link works once, for 10 minutes — don't share it.",
                         slack::Button{"Connect " + name, std::string(actions::kOpenLink) + "." + app, app, *link, "primary", std::nullopt});
  return reply(request.where, message);
}

Status Bot::check_command(const slack::CommandRequest& request, const std::string& app) {
  slack::Message message;
  auto found = apps_.find(app);
  if (!found) {
    message.text = "I don't know an app called " + app + ".";
    message.blocks.section(slack::escape_mrkdwn(message.text));
    return reply(request.where, message);
  }
  std::string name = (*found)->display_name;
  auto account = tokens_.whoami(request.where.team_id, request.where.user_id, app);
  if (account) {
    message.text = name + " knows you as " + *account + ".";
    message.blocks.section(":white_check_mark: *" + slack::escape_mrkdwn(name) + "* knows you as *" + slack::escape_mrkdwn(*account) + "*. Your connection works.");
    return reply(request.where, message);
  }
  if (account.status().code() == ErrorCode::kUnavailable) return account.status();  // retried by the worker
  bool relogin = account.status().code() == ErrorCode::kUnauthenticated || account.status().code() == ErrorCode::kNotFound;
  message.text = relogin ? "Your " + name + " account is not connected, or its login has expired." : account.status().message();
  if (relogin) {
    auto link = links_.connect_link({request.where.team_id, request.where.user_id, app, store::ConnectionMode::kPersonal, ""});
    if (link) {
      message.blocks.section(slack::escape_mrkdwn(message.text) + " Connect it to let me act as you.",
                             slack::Button{"Connect " + name, std::string(actions::kOpenLink) + "." + app, app, *link, "primary", std::nullopt});
      return reply(request.where, message);
    }
  }
  message.blocks.section(slack::escape_mrkdwn(message.text));
  return reply(request.where, message);
}

Status Bot::disconnect_action(const slack::ActionRequest& request) {
  auto record = connections_.connection(request.value);
  slack::Message message;
  // Only the owner may disconnect, whatever the request says; a forged id is refused and audited.
  if (!record || !record->has_value() || (*record)->user_id != request.where.user_id || (*record)->team_id != request.where.team_id) {
    connections_.audit_refused_disconnect(request.where.team_id, request.where.user_id, request.value);
    message.text = "That connection is not yours, or it is already gone.";
    message.blocks.section(message.text);
    return reply(request.where, message);
  }
  Status s = connections_.disconnect(request.value, request.where.user_id, "disconnected");
  if (!s.ok()) return s;
  slack::Message updated = connections_message(request.where.team_id, request.where.user_id);
  return replace(request, updated);
}

namespace {

// How to ask for help the way the person just asked for something: in a slash command, the
// slash command; in a channel, by mentioning Deputy; in a DM, the word alone.
std::string how_to_ask_for_help(const slack::CommandRequest& request) {
  switch (request.origin) {
    case slack::Origin::kSlashCommand: return "`" + (request.slash.empty() ? std::string("/deputy") : request.slash) + " help`";
    case slack::Origin::kMention: return "`help` in a mention of me";
    case slack::Origin::kDirectMessage: break;
  }
  return "`help`";
}

}  // namespace

slack::Message Bot::unknown_command_message(const slack::CommandRequest& request) const {
  const std::string typed = slack::as_typed(request.text);
  const std::string cut = slack::truncate_utf8(std::string(trim(typed)), 200);
  std::string shown = slack::escape_mrkdwn(cut);
  std::string suggestion = suggest(typed, known_words());
  slack::Message message;
  message.text = "I don't know the command \"" + shown + "\".";
  std::string body = "I don't know the command *" + shown + "*.";
  if (!suggestion.empty()) body += " Did you mean *" + suggestion + "*?";
  body += "\nType " + slack::escape_mrkdwn(how_to_ask_for_help(request)) + " to see what I can do.";
  message.blocks.section(body);
  return message;
}

}  // namespace deputy::bot
