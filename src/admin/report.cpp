#include "admin/report.h"

#include <ctime>

namespace deputy::admin {
namespace {

std::string person(const std::string& id, Style style) {
  if (id.empty() || id == "shared" || id == "system") return id.empty() ? "shared" : id;
  return style == Style::kSlack ? "<@" + id + ">" : id;
}

std::string text(const std::string& value, Style style) {
  if (style == Style::kPlain) return value;
  std::string out;
  for (char c : value) {
    if (c == '&') out += "&amp;";
    else if (c == '<') out += "&lt;";
    else if (c == '>') out += "&gt;";
    else out += c;
  }
  return out;
}

}  // namespace

std::string utc_time(int64_t unix_seconds, bool with_seconds) {
  if (unix_seconds <= 0) return "never";
  std::time_t t = static_cast<std::time_t>(unix_seconds);
  std::tm tm{};
  gmtime_r(&t, &tm);
  char buf[32];
  std::strftime(buf, sizeof buf, with_seconds ? "%Y-%m-%d %H:%M:%S UTC" : "%Y-%m-%d %H:%M UTC", &tm);
  return buf;
}

std::string describe_connection(const store::ConnectionRecord& r, const std::string& app_name, Style style) {
  bool shared = r.mode == store::ConnectionMode::kShared;
  std::string status = r.status == "active" ? "active" : r.status == "needs_reauth" ? "needs re-login" : "waiting for code";
  std::string name = style == Style::kSlack ? "*" + text(app_name, style) + "*" : app_name;
  return name + " · " + text(r.account, style) + " · " + (shared ? std::string("shared") : person(r.user_id, style) + " · personal") +
         " · " + status + " · connected " + utc_time(r.created_at) + " · last used " + utc_time(r.last_used_at) +
         (style == Style::kPlain ? " · team " + r.team_id + " · id " + r.id : "");
}

std::string describe_audit(const store::AuditRecord& r, Style style) {
  const store::AuditEvent& e = r.event;
  std::string line = utc_time(r.at, true) + " · " + (style == Style::kSlack ? "*" + e.event + "*" : e.event) + " · by " +
                     person(e.actor, style);
  if (!e.acting_as.empty() && e.acting_as != e.actor) line += " · as " + person(e.acting_as, style);
  if (!e.app.empty()) line += " · " + text(e.app, style);
  if (!e.recipe.empty()) line += " · " + text(e.recipe, style);
  if (!e.detail.empty()) line += " · " + text(e.detail, style);
  if (style == Style::kPlain) line += " · team " + e.team_id;
  return line;
}

}  // namespace deputy::admin
