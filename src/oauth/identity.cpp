#include "oauth/identity.h"

#include <algorithm>

#include "common/encoding.h"
#include "slack/web_api.h"

namespace deputy::oauth {

Result<AppIdentity> read_app_identity(Protocol& protocol, const App& a, const TokenSet& tokens, const std::string& expected_nonce,
                                      int64_t now) {
  AppIdentity id;
  if (a.identity_source == IdentitySource::kIdToken && !tokens.id_token.empty()) {
    auto claims = jwt_claims(tokens.id_token);
    if (!claims) return claims.status();
    const auto& c = *claims;
    if (!a.issuer.empty() && c.value("iss", std::string()) != a.issuer) return InvalidArgument("id_token issuer does not match");
    bool audience_ok = c.contains("aud") && ((c["aud"].is_string() && c["aud"] == a.client_id) ||
                                             (c["aud"].is_array() && std::find(c["aud"].begin(), c["aud"].end(), a.client_id) != c["aud"].end()));
    if (!audience_ok) return InvalidArgument("id_token is not for this client");
    if (c.contains("exp") && c["exp"].is_number() && c["exp"].get<int64_t>() < now - 60) return InvalidArgument("id_token has expired");
    if (c.contains("nonce") && c["nonce"] != expected_nonce) return InvalidArgument("id_token nonce does not match");
    id.subject = c.value("sub", std::string());
    id.email = c.value("email", std::string());
    if (c.contains("email_verified") && c["email_verified"].is_boolean()) id.email_verified = c["email_verified"].get<bool>();
    id.account = json_pointer_string(c, "/" + a.identity_field);
    // Servers may keep scope claims out of the id_token when an access token can fetch them
    // (oidc-provider does by default); then userinfo has them, for the same subject.
    if ((id.account.empty() || id.email.empty()) && !a.userinfo_url.empty()) {
      auto info = protocol.get_json(a.userinfo_url, tokens.access_token);
      if (!info) return info.status();
      if (json_pointer_string(*info, "/sub") != id.subject) return InvalidArgument("userinfo is about a different subject than the id_token");
      if (id.email.empty()) id.email = json_pointer_string(*info, "/email");
      if (info->contains("email_verified") && (*info)["email_verified"].is_boolean()) id.email_verified = (*info)["email_verified"].get<bool>();
      if (id.account.empty()) id.account = json_pointer_string(*info, "/" + a.identity_field);
    }
  } else if (a.identity_source == IdentitySource::kApi) {
    auto json = protocol.get_json(a.identity_url, tokens.access_token);
    if (!json) return json.status();
    id.account = json_pointer_string(*json, a.identity_field);
    id.email = id.account.find('@') != std::string::npos ? id.account : "";
    id.subject = json_pointer_string(*json, "/id");
  } else {
    if (a.userinfo_url.empty()) return FailedPrecondition(a.display_name + " has no userinfo endpoint configured");
    auto json = protocol.get_json(a.userinfo_url, tokens.access_token);
    if (!json) return json.status();
    id.subject = json_pointer_string(*json, "/sub");
    if (id.subject.empty()) id.subject = json_pointer_string(*json, "/user_id");
    id.email = json_pointer_string(*json, "/email");
    if (json->contains("email_verified") && (*json)["email_verified"].is_boolean()) id.email_verified = (*json)["email_verified"].get<bool>();
    id.account = json_pointer_string(*json, "/" + a.identity_field);
  }
  if (id.account.empty()) id.account = !id.email.empty() ? id.email : id.subject;
  if (id.subject.empty()) id.subject = id.account;
  if (id.account.empty()) return InvalidArgument("the app did not say who logged in");
  return id;
}

Result<std::string> WebApiDirectory::email_of(const std::string& user_id) {
  auto profile = slack_.users_info(user_id);
  if (!profile) return profile.status();
  return profile->email;
}

SameEmail compare_emails(SlackDirectory& slack, const std::string& slack_user, const AppIdentity& identity) {
  auto slack_email = slack.email_of(slack_user);
  if (!slack_email && slack_email.status().code() == ErrorCode::kUnavailable) return SameEmail::kSlackUnavailable;
  // Slack refusing users.info for good leaves nothing to compare, as a profile without an email does.
  const std::string theirs = slack_email ? *slack_email : "";
  if (theirs.empty()) return SameEmail::kSlackProfileHasNone;
  if (identity.email.empty()) return SameEmail::kAppAccountHasNone;
  if (to_lower(theirs) != to_lower(identity.email) || !identity.email_verified) return SameEmail::kNo;
  return SameEmail::kYes;
}

}  // namespace deputy::oauth
