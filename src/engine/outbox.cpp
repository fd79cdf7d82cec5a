#include "engine/outbox.h"

#include <nlohmann/json.hpp>
#include <spdlog/spdlog.h>

#include "common/encoding.h"
#include "slack/web_api.h"

namespace deputy::engine {
namespace {

constexpr std::chrono::seconds kFirstRetry{2};

std::string kept_payload(const slack::Conversation& where, const slack::Message& message) {
  std::string payload = R"({"where":)" + slack::to_json(where) + R"(,"text":)";
  append_json_string(payload, message.text);
  payload += R"(,"blocks":)";
  message.blocks.append_json(payload);
  payload += '}';
  return payload;
}

}  // namespace

Outbox::Outbox(slack::WebApi& slack, store::Inbox& inbox) : slack_(slack), inbox_(inbox) {}

Status Outbox::attempt(const slack::Conversation& where, const slack::Message& message) {
  Status asked = slack::deliver(slack_, where, message);
  if (asked.ok()) return asked;
  const bool already_direct = where.via == slack::ReplyVia::kDirectThread && where.channel_id == where.user_id;
  if (already_direct || where.user_id.empty()) return asked;
  // A response_url lasts 30 minutes and a channel may no longer let Deputy in; the person
  // can still be told directly.
  spdlog::warn("answering {} where they asked failed ({}); sending a direct message", where.user_id, asked.message());
  auto direct = slack_.post_message(where.user_id, message);
  if (direct) return Status::Ok();
  // Either way failing for a passing reason is worth another try later.
  return asked.code() == ErrorCode::kUnavailable ? asked : direct.status();
}

Status Outbox::send(const slack::Conversation& where, const slack::Message& message) {
  Status sent = attempt(where, message);
  if (sent.ok()) return sent;
  if (sent.code() != ErrorCode::kUnavailable) {
    spdlog::error("Slack refused a message for {}: {}", where.user_id, sent.message());
    return sent;
  }
  if (Status kept = inbox_.enqueue(where.team_id, kKind, kept_payload(where, message), kFirstRetry); !kept.ok()) {
    spdlog::error("a message for {} could be neither sent ({}) nor kept ({})", where.user_id, sent.message(), kept.message());
    return sent;
  }
  spdlog::warn("Slack did not take a message for {} ({}); it is kept and will be sent again", where.user_id, sent.message());
  return Status::Ok();
}

Status Outbox::send_direct(const std::string& team_id, const std::string& user_id, const slack::Message& message) {
  slack::Conversation direct;
  direct.team_id = team_id;
  direct.user_id = user_id;
  direct.channel_id = user_id;
  direct.via = slack::ReplyVia::kDirectThread;
  return send(direct, message);
}

Status Outbox::resend(const store::ClaimedDelivery& delivery) {
  auto kept = nlohmann::json::parse(delivery.delivery.payload, nullptr, false);
  if (kept.is_discarded() || !kept.is_object() || !kept.contains("where")) return InvalidArgument("not a kept message");
  auto where = slack::conversation_from_json(kept["where"].dump());
  if (!where) return where.status();
  slack::Message message;
  message.text = kept.value("text", "");
  message.blocks = slack::Blocks::from_json(kept.value("blocks", nlohmann::json::array()));
  Status sent = attempt(*where, message);
  if (sent.ok()) spdlog::info("a kept message for {} was sent at try {}", where->user_id, delivery.attempts);
  return sent;
}

}  // namespace deputy::engine
