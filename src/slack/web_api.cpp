#include "slack/web_api.h"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <thread>

#include "common/encoding.h"

namespace deputy::slack {
namespace {

constexpr const char* kJson = "application/json; charset=utf-8";

// Slack always sends Retry-After with a 429; without one (or with 0), a second.
std::chrono::milliseconds retry_after(const http::ClientResponse& response, std::chrono::seconds cap) {
  auto asked = response.retry_after(std::chrono::system_clock::now(), cap).value_or(std::chrono::seconds(1));
  return std::max<std::chrono::milliseconds>(asked, std::chrono::seconds(1));
}

}  // namespace

std::string message_json(const Message& message, nlohmann::json fields) {
  fields["text"] = truncate_utf8(message.text, kMaxMessageText);
  std::string out = fields.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
  if (message.blocks.size() > 0) {
    // The blocks are already JSON text: they go in before the closing brace.
    out.pop_back();
    out += ",\"blocks\":";
    message.blocks.append_json(out);
    out += '}';
  }
  return out;
}

WebApi::WebApi(http::Client& client, WebApiSettings settings, metrics::Registry* metrics, Sleeper sleeper)
    : client_(client), settings_(std::move(settings)), metrics_(metrics), sleep_(std::move(sleeper)) {
  while (!settings_.base_url.empty() && settings_.base_url.back() == '/') settings_.base_url.pop_back();
  if (!sleep_) sleep_ = [](std::chrono::milliseconds d) { std::this_thread::sleep_for(d); };
}

void WebApi::count(const std::string& method, const std::string& outcome) {
  if (metrics_) metrics_->increment("deputy_slack_api_calls_total", {{"method", method}, {"outcome", outcome}});
}

http::ClientRequest WebApi::request_for(const std::string& url, const std::string& body, const std::string& content_type,
                                        bool expect_ok_field) const {
  http::ClientRequest request;
  request.method = "POST";
  request.url = url;
  request.body = body;
  request.headers = {{"Content-Type", content_type}};
  // Slack's calls may ride a kept-alive connection: a message sent twice after a dead reused
  // connection is the same trade the outbox already makes on a timeout, and a new TLS
  // connection for every message would cost each answer a round trip or two.
  request.idempotent = true;
  // response_url calls carry their own authority; the bot token goes only to the Web API.
  if (expect_ok_field) request.headers.emplace_back("Authorization", "Bearer " + settings_.bot_token);
  return request;
}

Result<nlohmann::json> WebApi::interpret(const std::string& method, http::ClientOutcome outcome, bool expect_ok_field,
                                         std::optional<std::chrono::milliseconds>& wait) {
  wait.reset();
  if (outcome.reached != http::Reached::kAnswered) {
    count(method, "transport_error");
    wait = std::chrono::milliseconds(0);
    return outcome.error;
  }
  const http::ClientResponse& response = outcome.response;
  if (response.status == 429) {
    wait = retry_after(response, settings_.max_retry_after);
    count(method, "rate_limited");
    return Unavailable("Slack rate limit on " + method).with_retry_after(*wait);
  }
  if (response.status >= 500) {
    count(method, "server_error");
    wait = std::chrono::milliseconds(0);
    return Unavailable("Slack " + method + " answered HTTP " + std::to_string(response.status));
  }
  if (response.status >= 400) {
    count(method, "http_error");
    spdlog::error("slack {}: HTTP {}", method, response.status);
    return InvalidArgument("Slack " + method + " answered HTTP " + std::to_string(response.status));
  }
  if (!expect_ok_field) {
    // response_url answers "ok" as text or {"ok":true}; any 2xx is success.
    count(method, "ok");
    return nlohmann::json::object();
  }
  auto parsed = nlohmann::json::parse(response.body, nullptr, false);
  if (parsed.is_discarded() || !parsed.is_object()) {
    count(method, "malformed");
    return Internal("Slack " + method + " answered with something that is not JSON");
  }
  if (!parsed.value("ok", false)) {
    std::string error = parsed.value("error", std::string("unknown_error"));
    count(method, "error");
    spdlog::error("slack {}: ok=false error={}", method, error);
    return InvalidArgument("Slack " + method + " failed: " + error);
  }
  count(method, "ok");
  return parsed;
}

Result<nlohmann::json> WebApi::send_with_retries(const std::string& method, const std::string& url, const std::string& body,
                                                 const std::string& content_type, bool expect_ok_field) {
  if (settings_.bot_token.empty() && expect_ok_field) {
    count(method, "no_token");
    return FailedPrecondition("no Slack bot token configured (DEPUTY_SLACK_BOT_TOKEN)");
  }
  const http::ClientRequest request = request_for(url, body, content_type, expect_ok_field);
  std::chrono::milliseconds backoff = settings_.first_backoff;
  Result<nlohmann::json> last = Unavailable("no attempt made");
  for (int attempt = 1; attempt <= settings_.max_attempts; ++attempt) {
    std::optional<std::chrono::milliseconds> wait;
    last = interpret(method, client_.call(request), expect_ok_field, wait);
    if (!wait) return last;
    const bool last_attempt = attempt == settings_.max_attempts;
    spdlog::warn("slack {}: {} (attempt {}/{})", method, last.status().message(), attempt, settings_.max_attempts);
    if (last_attempt) break;
    if (wait->count() > 0) {
      sleep_(*wait);  // as Retry-After asks
    } else {
      sleep_(backoff);
      backoff *= 2;
    }
  }
  if (settings_.max_attempts > 1)
    spdlog::error("slack {}: giving up after {} attempts: {}", method, settings_.max_attempts, last.status().message());
  return last;
}

void WebApi::start(const std::string& method, const std::string& url, std::string body, const std::string& content_type,
                   bool expect_ok_field, Replied replied) {
  if (settings_.bot_token.empty() && expect_ok_field) {
    count(method, "no_token");
    return replied(FailedPrecondition("no Slack bot token configured (DEPUTY_SLACK_BOT_TOKEN)"));
  }
  client_.start(request_for(url, body, content_type, expect_ok_field),
                [this, method, expect_ok_field, replied = std::move(replied)](http::ClientOutcome outcome) {
                  std::optional<std::chrono::milliseconds> wait;
                  auto result = interpret(method, std::move(outcome), expect_ok_field, wait);
                  if (wait) spdlog::warn("slack {}: {}", method, result.status().message());
                  replied(std::move(result));
                });
}

void WebApi::start_call_json(const std::string& method, std::string body, Replied replied) {
  start(method, settings_.base_url + "/" + method, std::move(body), kJson, true, std::move(replied));
}

void WebApi::start_respond(const std::string& response_url, const Message& message, bool replace_original, bool ephemeral,
                           Replied replied) {
  std::string body = message_json(
      message, {{"response_type", ephemeral ? "ephemeral" : "in_channel"}, {"replace_original", replace_original}});
  start("response_url", response_url, std::move(body), kJson, false, std::move(replied));
}

Result<nlohmann::json> WebApi::call(const std::string& method, const nlohmann::json& body) {
  return call_json(method, body.dump());
}

Result<nlohmann::json> WebApi::call_json(const std::string& method, const std::string& body) {
  return send_with_retries(method, settings_.base_url + "/" + method, body, kJson, true);
}

Result<nlohmann::json> WebApi::call_form(const std::string& method, const FormFields& fields) {
  return send_with_retries(method, settings_.base_url + "/" + method, encode_form(fields),
                           "application/x-www-form-urlencoded", true);
}

Result<PostedMessage> WebApi::post_message(const std::string& channel, const Message& message, const std::string& thread_ts) {
  nlohmann::json fields = {{"channel", channel}};
  if (!thread_ts.empty()) fields["thread_ts"] = thread_ts;
  auto reply = call_json("chat.postMessage", message_json(message, std::move(fields)));
  if (!reply) return reply.status();
  return PostedMessage{reply->value("channel", channel), reply->value("ts", std::string())};
}

Status WebApi::post_ephemeral(const std::string& channel, const std::string& user, const Message& message,
                              const std::string& thread_ts) {
  nlohmann::json fields = {{"channel", channel}, {"user", user}};
  if (!thread_ts.empty()) fields["thread_ts"] = thread_ts;
  auto reply = call_json("chat.postEphemeral", message_json(message, std::move(fields)));
  return reply ? Status::Ok() : reply.status();
}

Status WebApi::update(const std::string& channel, const std::string& ts, const Message& message) {
  auto reply = call_json("chat.update", message_json(message, {{"channel", channel}, {"ts", ts}}));
  return reply ? Status::Ok() : reply.status();
}

namespace {

Result<UserProfile> profile_from(const nlohmann::json& reply, const std::string& user) {
  const auto& u = reply["user"];
  if (!u.is_object()) return Internal("users.info reply has no user");
  UserProfile profile;
  profile.id = u.value("id", user);
  profile.name = u.value("name", std::string());
  profile.real_name = u.value("real_name", std::string());
  profile.tz = u.value("tz", std::string());
  if (u.contains("profile") && u["profile"].is_object()) {
    profile.email = u["profile"].value("email", std::string());
    if (profile.real_name.empty()) profile.real_name = u["profile"].value("real_name", std::string());
  }
  return profile;
}

}  // namespace

Result<UserProfile> WebApi::users_info(const std::string& user) {
  // Read methods take form fields; Slack accepts JSON bodies only for write methods.
  auto reply = call_form("users.info", {{"user", user}});
  if (!reply) return reply.status();
  return profile_from(*reply, user);
}

void WebApi::start_call_form(const std::string& method, const FormFields& fields, Replied replied) {
  start(method, settings_.base_url + "/" + method, encode_form(fields), "application/x-www-form-urlencoded", true, std::move(replied));
}

void WebApi::start_users_info(const std::string& user, Profiled profiled) {
  start_call_form("users.info", {{"user", user}}, [user, profiled = std::move(profiled)](Result<nlohmann::json> reply) {
    if (!reply) return profiled(reply.status());
    profiled(profile_from(*reply, user));
  });
}

Result<std::string> WebApi::open_direct_message(const std::string& user) {
  auto reply = call("conversations.open", {{"users", user}});
  if (!reply) return reply.status();
  if (!(*reply).contains("channel") || !(*reply)["channel"].is_object()) return Internal("conversations.open reply has no channel");
  return (*reply)["channel"].value("id", std::string());
}

Status WebApi::respond(const std::string& response_url, const Message& message, bool replace_original, bool ephemeral) {
  std::string body = message_json(
      message, {{"response_type", ephemeral ? "ephemeral" : "in_channel"}, {"replace_original", replace_original}});
  auto reply = send_with_retries("response_url", response_url, body, kJson, false);
  return reply ? Status::Ok() : reply.status();
}

}  // namespace deputy::slack
