#include "engine/outbox.h"

#include <algorithm>

#include <nlohmann/json.hpp>
#include <spdlog/spdlog.h>

#include "common/encoding.h"
#include "slack/web_api.h"

namespace deputy::engine {
namespace {

constexpr std::chrono::seconds kFirstRetry{2};

std::string kept_payload(const slack::Conversation& where, const slack::Message& message, int64_t expires_at) {
  std::string payload = R"({"where":)" + slack::to_json(where) + R"(,"expires_at":)" + std::to_string(expires_at) + R"(,"text":)";
  append_json_string(payload, message.text);
  payload += R"(,"blocks":)";
  message.blocks.append_json(payload);
  payload += '}';
  return payload;
}

}  // namespace

Outbox::Outbox(slack::WebApi& first_try, slack::WebApi& later_tries, store::Inbox& inbox, const Clock& clock)
    : first_try_(first_try), later_tries_(later_tries), inbox_(inbox), clock_(clock) {}

bool Outbox::try_directly(const slack::Conversation& where, const Status& asked) {
  // Unavailable may still have reached Slack (a timeout): the same route is tried again
  // later rather than a second copy sent somewhere else now.
  if (asked.ok() || asked.code() == ErrorCode::kUnavailable || where.user_id.empty()) return false;
  const bool top_of_direct_messages = where.via == slack::ReplyVia::kDirectMessage && where.thread_ts.empty();
  if (top_of_direct_messages) return false;
  // Refused for good where asked (a response_url lasts 30 minutes, a channel may no longer
  // let Deputy in): the person can still be told directly.
  spdlog::warn("answering {} where they asked was refused ({}); sending a direct message", where.user_id, asked.message());
  return true;
}

Status Outbox::settle(const slack::Conversation& where, const slack::Message& message, std::chrono::seconds keep_for,
                      const Status& sent) {
  if (sent.ok()) return sent;
  if (sent.code() != ErrorCode::kUnavailable) {
    spdlog::error("Slack refused a message for {}: {}", where.user_id, sent.message());
    return sent;
  }
  const int64_t expires_at = clock_.unix_seconds() + keep_for.count();
  // As long as Slack asked (a rate limit), else a short while.
  const auto wait = std::max<std::chrono::seconds>(kFirstRetry, std::chrono::ceil<std::chrono::seconds>(sent.retry_after()));
  if (Status kept = inbox_.enqueue(where.team_id, kKind, kept_payload(where, message, expires_at), wait); !kept.ok()) {
    spdlog::error("a message for {} could be neither sent ({}) nor kept ({})", where.user_id, sent.message(), kept.message());
    return sent;
  }
  spdlog::warn("Slack did not take a message for {} ({}); it is kept and will be sent again", where.user_id, sent.message());
  return Status::Ok();
}

struct Outbox::Sending {
  slack::Conversation where;
  slack::Message message;
  std::chrono::seconds keep_for;
  Sent sent;
};

void Outbox::start_send(const slack::Conversation& where, const slack::Message& message, Sent sent, std::chrono::seconds keep_for) {
  auto sending = std::make_shared<Sending>(Sending{where, message, keep_for, std::move(sent)});
  // Keeping a message is a database write: it is the executor's to do, not the client's loop.
  auto settled = [this, sending, executor = executor_](Status asked) {
    auto finish = [this, sending, asked = std::move(asked)] {
      sending->sent(settle(sending->where, sending->message, sending->keep_for, asked));
    };
    if (executor) executor->post(std::move(finish));
    else finish();
  };
  start_attempt(first_try_, sending->where, sending->message, std::move(settled));
}

void Outbox::start_attempt(slack::WebApi& slack, const slack::Conversation& where, const slack::Message& message, Sent sent) {
  slack::start_delivery(slack, where, message, [&slack, where, message, sent = std::move(sent)](Status asked) mutable {
    if (!try_directly(where, asked)) return sent(std::move(asked));
    slack.start_call_json("chat.postMessage", slack::message_json(message, {{"channel", where.user_id}}),
                          [sent = std::move(sent)](Result<nlohmann::json> direct) mutable {
                            sent(direct ? Status::Ok() : direct.status());
                          });
  });
}

namespace {

slack::Conversation direct_messages_with(const std::string& team_id, const std::string& user_id) {
  slack::Conversation direct;
  direct.team_id = team_id;
  direct.user_id = user_id;
  direct.channel_id = user_id;  // posting to a user id lands in the app's direct messages
  direct.via = slack::ReplyVia::kDirectMessage;
  return direct;
}

}  // namespace

void Outbox::post(const slack::Conversation& where, const slack::Message& message, std::chrono::seconds keep_for) {
  // settle() has logged a refusal and kept what may pass; nothing is left to do with it.
  start_send(where, message, [](Status) {}, keep_for);
}

void Outbox::post_direct(const std::string& team_id, const std::string& user_id, const slack::Message& message,
                         std::chrono::seconds keep_for) {
  post(direct_messages_with(team_id, user_id), message, keep_for);
}

void Outbox::send_direct(const std::string& team_id, const std::string& user_id, const slack::Message& message,
                         std::function<void()> then) {
  start_send(direct_messages_with(team_id, user_id), message, [then = std::move(then)](Status) {
    if (then) then();
  });
}

void Outbox::start_resend(const store::ClaimedDelivery& delivery, Sent sent) {
  auto kept = nlohmann::json::parse(delivery.delivery.payload, nullptr, false);
  if (kept.is_discarded() || !kept.is_object() || !kept.contains("where")) return sent(InvalidArgument("not a kept message"));
  auto where = slack::conversation_from_json(kept["where"].dump());
  if (!where) return sent(where.status());
  if (clock_.unix_seconds() > kept.value("expires_at", int64_t{0})) {
    spdlog::warn("a kept message for {} is past its time and was dropped unsent", where->user_id);
    return sent(Status::Ok());
  }
  slack::Message message;
  message.text = kept.value("text", "");
  message.blocks = slack::Blocks::from_json(kept.value("blocks", nlohmann::json::array()));
  start_attempt(later_tries_, *where, message, [user = where->user_id, attempts = delivery.attempts, sent = std::move(sent)](Status result) {
    if (result.ok()) spdlog::info("a kept message for {} was sent at try {}", user, attempts);
    sent(std::move(result));
  });
}

}  // namespace deputy::engine
