#include "oauth/service.h"

#include <spdlog/spdlog.h>

#include "oauth/events.h"
#include "oauth/sealed_tokens.h"

namespace deputy::oauth {

ConnectionService::ConnectionService(AppRegistry& apps, Protocol& protocol, store::Connections& connections, store::OAuthStates& states,
                                     vault::TokenVault& vault, metrics::Registry& metrics)
    : apps_(apps), protocol_(protocol), connections_(connections), states_(states), vault_(vault), metrics_(metrics) {
  describe_events(metrics_);
}

Status ConnectionService::disconnect(const std::string& connection_id, const std::string& actor, const std::string& reason) {
  auto found = connections_.by_id(connection_id);
  if (!found) return found.status();
  if (!found->has_value()) return NotFound("no such connection");
  const store::ConnectionRecord& record = **found;
  auto bundle = open_tokens(vault_, record);
  auto a = apps_.find(record.app);
  if (bundle && a && !(*a)->revoke_url.empty()) {
    // Revoking the refresh token ends the whole grant at most servers; revoke the access token too.
    Status revoked = bundle->refresh_token.empty() ? Status::Ok() : protocol_.revoke(**a, bundle->refresh_token, "refresh_token");
    Status revoked_access = protocol_.revoke(**a, bundle->access_token, "access_token");
    if (!revoked.ok() || !revoked_access.ok()) {
      spdlog::warn("revoking {} connection {} at the app failed; deleting the tokens anyway: {}", record.app, record.id,
                   (!revoked.ok() ? revoked : revoked_access).message());
      count_event(metrics_, "revoke_failed", record.app);
    }
  } else if (!bundle) {
    spdlog::warn("connection {} cannot be opened ({}); deleting it without revocation", record.id, bundle.status().message());
  }
  auto removed = connections_.remove(record.id, store::AuditEvent{record.team_id, reason, actor, record.user_id.empty() ? "shared" : record.user_id,
                                                                   record.app, record.id, "", record.account});
  if (!removed) return removed.status();
  count_event(metrics_, "disconnected", record.app);
  return Status::Ok();
}

Result<std::vector<store::ConnectionRecord>> ConnectionService::offboard(const std::string& team_id, const std::string& user_id,
                                                                         const std::string& actor) {
  if (user_id.empty()) return InvalidArgument("offboarding needs a person");
  // First, so that a connect link open in the person's browser cannot connect them again
  // while their grants are being revoked.
  auto cancelled = states_.cancel_pending(team_id, user_id);
  if (!cancelled) return cancelled.status();
  auto held = connections_.list({team_id, user_id, ""});
  if (!held) return held.status();
  std::vector<store::ConnectionRecord> removed;
  for (const auto& record : *held) {
    if (record.mode != store::ConnectionMode::kPersonal) continue;
    if (Status s = disconnect(record.id, actor, "revoked_by_admin"); !s.ok()) return s;
    removed.push_back(record);
  }
  spdlog::info("{} offboarded {}: {} connection(s) revoked, {} login(s) in flight cancelled", actor, user_id, removed.size(), *cancelled);
  return removed;
}

void ConnectionService::audit_refused_disconnect(const std::string& team_id, const std::string& user_id,
                                                 const std::string& connection_id) {
  count_event(metrics_, "disconnect_refused", "");
  spdlog::warn("{} tried to disconnect connection {} that is not theirs", user_id, connection_id.substr(0, 64));
  (void)connections_.audit({team_id, "disconnect_refused", user_id, "", "", connection_id.substr(0, 64), "", "not the owner"});
}

}  // namespace deputy::oauth
