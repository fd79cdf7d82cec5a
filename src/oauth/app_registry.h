// The configured apps, their endpoints completed by OIDC discovery on first use. Shared by
// the login flow, the token source and disconnects.
#pragma once

#include <map>
#include <mutex>
#include <string>

#include "common/result.h"
#include "oauth/apps.h"

namespace deputy::oauth {

class Protocol;

class AppRegistry {
 public:
  AppRegistry(std::map<std::string, App> apps, Protocol& protocol);

  // The app, its endpoints discovered first when its settings ask for that (once; a failed
  // discovery is tried again on the next use). kNotFound: no such app is configured.
  Result<const App*> find(const std::string& id);
  // As configured, without discovery.
  const std::map<std::string, App>& all() const { return apps_; }
  std::string display_name(const std::string& id) const;
  // Whether discovery said the server names itself in `iss` on every answer (RFC 9207).
  bool issuer_parameter_required(const std::string& id);

  // The app's API base for a connection, with the token response's instance URL filled in.
  static std::string api_base(const App& app, const std::string& instance_url);

 private:
  std::map<std::string, App> apps_;
  std::mutex mutex_;
  std::map<std::string, bool> iss_required_;
  Protocol& protocol_;
};

}  // namespace deputy::oauth
