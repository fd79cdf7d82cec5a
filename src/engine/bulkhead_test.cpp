#include "engine/bulkhead.h"

#include <gtest/gtest.h>

#include <vector>

namespace deputy::engine {
namespace {

using namespace std::chrono_literals;

struct BulkheadTest : ::testing::Test {
  FixedClock clock{1700000000};
  Bulkhead bulkhead{BulkheadLimits{3, 2}, clock};

  Bulkhead::Slot enter(const std::string& app, const std::string& person) {
    auto entered = bulkhead.enter(app, person);
    EXPECT_TRUE(std::holds_alternative<Bulkhead::Slot>(entered)) << app << " for " << person << " was turned away";
    return std::holds_alternative<Bulkhead::Slot>(entered) ? std::move(std::get<Bulkhead::Slot>(entered)) : Bulkhead::Slot();
  }
  std::optional<Bulkhead::Full> turned_away(const std::string& app, const std::string& person) {
    auto entered = bulkhead.enter(app, person);
    if (auto* full = std::get_if<Bulkhead::Full>(&entered)) return *full;
    return std::nullopt;
  }
};

TEST_F(BulkheadTest, AFullAppTurnsItsCallsAwayAndNoOneElses) {
  std::vector<Bulkhead::Slot> hanging;
  hanging.push_back(enter("crm", "T1:U1"));
  hanging.push_back(enter("crm", "T1:U2"));
  hanging.push_back(enter("crm", "T1:U3"));
  auto full = turned_away("crm", "T1:U4");
  ASSERT_TRUE(full);
  EXPECT_EQ(full->who, Bulkhead::Full::Who::kApp);
  EXPECT_EQ(bulkhead.in_flight_for_person("T1:U4"), 0u) << "a call turned away holds nothing";
  auto other_app = enter("files", "T1:U4");
  EXPECT_TRUE(other_app) << "another app's calls go on";
  hanging.front().leave();
  EXPECT_TRUE(enter("crm", "T1:U4")) << "a freed place is taken";
}

TEST_F(BulkheadTest, OnePersonsBurstTurnsAwayOnlyTheirOwnCalls) {
  auto a = enter("crm", "T1:U1");
  auto b = enter("files", "T1:U1");
  auto full = turned_away("crm", "T1:U1");
  ASSERT_TRUE(full);
  EXPECT_EQ(full->who, Bulkhead::Full::Who::kPerson);
  EXPECT_TRUE(enter("crm", "T1:U2")) << "someone else still gets in";
  EXPECT_TRUE(enter("crm", "T2:U1")) << "the same id in another workspace is another person";
}

TEST_F(BulkheadTest, SlotsFreeTheirPlaceOnceWhenMovedOrDestroyed) {
  {
    auto first = enter("crm", "T1:U1");
    Bulkhead::Slot moved = std::move(first);
    first.leave();  // moved from: frees nothing
    EXPECT_EQ(bulkhead.in_flight_for_app("crm"), 1u);
    moved.leave();
    moved.leave();
    EXPECT_EQ(bulkhead.in_flight_for_app("crm"), 0u);
    auto kept = enter("crm", "T1:U1");
  }
  EXPECT_EQ(bulkhead.in_flight_for_app("crm"), 0u);
  EXPECT_EQ(bulkhead.in_flight_for_person("T1:U1"), 0u);
}

TEST_F(BulkheadTest, TheWaitFollowsHowLongTheAppsCallsTake) {
  std::vector<Bulkhead::Slot> calls;
  for (int i = 0; i < 3; ++i) calls.push_back(enter("crm", "T1:U" + std::to_string(i)));
  auto quick = turned_away("crm", "T1:U9");
  ASSERT_TRUE(quick);
  EXPECT_GE(quick->wait, Bulkhead::kShortestWait);
  EXPECT_LE(quick->wait, Bulkhead::kShortestWait * 3 / 2) << "never shorter than a second, and spread by at most half";

  // The app hangs: nothing finishes for 20 s, so those turned away wait about that long.
  clock.advance(20s);
  auto hanging = turned_away("crm", "T1:U9");
  ASSERT_TRUE(hanging);
  EXPECT_GE(hanging->wait, 20s);
  EXPECT_LE(hanging->wait, 30s);
  clock.advance(60s);
  auto capped = turned_away("crm", "T1:U9");
  ASSERT_TRUE(capped);
  EXPECT_LE(capped->wait, Bulkhead::kLongestWait * 3 / 2);
}

TEST_F(BulkheadTest, AFullAppsCallsWaitInLineInMemoryAndGoInOrderAsPlacesFree) {
  Bulkhead lined{BulkheadLimits{2, 4, 2}, clock};
  std::vector<std::string> admitted;
  std::vector<Bulkhead::Slot> places;
  auto in_line = [&](const std::string& who) {
    return [&, who](Bulkhead::Slot slot) {
      admitted.push_back(who);
      places.push_back(std::move(slot));
    };
  };
  auto first = lined.enter("crm", "T1:U1", in_line("first"));
  auto second = lined.enter("crm", "T1:U2", in_line("second"));
  ASSERT_TRUE(std::holds_alternative<Bulkhead::Slot>(first));
  ASSERT_TRUE(std::holds_alternative<Bulkhead::Slot>(second));
  EXPECT_TRUE(std::holds_alternative<Bulkhead::Waiting>(lined.enter("crm", "T1:U3", in_line("third"))));
  EXPECT_TRUE(std::holds_alternative<Bulkhead::Waiting>(lined.enter("crm", "T1:U4", in_line("fourth"))));
  EXPECT_EQ(lined.waiting_for_app("crm"), 2u);
  EXPECT_EQ(lined.in_flight_for_person("T1:U3"), 1u) << "a call in line counts against its person";
  auto past_the_line = lined.enter("crm", "T1:U5", in_line("fifth"));
  ASSERT_TRUE(std::holds_alternative<Bulkhead::Full>(past_the_line)) << "the line is short: past it, the queue";
  EXPECT_EQ(std::get<Bulkhead::Full>(past_the_line).who, Bulkhead::Full::Who::kApp);
  EXPECT_TRUE(std::holds_alternative<Bulkhead::Full>(lined.enter("crm", "T1:U6"))) << "without a callback, no line";
  EXPECT_TRUE(admitted.empty());

  std::get<Bulkhead::Slot>(first).leave();
  EXPECT_EQ(admitted, (std::vector<std::string>{"third"})) << "the freed place goes to the first in line";
  EXPECT_EQ(lined.in_flight_for_app("crm"), 2u);
  EXPECT_EQ(lined.waiting_for_app("crm"), 1u);
  places.front().leave();
  EXPECT_EQ(admitted, (std::vector<std::string>{"third", "fourth"}));
  EXPECT_EQ(lined.in_flight_for_person("T1:U3"), 0u);
  std::get<Bulkhead::Slot>(second).leave();
  places.back().leave();
  EXPECT_EQ(lined.in_flight_for_app("crm"), 0u);
  EXPECT_TRUE(std::holds_alternative<Bulkhead::Slot>(lined.enter("crm", "T1:U5", in_line("fifth")))) << "an empty line: straight in";
}

TEST_F(BulkheadTest, ANewCallNeverTakesAFreedPlacePastThoseInLine) {
  Bulkhead lined{BulkheadLimits{1, 4, 4}, clock};
  std::vector<Bulkhead::Slot> places;
  auto keep = [&](Bulkhead::Slot slot) { places.push_back(std::move(slot)); };
  auto only = lined.enter("crm", "T1:U1", keep);
  ASSERT_TRUE(std::holds_alternative<Bulkhead::Slot>(only));
  ASSERT_TRUE(std::holds_alternative<Bulkhead::Waiting>(lined.enter("crm", "T1:U2", keep)));
  EXPECT_TRUE(std::holds_alternative<Bulkhead::Waiting>(lined.enter("crm", "T1:U3", keep)));
  std::get<Bulkhead::Slot>(only).leave();
  ASSERT_EQ(places.size(), 1u);
  EXPECT_TRUE(std::holds_alternative<Bulkhead::Waiting>(lined.enter("crm", "T1:U4", keep))) << "U3 waits ahead of it";
  // Each place left hands the next one in line over (into `places`), until the line is empty.
  while (!places.empty()) {
    Bulkhead::Slot next = std::move(places.back());
    places.pop_back();
    next.leave();
  }
  EXPECT_EQ(lined.waiting_for_app("crm"), 0u);
  EXPECT_EQ(lined.in_flight_for_app("crm"), 0u);
}

TEST_F(BulkheadTest, ThePersonsLimitCountsBeforeTheAppsLine) {
  Bulkhead lined{BulkheadLimits{1, 2, 8}, clock};
  auto keep = [](Bulkhead::Slot) {};
  auto held = lined.enter("crm", "T1:U1", keep);
  ASSERT_TRUE(std::holds_alternative<Bulkhead::Slot>(held));
  ASSERT_TRUE(std::holds_alternative<Bulkhead::Waiting>(lined.enter("crm", "T1:U1", keep)));
  auto third = lined.enter("crm", "T1:U1", keep);
  ASSERT_TRUE(std::holds_alternative<Bulkhead::Full>(third));
  EXPECT_EQ(std::get<Bulkhead::Full>(third).who, Bulkhead::Full::Who::kPerson) << "one person cannot fill the line";
}

}  // namespace
}  // namespace deputy::engine
