#include "metrics/metrics.h"

#include <gtest/gtest.h>
#include <sstream>

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

TEST(Metrics, SeriesHandlesAreTheSeriesTheLabelsName) {
  Registry registry;
  Registry::Counter& ok = registry.counter("deputy_requests_total", {{"route", "/a"}, {"status", "200"}});
  Registry::Histogram& latency = registry.histogram("deputy_latency_seconds", {{"route", "/a"}});
  ok.increment();
  // Series added later do not move the ones handed out.
  for (int i = 0; i < 100; ++i) registry.increment("deputy_requests_total", {{"route", "/a"}, {"status", std::to_string(300 + i)}});
  registry.increment("deputy_requests_total", {{"route", "/a"}, {"status", "200"}}, 2);
  ok.increment();
  EXPECT_EQ(&registry.counter("deputy_requests_total", {{"route", "/a"}, {"status", "200"}}), &ok);
  EXPECT_EQ(registry.counter_value("deputy_requests_total", {{"route", "/a"}, {"status", "200"}}), 4);
  EXPECT_EQ(registry.counter_value("deputy_requests_total", {{"route", "/a"}, {"status", "301"}}), 1);
  latency.observe(0.002);
  registry.observe("deputy_latency_seconds", {{"route", "/a"}}, 20);
  const std::string text = registry.render();
  EXPECT_NE(text.find("deputy_latency_seconds_bucket{route=\"/a\",le=\"0.0025\"} 1\n"), std::string::npos) << text;
  EXPECT_NE(text.find("deputy_latency_seconds_bucket{route=\"/a\",le=\"+Inf\"} 2\n"), std::string::npos) << text;
  EXPECT_NE(text.find("deputy_latency_seconds_count{route=\"/a\"} 2\n"), std::string::npos) << text;
}

}  // namespace
}  // namespace deputy::metrics

namespace deputy::metrics {
namespace {

TEST(Metrics, EverySampleCarriesTheProcessLabel) {
  Registry r;
  r.describe("deputy_calls_total", "counter", "Calls.");
  r.increment("deputy_calls_total", {{"method", "a"}});
  r.increment("deputy_plain_total", {});
  r.observe("deputy_latency_seconds", {{"route", "/x"}}, 0.002);
  r.gauge_callback("deputy_jobs", [] { return std::vector<std::pair<Labels, double>>{{{{"state", "queued"}}, 3}}; });
  r.set_common_label("process", "host-a:42");
  const std::string text = r.render();
  EXPECT_NE(text.find("deputy_calls_total{method=\"a\",process=\"host-a:42\"} 1\n"), std::string::npos) << text;
  EXPECT_NE(text.find("deputy_plain_total{process=\"host-a:42\"} 1\n"), std::string::npos) << text;
  EXPECT_NE(text.find("deputy_latency_seconds_bucket{route=\"/x\",process=\"host-a:42\",le=\"0.0025\"} 1\n"), std::string::npos) << text;
  EXPECT_NE(text.find("deputy_latency_seconds_count{route=\"/x\",process=\"host-a:42\"} 1\n"), std::string::npos) << text;
  EXPECT_NE(text.find("deputy_jobs{state=\"queued\",process=\"host-a:42\"} 3\n"), std::string::npos) << text;
  size_t samples = 0, labelled = 0;
  std::istringstream lines(text);
  for (std::string line; std::getline(lines, line);) {
    if (line.empty() || line[0] == '#') continue;
    ++samples;
    if (line.find("process=\"host-a:42\"") != std::string::npos) ++labelled;
  }
  EXPECT_EQ(labelled, samples);
}

}  // namespace
}  // namespace deputy::metrics
