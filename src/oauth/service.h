// People's connections as they and admins see them: lists, the audit trail, disconnect with
// revocation at the app, and offboarding. Logins are the login flow's; tokens the token source's.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "common/result.h"
#include "metrics/metrics.h"
#include "oauth/app_registry.h"
#include "oauth/protocol.h"
#include "store/connections.h"
#include "store/oauth_states.h"
#include "vault/token_vault.h"

namespace deputy::oauth {

class ConnectionService {
 public:
  ConnectionService(AppRegistry& apps, Protocol& protocol, store::Connections& connections, store::OAuthStates& states,
                    vault::TokenVault& vault, metrics::Registry& metrics);

  // Revokes at the app where possible, then deletes. `actor` is audited.
  Status disconnect(const std::string& connection_id, const std::string& actor, const std::string& reason);
  // Offboarding: revokes and deletes every personal connection the person holds in the
  // workspace (every workspace when team_id is empty). Returns the connections removed.
  Result<std::vector<store::ConnectionRecord>> offboard(const std::string& team_id, const std::string& user_id,
                                                         const std::string& actor);

  Result<std::vector<store::ConnectionRecord>> connections_of(const std::string& team_id, const std::string& user_id) {
    return connections_.of_user(team_id, user_id);
  }
  Result<std::optional<store::ConnectionRecord>> connection(const std::string& id) { return connections_.by_id(id); }
  Result<std::vector<store::ConnectionRecord>> list_connections(const store::ConnectionFilter& filter) {
    return connections_.list(filter);
  }
  Result<std::vector<store::AuditRecord>> read_audit(const std::string& team_id, const std::string& person, size_t limit) {
    return connections_.read_audit(team_id, person, limit);
  }
  Status audit_admin_refused(const std::string& team_id, const std::string& user_id, const std::string& command) {
    return connections_.audit({team_id, "admin_refused", user_id, "", "", "", "", "admin " + command.substr(0, 64)});
  }
  void audit_refused_disconnect(const std::string& team_id, const std::string& user_id, const std::string& connection_id);

 private:
  AppRegistry& apps_;
  Protocol& protocol_;
  store::Connections& connections_;
  store::OAuthStates& states_;
  vault::TokenVault& vault_;
  metrics::Registry& metrics_;
};

}  // namespace deputy::oauth
