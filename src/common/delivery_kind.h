// What a queued delivery is, as a type: each kind has one handler (engine/dispatch.h). The
// queue stores the kind's name as text, so the names never change.
#pragma once

#include <array>
#include <optional>
#include <string_view>
#include <utility>

namespace deputy {

enum class DeliveryKind {
  kSlashCommand,  // a /deputy command (slash_command)
  kEvent,         // an Events API event: a mention, a DM (event)
  kBlockActions,  // a button click (block_actions)
  kMessage,       // a message Slack did not take the first time, to send again (message)
  kJob,           // a job to drive again: resumed after a login or a decision (job)
};

inline constexpr std::array<std::pair<DeliveryKind, std::string_view>, 5> kDeliveryKindNames{{
    {DeliveryKind::kSlashCommand, "slash_command"},
    {DeliveryKind::kEvent, "event"},
    {DeliveryKind::kBlockActions, "block_actions"},
    {DeliveryKind::kMessage, "message"},
    {DeliveryKind::kJob, "job"},
}};

// The name stored in the queue.
constexpr const char* kind_name(DeliveryKind kind) {
  for (const auto& [k, name] : kDeliveryKindNames)
    if (k == kind) return name.data();
  return "unknown";
}

constexpr std::optional<DeliveryKind> delivery_kind(std::string_view stored) {
  for (const auto& [k, name] : kDeliveryKindNames)
    if (name == stored) return k;
  return std::nullopt;
}

}  // namespace deputy
