// The app catalogue: Salesforce, ServiceNow, Box and generic OAuth2/OIDC entries, filled
// in from the `apps:` settings. Only OAuth2 apps can hold personal connections.
#pragma once

#include <chrono>
#include <map>
#include <string>
#include <vector>

#include "common/result.h"
#include "config/config.h"

namespace deputy::oauth {

enum class TokenAuth { kClientSecretBasic, kClientSecretPost };
enum class IdentitySource { kUserinfo, kIdToken, kApi };
enum class IdentityCheck { kEmailMatch, kNone, kOneTimeCode };

struct App {
  std::string id;
  std::string type;  // salesforce, servicenow, box, oauth2, api_key
  std::string display_name;
  bool oauth2 = true;
  std::string client_id;
  std::string client_secret;
  std::string issuer;  // expected `iss` (RFC 9207) and id_token issuer; empty: not checked
  std::string authorize_url;
  std::string token_url;
  std::string revoke_url;   // empty: the app cannot revoke (RFC 7009)
  std::string userinfo_url;
  std::string api_base_url;  // may contain {instance_url} from the token response (Salesforce)
  std::vector<std::string> scopes;
  bool pkce = true;
  bool discover = false;  // fill missing URLs from {issuer}/.well-known/openid-configuration
  TokenAuth token_auth = TokenAuth::kClientSecretBasic;
  IdentitySource identity_source = IdentitySource::kUserinfo;
  std::string identity_field = "email";
  std::string identity_url;
  IdentityCheck identity_check = IdentityCheck::kEmailMatch;
  std::string api_key;  // api_key apps only
  std::chrono::seconds timeout{30};  // the deadline of one API call
};

// Applies catalogue defaults and checks that each app is usable.
Result<std::map<std::string, App>> build_catalogue(const std::vector<config::AppSettings>& settings);

const char* identity_check_name(IdentityCheck check);

}  // namespace deputy::oauth
