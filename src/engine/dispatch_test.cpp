#include "engine/dispatch.h"

#include <gtest/gtest.h>

#include <optional>

namespace deputy::engine {
namespace {

store::ClaimedDelivery delivery_of(const std::string& kind) { return store::ClaimedDelivery{7, 1, store::Delivery{"T1", kind, "{}", ""}}; }

TEST(DeliveryKind, NamesAreTheOnesStoredInTheQueue) {
  EXPECT_STREQ(kind_name(DeliveryKind::kSlashCommand), "slash_command");
  EXPECT_STREQ(kind_name(DeliveryKind::kEvent), "event");
  EXPECT_STREQ(kind_name(DeliveryKind::kBlockActions), "block_actions");
  EXPECT_STREQ(kind_name(DeliveryKind::kMessage), "message");
  EXPECT_STREQ(kind_name(DeliveryKind::kJob), "job");
  for (const auto& [kind, name] : kDeliveryKindNames) EXPECT_EQ(delivery_kind(name), kind);
  EXPECT_EQ(delivery_kind("Job"), std::nullopt) << "exactly as stored";
  EXPECT_EQ(delivery_kind("view_submission"), std::nullopt);
}

TEST(Dispatch, EachKindGoesToItsOwnHandler) {
  Dispatch dispatch;
  std::vector<std::string> seen;
  for (const auto& [kind, name] : kDeliveryKindNames) {
    dispatch.on(kind, [&seen, name = std::string(name)](const store::ClaimedDelivery& d, Workers::Finish finish) {
      seen.push_back(name + ":" + d.delivery.kind);
      finish(Status::Ok());
    });
  }
  EXPECT_TRUE(dispatch.missing().empty());
  for (const auto& [kind, name] : kDeliveryKindNames) dispatch(delivery_of(std::string(name)), [](Status s) { EXPECT_TRUE(s.ok()); });
  EXPECT_EQ(seen, (std::vector<std::string>{"slash_command:slash_command", "event:event", "block_actions:block_actions",
                                            "message:message", "job:job"}));
}

TEST(Dispatch, AnUnknownOrUnhandledKindFailsItsDeliveryAndIsNotRoutedAsACommand) {
  Dispatch dispatch;
  int commands = 0;
  dispatch.on(DeliveryKind::kSlashCommand, [&](const store::ClaimedDelivery&, Workers::Finish finish) {
    ++commands;
    finish(Status::Ok());
  });
  EXPECT_EQ(dispatch.missing().size(), 4u);
  for (const char* kind : {"job", "slash_command ", "", "SLASH_COMMAND"}) {
    std::optional<Status> outcome;
    dispatch(delivery_of(kind), [&](Status s) { outcome = s; });
    ASSERT_TRUE(outcome) << kind;
    EXPECT_EQ(outcome->code(), ErrorCode::kInvalidArgument) << "'" << kind << "' is not retried";
  }
  EXPECT_EQ(commands, 0);
}

TEST(Dispatch, ASecondHandlerForAKindIsRefused) {
  Dispatch dispatch;
  dispatch.on(DeliveryKind::kJob, [](const store::ClaimedDelivery&, Workers::Finish) {});
  EXPECT_THROW(dispatch.on(DeliveryKind::kJob, [](const store::ClaimedDelivery&, Workers::Finish) {}), std::logic_error);
}

}  // namespace
}  // namespace deputy::engine
