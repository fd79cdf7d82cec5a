#include "oauth/apps.h"

namespace deputy::oauth {
namespace {

Status app_error(const config::AppSettings& s, const std::string& what) {
  return InvalidArgument("apps." + s.id + " (line " + std::to_string(s.line) + "): " + what);
}

void fill(std::string& target, const std::string& value) {
  if (target.empty()) target = value;
}

std::string trimmed_host(std::string host) {
  for (const char* scheme : {"https://", "http://"}) {
    if (host.rfind(scheme, 0) == 0) host = host.substr(std::string(scheme).size());
  }
  while (!host.empty() && host.back() == '/') host.pop_back();
  return host;
}

Result<App> resolve(const config::AppSettings& s) {
  App app;
  app.id = s.id;
  app.type = s.type;
  app.display_name = s.display_name;
  app.client_id = s.client_id;
  app.client_secret = s.client_secret;
  app.issuer = s.issuer;
  app.authorize_url = s.authorize_url;
  app.token_url = s.token_url;
  app.revoke_url = s.revoke_url;
  app.userinfo_url = s.userinfo_url;
  app.api_base_url = s.api_base_url;
  app.timeout = std::chrono::seconds(s.timeout_seconds);
  app.identity_url = s.identity_url;
  app.api_key = s.api_key;

  std::vector<std::string> default_scopes;
  if (s.type == "salesforce") {
    // login.salesforce.com (production), test.salesforce.com (sandboxes) or a My Domain host.
    std::string host = trimmed_host(s.login_host.empty() ? "login.salesforce.com" : s.login_host);
    std::string base = "https://" + host + "/services/oauth2";
    fill(app.display_name, "Salesforce");
    fill(app.authorize_url, base + "/authorize");
    fill(app.token_url, base + "/token");
    fill(app.revoke_url, base + "/revoke");
    fill(app.userinfo_url, base + "/userinfo");
    fill(app.api_base_url, "{instance_url}/services/data/v60.0");
    default_scopes = {"api", "refresh_token", "openid", "email"};
    app.token_auth = TokenAuth::kClientSecretPost;
  } else if (s.type == "servicenow") {
    if (s.instance.empty() && (s.authorize_url.empty() || s.token_url.empty()))
      return app_error(s, "a ServiceNow app needs `instance` (e.g. acme.service-now.com)");
    std::string base = "https://" + trimmed_host(s.instance);
    fill(app.display_name, "ServiceNow");
    fill(app.authorize_url, base + "/oauth_auth.do");
    fill(app.token_url, base + "/oauth_token.do");
    fill(app.revoke_url, base + "/oauth_revoke_token.do");
    fill(app.api_base_url, base);
    // ServiceNow has no userinfo endpoint; the signed-in user is read from the Table API.
    fill(app.identity_url, base + "/api/now/table/sys_user?sysparm_query=sys_id%3Djavascript:gs.getUserID()"
                                  "&sysparm_fields=email,user_name&sysparm_limit=1");
    app.identity_source = IdentitySource::kApi;
    app.identity_field = "/result/0/email";
    default_scopes = {"useraccount"};
    app.token_auth = TokenAuth::kClientSecretPost;
  } else if (s.type == "box") {
    fill(app.display_name, "Box");
    fill(app.authorize_url, "https://account.box.com/api/oauth2/authorize");
    fill(app.token_url, "https://api.box.com/oauth2/token");
    fill(app.revoke_url, "https://api.box.com/oauth2/revoke");
    fill(app.api_base_url, "https://api.box.com/2.0");
    fill(app.identity_url, "https://api.box.com/2.0/users/me");
    app.identity_source = IdentitySource::kApi;
    app.identity_field = "/login";
    app.token_auth = TokenAuth::kClientSecretPost;
    app.pkce = false;  // Box's authorize endpoint does not take PKCE parameters
  } else if (s.type == "oauth2") {
    fill(app.display_name, s.id);
    default_scopes = {"openid", "email", "offline_access"};
    app.discover = !s.issuer.empty();
    if (!app.discover && (app.authorize_url.empty() || app.token_url.empty()))
      return app_error(s, "needs `issuer` (for discovery) or both `authorize_url` and `token_url`");
    app.identity_source = IdentitySource::kIdToken;
  } else if (s.type == "api_key") {
    fill(app.display_name, s.id);
    app.oauth2 = false;
    if (app.api_base_url.empty()) return app_error(s, "an api_key app needs `api_base_url`");
  } else {
    return app_error(s, "type must be salesforce, servicenow, box, oauth2 or api_key (got '" + s.type + "')");
  }
  app.scopes = s.scopes.value_or(default_scopes);
  if (s.pkce) app.pkce = *s.pkce;
  if (!s.token_auth.empty()) {
    if (s.token_auth == "client_secret_basic") app.token_auth = TokenAuth::kClientSecretBasic;
    else if (s.token_auth == "client_secret_post") app.token_auth = TokenAuth::kClientSecretPost;
    else return app_error(s, "token_auth must be client_secret_basic or client_secret_post");
  }
  if (!s.identity_source.empty()) {
    if (s.identity_source == "userinfo") app.identity_source = IdentitySource::kUserinfo;
    else if (s.identity_source == "id_token") app.identity_source = IdentitySource::kIdToken;
    else if (s.identity_source == "api") app.identity_source = IdentitySource::kApi;
    else return app_error(s, "identity.source must be userinfo, id_token or api");
  }
  if (!s.identity_field.empty()) app.identity_field = s.identity_field;
  if (app.identity_source == IdentitySource::kApi && app.identity_url.empty()) return app_error(s, "identity.source api needs identity.url");
  if (!s.identity_check.empty()) {
    if (s.identity_check == "email_match") app.identity_check = IdentityCheck::kEmailMatch;
    else if (s.identity_check == "none") app.identity_check = IdentityCheck::kNone;
    else if (s.identity_check == "one_time_code") app.identity_check = IdentityCheck::kOneTimeCode;
    else return app_error(s, "identity_check must be email_match, none or one_time_code");
  }
  if (app.oauth2 && app.client_id.empty())
    return app_error(s, "needs client_id (or " + config::app_env_prefix(s.id) + "_CLIENT_ID)");
  return app;
}

}  // namespace

const char* identity_check_name(IdentityCheck check) {
  switch (check) {
    case IdentityCheck::kEmailMatch: return "email_match";
    case IdentityCheck::kNone: return "none";
    case IdentityCheck::kOneTimeCode: return "one_time_code";
  }
  return "none";
}

Result<std::map<std::string, App>> build_catalogue(const std::vector<config::AppSettings>& settings) {
  std::map<std::string, App> apps;
  for (const auto& s : settings) {
    auto app = resolve(s);
    if (!app) return app.status();
    apps.emplace(s.id, std::move(app).value());
  }
  return apps;
}

}  // namespace deputy::oauth
