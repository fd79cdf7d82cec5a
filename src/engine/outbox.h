// Messages to people. One that Slack does not take is not lost: when Slack is unavailable it
// waits in the queue as a delivery of its own and is sent again until Slack takes it.
#pragma once

#include <chrono>
#include <string>

#include "common/result.h"
#include "slack/blocks.h"
#include "slack/requests.h"
#include "store/inbox.h"

namespace deputy::slack {
class WebApi;
}

namespace deputy::engine {

class Outbox {
 public:
  static constexpr const char* kKind = "message";
  // Tries of a kept message; the workers wait 2 s longer after each, at most a minute, so
  // about an hour in all.
  static constexpr int kMaxAttempts = 70;

  Outbox(slack::WebApi& slack, store::Inbox& inbox);

  // Where the conversation asks, else in a direct message to the person; kept and sent again
  // when Slack is unavailable. Fails only when Slack refused it for good, or it could be
  // neither sent nor kept.
  Status send(const slack::Conversation& where, const slack::Message& message);
  // A direct message to one person (an approver, someone asked to connect).
  Status send_direct(const std::string& team_id, const std::string& user_id, const slack::Message& message);
  // The next try of a kept message; Unavailable asks the workers to try again later.
  Status resend(const store::ClaimedDelivery& delivery);

 private:
  Status attempt(const slack::Conversation& where, const slack::Message& message);

  slack::WebApi& slack_;
  store::Inbox& inbox_;
};

}  // namespace deputy::engine
