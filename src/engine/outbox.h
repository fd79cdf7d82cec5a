// Messages to people. One that Slack does not take is not lost: when Slack is unavailable it
// waits in the queue as a delivery of its own and is sent again until Slack takes it.
#pragma once

#include <chrono>
#include "common/delivery_kind.h"
#include <functional>
#include <memory>
#include <string>

#include "common/clock.h"
#include "common/result.h"
#include "engine/executor.h"
#include "oauth/login_listener.h"
#include "slack/blocks.h"
#include "slack/requests.h"
#include "store/inbox.h"

namespace deputy::slack {
class WebApi;
}

namespace deputy::engine {

class Outbox final : public oauth::Messenger {
 public:
  static constexpr const char* kKind = kind_name(DeliveryKind::kMessage);
  // Tries of a kept message; the workers wait 2 s longer after each, at most a minute, so
  // about an hour in all.
  static constexpr int kMaxAttempts = 70;
  static constexpr std::chrono::seconds kKeepFor{3600};

  // `first_try` sends as soon as a message is written (in Deputy, one try, like `later_tries`); `later_tries`
  // sends kept ones, one call each, so a worker is never held long and the queue's waits
  // grow between tries.
  Outbox(slack::WebApi& first_try, slack::WebApi& later_tries, store::Inbox& inbox, const Clock& clock);

  // Where the conversation asks; if Slack refuses that for good (an expired response_url, a
  // channel Deputy is not in), in a direct message to the person. While Slack is
  // unavailable the message is kept, for at most `keep_for` (a Connect button no longer than
  // its link works). `sent` fails only when Slack refused it for good, or it could be
  // neither sent nor kept. Nothing waits while Slack answers: `sent` runs on the executor
  // (the workers) when there is one, else on the HTTP client's thread.
  using Sent = std::function<void(Status)>;
  void start_send(const slack::Conversation& where, const slack::Message& message, Sent sent,
                  std::chrono::seconds keep_for = kKeepFor);
  void set_executor(std::shared_ptr<Executor> executor) { executor_ = std::move(executor); }
  // As start_send(), for a message nothing waits on: a refusal is logged and the caller goes
  // on at once.
  void post(const slack::Conversation& where, const slack::Message& message, std::chrono::seconds keep_for = kKeepFor);
  // A direct message to one person (an approver, someone asked to connect).
  void post_direct(const std::string& team_id, const std::string& user_id, const slack::Message& message,
                   std::chrono::seconds keep_for = kKeepFor);
  // The login flow's messages (connected, failed, one more step).
  void send_direct(const std::string& team_id, const std::string& user_id, const slack::Message& message,
                   std::function<void()> then) override;

  // The next try of a kept message, without holding the calling thread; `sent` runs on the
  // HTTP client's thread. Unavailable asks the workers to try again later. One past its time
  // is dropped.
  void start_resend(const store::ClaimedDelivery& delivery, Sent sent);

 private:
  struct Sending;
  static void start_attempt(slack::WebApi& slack, const slack::Conversation& where, const slack::Message& message, Sent sent);
  // Refused for good where asked: whether to tell the person directly instead.
  static bool try_directly(const slack::Conversation& where, const Status& asked);
  // After the first try: done, refused, or kept in the queue for a later one.
  Status settle(const slack::Conversation& where, const slack::Message& message, std::chrono::seconds keep_for, const Status& sent);

  slack::WebApi& first_try_;
  slack::WebApi& later_tries_;
  store::Inbox& inbox_;
  const Clock& clock_;
  std::shared_ptr<Executor> executor_;
};

}  // namespace deputy::engine
