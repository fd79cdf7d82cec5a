#include "slack/web_api.h"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <charconv>
#include <thread>

#include "common/encoding.h"

namespace deputy::slack {
namespace {

constexpr const char* kJson = "application/json; charset=utf-8";

std::chrono::milliseconds retry_after(const http::ClientResponse& response, std::chrono::seconds cap) {
  std::string value = response.header("Retry-After");
  int seconds = 1;
  if (!value.empty()) {
    auto [end, error] = std::from_chars(value.data(), value.data() + value.size(), seconds);
    if (error != std::errc() || seconds < 0) seconds = 1;
  }
  return std::chrono::seconds(std::min<int64_t>(seconds, cap.count()));
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

Result<nlohmann::json> WebApi::send_with_retries(const std::string& method, const std::string& url, const std::string& body,
                                                 const std::string& content_type, bool expect_ok_field) {
  if (settings_.bot_token.empty() && expect_ok_field) {
    count(method, "no_token");
    return FailedPrecondition("no Slack bot token configured (DEPUTY_SLACK_BOT_TOKEN)");
  }
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

  std::chrono::milliseconds backoff = settings_.first_backoff;
  Status last = Unavailable("no attempt made");
  for (int attempt = 1; attempt <= settings_.max_attempts; ++attempt) {
    auto response = client_.send(request);
    bool last_attempt = attempt == settings_.max_attempts;
    if (!response) {
      count(method, "transport_error");
      last = response.status();
      spdlog::warn("slack {}: {} (attempt {}/{})", method, last.message(), attempt, settings_.max_attempts);
      if (!last_attempt) sleep_(backoff);
      backoff *= 2;
      continue;
    }
    if (response->status == 429) {
      auto wait = retry_after(*response, settings_.max_retry_after);
      count(method, "rate_limited");
      spdlog::warn("slack {}: rate limited, waiting {} ms as Retry-After asks (attempt {}/{})", method, wait.count(), attempt,
                   settings_.max_attempts);
      last = Unavailable("Slack rate limit on " + method);
      if (!last_attempt) sleep_(wait);
      continue;
    }
    if (response->status >= 500) {
      count(method, "server_error");
      last = Unavailable("Slack " + method + " answered HTTP " + std::to_string(response->status));
      spdlog::warn("slack {}: HTTP {} (attempt {}/{})", method, response->status, attempt, settings_.max_attempts);
      if (!last_attempt) sleep_(backoff);
      backoff *= 2;
      continue;
    }
    if (response->status >= 400) {
      count(method, "http_error");
      spdlog::error("slack {}: HTTP {}", method, response->status);
      return InvalidArgument("Slack " + method + " answered HTTP " + std::to_string(response->status));
    }
    if (!expect_ok_field) {
      // response_url answers "ok" as text or {"ok":true}; any 2xx is success.
      count(method, "ok");
      return nlohmann::json::object();
    }
    auto parsed = nlohmann::json::parse(response->body, nullptr, false);
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
  spdlog::error("slack {}: giving up after {} attempts: {}", method, settings_.max_attempts, last.message());
  return last;
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

Result<UserProfile> WebApi::users_info(const std::string& user) {
  // Read methods take form fields; Slack accepts JSON bodies only for write methods.
  auto reply = call_form("users.info", {{"user", user}});
  if (!reply) return reply.status();
  const auto& u = (*reply)["user"];
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
