// deputy_oauth_events_total: what happened to logins and connections, by kind and app.
#pragma once

#include <string>

#include "metrics/metrics.h"

namespace deputy::oauth {

inline void describe_events(metrics::Registry& metrics) {
  metrics.describe("deputy_oauth_events_total", "counter", "Connection events by kind and app.");
}

inline void count_event(metrics::Registry& metrics, const std::string& event, const std::string& app) {
  metrics.increment("deputy_oauth_events_total", {{"event", event}, {"app", app}});
}

}  // namespace deputy::oauth
