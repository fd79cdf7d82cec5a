// How logins end, for whoever waits on them, and where the login flow's messages go.
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <string>

#include "slack/blocks.h"

namespace deputy::oauth {

struct Connected {
  std::string team_id;
  std::string user_id;
  std::string app;
  std::string job_id;
  std::string account;
};

// A login that ended without a connection.
struct FailedLogin {
  std::string team_id;
  std::string user_id;
  std::string app;
  std::string job_id;
  int64_t started_at = 0;  // when its Connect link was made
};

// Who hears how logins end (the job runner: it resumes or gives up the job parked for one).
class LoginListener {
 public:
  virtual ~LoginListener() = default;
  virtual void on_connected(const Connected& connected) = 0;
  // The job parked for the login is given up; returns its command if it was cancelled.
  virtual std::optional<std::string> on_login_failed(const FailedLogin& login) = 0;
};

// Where the flow's direct messages to people go (the outbox, so Slack being down loses none).
class Messenger {
 public:
  virtual ~Messenger() = default;
  // `then` (may be empty) runs once Slack has the message, or has refused it, or it is kept
  // to be sent again: whatever follows it in the conversation waits for that.
  virtual void send_direct(const std::string& team_id, const std::string& user_id, const slack::Message& message,
                           std::function<void()> then) = 0;
};

}  // namespace deputy::oauth
