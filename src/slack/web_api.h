// Slack Web API client: bot token, JSON bodies, Retry-After on 429, bounded retries on
// 5xx and transport errors, ok:false surfaced as a Status with Slack's error code.
#pragma once

#include <nlohmann/json.hpp>

#include <chrono>
#include <functional>
#include <string>

#include "common/result.h"
#include "http/client.h"
#include "metrics/metrics.h"
#include "slack/blocks.h"

namespace deputy::slack {

struct WebApiSettings {
  std::string base_url = "https://slack.com/api";
  std::string bot_token;
  int max_attempts = 4;
  std::chrono::seconds max_retry_after{60};
  std::chrono::milliseconds first_backoff{250};
};

struct UserProfile {
  std::string id;
  std::string name;
  std::string real_name;
  std::string email;  // empty without the users:read.email scope
  std::string tz;
};

struct PostedMessage {
  std::string channel;
  std::string ts;
};

using Sleeper = std::function<void(std::chrono::milliseconds)>;

class WebApi {
 public:
  WebApi(http::Client& client, WebApiSettings settings, metrics::Registry* metrics, Sleeper sleeper = {});

  // Calls any method with a JSON body; returns the parsed reply when ok is true.
  Result<nlohmann::json> call(const std::string& method, const nlohmann::json& body);
  Result<nlohmann::json> call_form(const std::string& method, const std::vector<std::pair<std::string, std::string>>& fields);

  Result<PostedMessage> post_message(const std::string& channel, const Message& message, const std::string& thread_ts = "");
  Status post_ephemeral(const std::string& channel, const std::string& user, const Message& message,
                        const std::string& thread_ts = "");
  Status update(const std::string& channel, const std::string& ts, const Message& message);
  Result<UserProfile> users_info(const std::string& user);
  Result<std::string> open_direct_message(const std::string& user);
  // response_url: ephemeral in_channel=false; replace_original updates the message the action came from.
  Status respond(const std::string& response_url, const Message& message, bool replace_original = false,
                 bool ephemeral = true);

  // The same calls without holding the calling thread: one try each, answered on the HTTP
  // client's thread. What may pass (a 429, a 5xx, no answer) is Unavailable, and after a 429
  // its retry_after is the wait Slack asked for: the caller decides where to wait it out.
  using Replied = std::function<void(Result<nlohmann::json>)>;
  void start_call_json(const std::string& method, std::string body, Replied replied);
  void start_respond(const std::string& response_url, const Message& message, bool replace_original, bool ephemeral,
                     Replied replied);
  // A read method: Slack takes form fields for these, not JSON.
  void start_call_form(const std::string& method, const std::vector<std::pair<std::string, std::string>>& fields, Replied replied);
  using Profiled = std::function<void(Result<UserProfile>)>;
  void start_users_info(const std::string& user, Profiled profiled);

 private:
  Result<nlohmann::json> call_json(const std::string& method, const std::string& body);
  Result<nlohmann::json> send_with_retries(const std::string& method_label, const std::string& url,
                                           const std::string& body, const std::string& content_type,
                                           bool expect_ok_field);
  http::ClientRequest request_for(const std::string& url, const std::string& body, const std::string& content_type,
                                  bool expect_ok_field) const;
  // What one try's outcome means; `wait` is set for a try that should be made again later.
  Result<nlohmann::json> interpret(const std::string& method, http::ClientOutcome outcome, bool expect_ok_field,
                                   std::optional<std::chrono::milliseconds>& wait);
  void start(const std::string& method, const std::string& url, std::string body, const std::string& content_type,
             bool expect_ok_field, Replied replied);
  void count(const std::string& method, const std::string& outcome);

  http::Client& client_;
  WebApiSettings settings_;
  metrics::Registry* metrics_;
  Sleeper sleep_;
};

// A message as a JSON body: its text and blocks with the given fields (channel, ts, …).
std::string message_json(const Message& message, nlohmann::json fields);

}  // namespace deputy::slack
