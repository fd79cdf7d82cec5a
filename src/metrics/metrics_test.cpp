#include "metrics/metrics.h"

#include <gtest/gtest.h>

namespace deputy::metrics {
namespace {

TEST(Metrics, LargeCountsAndGaugesAreWrittenInFull) {
  Registry registry;
  registry.describe("deputy_things_total", "counter", "Things.");
  registry.increment("deputy_things_total", {{"kind", "a"}}, 1234567);
  registry.increment("deputy_things_total", {{"kind", "a"}});
  registry.gauge_callback("deputy_backlog", [] { return std::vector<std::pair<Labels, double>>{{{{"state", "queued"}}, 2500001}}; });
  registry.observe("deputy_latency_seconds", {}, 0.25);
  const std::string text = registry.render();
  EXPECT_NE(text.find("deputy_things_total{kind=\"a\"} 1234568\n"), std::string::npos) << text;
  EXPECT_NE(text.find("deputy_backlog{state=\"queued\"} 2500001\n"), std::string::npos) << text;
  EXPECT_NE(text.find("deputy_latency_seconds_sum 0.25\n"), std::string::npos) << text;
  EXPECT_EQ(text.find("e+"), std::string::npos) << "no rounded exponent forms:\n" << text;
}

}  // namespace
}  // namespace deputy::metrics
