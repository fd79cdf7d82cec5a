// How admins read connections and the audit log, in Slack (mrkdwn, people as mentions) and
// on the command line (plain text). Tokens are never part of a record shown here.
#pragma once

#include <string>

#include "store/connections.h"

namespace deputy::admin {

enum class Style { kSlack, kPlain };

// e.g. "Salesforce · alice@example.com · <@U0ALICE> · personal · active · connected 2026-11-25 10:00 UTC · last used never"
std::string describe_connection(const store::ConnectionRecord& record, const std::string& app_name, Style style);
// e.g. "2026-11-25 10:00:03 UTC · action · asked by <@U0ALICE> · as U0ALICE · salesforce · create opportunity · create: POST …"
std::string describe_audit(const store::AuditRecord& record, Style style);
std::string utc_time(int64_t unix_seconds, bool with_seconds = false);

}  // namespace deputy::admin
