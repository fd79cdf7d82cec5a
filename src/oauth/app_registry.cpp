#include "oauth/app_registry.h"

#include "oauth/protocol.h"

namespace deputy::oauth {

AppRegistry::AppRegistry(std::map<std::string, App> apps, Protocol& protocol) : apps_(std::move(apps)), protocol_(protocol) {}

Result<const App*> AppRegistry::find(const std::string& id) {
  std::unique_lock lock(mutex_);
  auto it = apps_.find(id);
  if (it == apps_.end()) return NotFound("no app named '" + id + "' is configured");
  App& app = it->second;
  if (!app.discover) return &app;
  // Not under the lock: an identity provider that does not answer must not hold up the
  // other apps. Two callers may both discover; the second fills nothing.
  const std::string issuer = app.issuer;
  lock.unlock();
  auto found = protocol_.discover(issuer);
  lock.lock();
  if (!found) return Unavailable("cannot reach " + app.display_name + " to discover its endpoints: " + found.status().message());
  auto fill = [](std::string& target, const std::string& value) {
    if (target.empty() && !value.empty()) target = value;
  };
  fill(app.authorize_url, found->authorization_endpoint);
  fill(app.token_url, found->token_endpoint);
  fill(app.revoke_url, found->revocation_endpoint);
  fill(app.userinfo_url, found->userinfo_endpoint);
  iss_required_[app.id] = found->iss_parameter_supported;
  app.discover = false;
  return &app;
}

std::string AppRegistry::display_name(const std::string& id) const {
  auto it = apps_.find(id);
  return it == apps_.end() ? id : it->second.display_name;
}

bool AppRegistry::issuer_parameter_required(const std::string& id) {
  std::lock_guard lock(mutex_);
  auto it = iss_required_.find(id);
  return it != iss_required_.end() && it->second;
}

std::string AppRegistry::api_base(const App& app, const std::string& instance_url) {
  std::string base = app.api_base_url;
  size_t at = base.find("{instance_url}");
  if (at != std::string::npos) base.replace(at, 14, instance_url);
  while (!base.empty() && base.back() == '/') base.pop_back();
  return base;
}

}  // namespace deputy::oauth
