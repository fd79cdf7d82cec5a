// Admin commands in chat; the same operations as `deputy admin …` on the command line.
#include <spdlog/spdlog.h>

#include <charconv>

#include "admin/report.h"
#include "bot/bot.h"
#include "common/encoding.h"
#include "recipes/template.h"

namespace deputy::bot {
namespace {

constexpr size_t kDefaultAuditLines = 20;
constexpr size_t kMaxAuditLines = 200;

// Lines packed into as few sections as Slack's limits allow; what does not fit is counted.
void add_lines(slack::Message& message, const std::vector<std::string>& lines) {
  std::string section;
  size_t shown = 0;
  for (const auto& line : lines) {
    if (section.size() + line.size() + 1 > slack::kMaxSectionText - 100) {
      if (message.blocks.size() >= slack::kMaxBlocksPerMessage - 2) break;
      message.blocks.section(section);
      section.clear();
    }
    section += (section.empty() ? "" : "\n") + line;
    ++shown;
  }
  if (!section.empty() && message.blocks.size() < slack::kMaxBlocksPerMessage - 1) message.blocks.section(section);
  else if (!section.empty()) shown -= static_cast<size_t>(std::count(section.begin(), section.end(), '\n') + 1);
  if (shown < lines.size())
    message.blocks.context({std::to_string(lines.size() - shown) + " more not shown; narrow it down, or use `deputy admin` on the server."});
}

slack::Message say(const std::string& text) {
  slack::Message m;
  m.text = text;
  m.blocks.section(text);
  return m;
}

}  // namespace

Status Bot::admin_command(const slack::CommandRequest& request, const std::vector<slack::Word>& words) {
  const auto& where = request.where;
  std::vector<std::string> tokens;
  for (const auto& w : words) tokens.push_back(w.text);
  if (!is_admin(where.user_id)) {
    spdlog::warn("{} tried an admin command but is not an admin", where.user_id);
    (void)connections_.audit_admin_refused(where.team_id, where.user_id, tokens.size() > 1 ? tokens[1] : "");
    return reply(where, say("Only Deputy admins can use admin commands."));
  }
  std::string verb = tokens.size() > 1 ? to_lower(tokens[1]) : "";
  std::string argument = tokens.size() > 2 ? tokens[2] : "";
  std::string person = words.size() > 2 ? words[2].user_id() : "";

  if (verb == "connections") {
    store::ConnectionFilter filter{where.team_id, person, person.empty() ? to_lower(argument) : ""};
    auto found = connections_.list_connections(filter);
    if (!found) return found.status();
    slack::Message message;
    message.text = "Connections";
    std::string scope = !person.empty() ? " of <@" + person + ">" : !argument.empty() ? " to " + slack::escape_mrkdwn(app_name(to_lower(argument))) : "";
    message.blocks.header("Connections");
    message.blocks.context({std::to_string(found->size()) + " connection(s)" + scope + ". Tokens are never shown."});
    std::vector<std::string> lines;
    for (const auto& c : *found) lines.push_back(admin::describe_connection(c, app_name(c.app), admin::Style::kSlack));
    if (lines.empty()) lines.push_back("None.");
    add_lines(message, lines);
    return reply(where, message);
  }
  if (verb == "offboard") {
    if (person.empty()) return reply(where, say("Whom? For example `admin offboard @alice`."));
    // Nothing is revoked yet: offboarding cannot be undone, so the admin confirms it first.
    auto held = connections_.list_connections(store::ConnectionFilter{where.team_id, person, ""});
    if (!held) return held.status();
    if (held->empty()) return reply(where, say("<@" + person + "> has no personal connections; nothing to revoke."));
    std::string list;
    for (const auto& c : *held) list += (list.empty() ? "" : ", ") + app_name(c.app) + " (" + slack::escape_mrkdwn(c.account) + ")";
    slack::Message message;
    message.text = "Offboard <@" + person + ">?";
    message.blocks.section("Offboarding revokes and deletes every login <@" + person + "> holds: " + std::to_string(held->size()) +
                               " connection(s), " + list + ". It cannot be undone; they would have to connect again.",
                           slack::Button{"Offboard", actions::kOffboard, person, "", "danger",
                                         slack::Confirm{"Offboard this person?", "Every login <@" + person + "> holds is revoked and deleted.",
                                                        "Offboard", "Cancel"}});
    return reply(where, message);
  }
  if (verb == "audit") {
    size_t count = kDefaultAuditLines;
    for (size_t i = 2; i < tokens.size(); ++i) {
      if (tokens[i].empty() || !std::all_of(tokens[i].begin(), tokens[i].end(), ::isdigit)) continue;
      size_t asked = 0;
      auto parsed = std::from_chars(tokens[i].data(), tokens[i].data() + tokens[i].size(), asked);
      // All digits, so the only way to fail is a number too big: as many as are shown.
      count = parsed.ec == std::errc() ? std::min(kMaxAuditLines, std::max<size_t>(1, asked)) : kMaxAuditLines;
    }
    auto records = connections_.read_audit(where.team_id, person, count);
    if (!records) return records.status();
    slack::Message message;
    message.text = "Audit log";
    message.blocks.header("Audit log");
    message.blocks.context({"Newest first" + (person.empty() ? std::string() : ", involving <@" + person + ">") + "."});
    std::vector<std::string> lines;
    for (const auto& r : *records) lines.push_back(admin::describe_audit(r, admin::Style::kSlack));
    if (lines.empty()) lines.push_back("Nothing recorded yet.");
    add_lines(message, lines);
    return reply(where, message);
  }
  return reply(where, say("Admin commands: `admin connections [@person|app]`, `admin offboard @person`, `admin audit [@person] [count]`."));
}

Status Bot::offboard_action(const slack::ActionRequest& request) {
  const auto& where = request.where;
  // The button went to an admin, but a click is a new request: whoever sends it must be one.
  if (!is_admin(where.user_id)) {
    spdlog::warn("{} clicked an offboarding confirmation but is not an admin", where.user_id);
    (void)connections_.audit_admin_refused(where.team_id, where.user_id, "offboard");
    return reply(where, say("Only Deputy admins can offboard people."));
  }
  const std::string& person = request.value;
  if (!slack::is_user_id(person)) return reply(where, say("That confirmation does not name anyone; run `admin offboard @person` again."));
  auto removed = connections_.offboard(where.team_id, person, where.user_id);
  if (!removed) return removed.status();
  std::string list;
  for (const auto& c : *removed) list += (list.empty() ? "" : ", ") + app_name(c.app) + " (" + slack::escape_mrkdwn(c.account) + ")";
  return replace(request, say(removed->empty() ? "<@" + person + "> has no personal connections; nothing to revoke."
                                               : "Revoked and deleted " + std::to_string(removed->size()) + " connection(s) of <@" + person +
                                                     ">: " + list + ". Offboarded by <@" + where.user_id + ">."));
}

}  // namespace deputy::bot
