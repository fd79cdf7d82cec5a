// Who logged in at the app, and whether that is the Slack user the connect link was made for.
#pragma once

#include <cstdint>
#include <string>

#include "common/result.h"
#include "oauth/apps.h"
#include "oauth/protocol.h"

namespace deputy::slack {
class WebApi;
}

namespace deputy::oauth {

struct AppIdentity {
  std::string account;  // shown to people: the identity_field, else the email, else the subject
  std::string subject;
  std::string email;
  bool email_verified = true;
};

// From the id_token (its issuer, audience, expiry and nonce checked; userinfo fills what it
// leaves out), the app's own identity API, or userinfo, as the app is configured.
Result<AppIdentity> read_app_identity(Protocol& protocol, const App& app, const TokenSet& tokens, const std::string& expected_nonce,
                                      int64_t now);

// What Deputy asks Slack about a person when checking a login.
class SlackDirectory {
 public:
  virtual ~SlackDirectory() = default;
  // The email on the person's Slack profile; empty when Slack does not show it (the app
  // lacks users:read.email). Unavailable when Slack cannot answer now.
  virtual Result<std::string> email_of(const std::string& user_id) = 0;
};

// The directory as Slack's Web API answers it (users.info).
class WebApiDirectory final : public SlackDirectory {
 public:
  explicit WebApiDirectory(slack::WebApi& slack) : slack_(slack) {}
  Result<std::string> email_of(const std::string& user_id) override;

 private:
  slack::WebApi& slack_;
};

enum class SameEmail {
  kYes,
  kNo,  // another address, or one the app has not verified
  // Without an address on one side there is nothing to compare: the login goes through as
  // DESIGN.md's connect flow describes, still tied to the person by the state and the browser.
  kSlackProfileHasNone,  // the Slack app lacks users:read.email, or Slack refused users.info
  kAppAccountHasNone,
  kSlackUnavailable,  // not skipped for that: the login is refused, to be tried again
};
// identity_check: email_match.
SameEmail compare_emails(SlackDirectory& slack, const std::string& slack_user, const AppIdentity& identity);

}  // namespace deputy::oauth
