#include "admin/report.h"

#include <gtest/gtest.h>

namespace deputy::admin {
namespace {

TEST(Report, ConnectionsReadForPeopleAndNeverCarryTokens) {
  store::ConnectionRecord r;
  r.id = "c1";
  r.team_id = "T1";
  r.user_id = "U1";
  r.app = "salesforce";
  r.account = "a<b>@example.com";
  r.status = "needs_reauth";
  r.sealed = store::Blob{"SEALED-TOKEN-BYTES"};
  r.created_at = 1764028800;  // 2025-11-25 00:00 UTC
  EXPECT_EQ(describe_connection(r, "Salesforce", Style::kSlack),
            "*Salesforce* · a&lt;b&gt;@example.com · <@U1> · personal · needs re-login · connected 2025-11-25 00:00 UTC · last used never");
  std::string plain = describe_connection(r, "Salesforce", Style::kPlain);
  EXPECT_NE(plain.find("team T1 · id c1"), std::string::npos);
  EXPECT_EQ(plain.find("SEALED"), std::string::npos);
  r.mode = store::ConnectionMode::kShared;
  r.user_id.clear();
  EXPECT_NE(describe_connection(r, "Salesforce", Style::kPlain).find(" · shared · "), std::string::npos);
}

TEST(Report, AuditLinesSayWhoAskedAndAsWhom) {
  store::AuditRecord r{7, 1764028803, {"T1", "action", "U1", "U2", "servicenow", "c1", "approve request", "find: GET -> 200"}};
  EXPECT_EQ(describe_audit(r, Style::kSlack),
            "2025-11-25 00:00:03 UTC · *action* · by <@U1> · as <@U2> · servicenow · approve request · find: GET -&gt; 200");
  r.event.acting_as = "U1";
  EXPECT_EQ(describe_audit(r, Style::kPlain),
            "2025-11-25 00:00:03 UTC · action · by U1 · servicenow · approve request · find: GET -> 200 · team T1");
}

}  // namespace
}  // namespace deputy::admin
