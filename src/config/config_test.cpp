#include "config/config.h"

#include <gtest/gtest.h>

namespace deputy::config {
namespace {

TEST(Config, DefaultsMatchTheDesign) {
  auto c = load("", {});
  ASSERT_TRUE(c);
  EXPECT_EQ(c->listen, "127.0.0.1:3000");
  EXPECT_EQ(c->database, "sqlite:./deputy.db");
  EXPECT_EQ(c->effective_public_url(), "http://127.0.0.1:3000");
  EXPECT_EQ(c->slack.api_url, "https://slack.com/api");
  EXPECT_EQ(c->recipes_dir, "./recipes");
  EXPECT_EQ(c->keys_file, "./deputy.keys");
  EXPECT_EQ(c->missing_for_production().size(), 3u);
}

TEST(Config, EnvironmentOverridesTheFile) {
  auto c = load_from_string("listen: 0.0.0.0:8080\nslack:\n  signing_secret: from-file\n  bot_token: xoxb-file\n",
                            {{"DEPUTY_SLACK_SIGNING_SECRET", "from-env"}, {"DEPUTY_LISTEN", "127.0.0.1:9000"},
                             {"DEPUTY_PUBLIC_URL", "https://deputy.example.com/"}},
                            "test.yaml");
  ASSERT_TRUE(c) << c.status().message();
  EXPECT_EQ(c->slack.signing_secret, "from-env");
  EXPECT_EQ(c->slack.bot_token, "xoxb-file");
  EXPECT_EQ(c->listen, "127.0.0.1:9000");
  EXPECT_EQ(c->effective_public_url(), "https://deputy.example.com");
  EXPECT_TRUE(c->missing_for_production().empty());
}

TEST(Config, WorkersRunBelowTheAckPathUnlessSetOtherwise) {
  auto defaults = load_from_string("listen: 127.0.0.1:3000\n", {}, "deputy.yaml");
  ASSERT_TRUE(defaults);
  EXPECT_EQ(defaults->server.worker_nice, 10);
  auto same = load_from_string("server:\n  worker_nice: 0\n", {}, "deputy.yaml");
  ASSERT_TRUE(same) << same.status().message();
  EXPECT_EQ(same->server.worker_nice, 0);
  auto negative = load_from_string("server:\n  worker_nice: -5\n", {}, "deputy.yaml");
  ASSERT_FALSE(negative) << "raising priority needs privileges Deputy should not have";
  EXPECT_NE(negative.status().message().find("server.worker_nice"), std::string::npos) << negative.status().message();
  EXPECT_FALSE(load_from_string("server:\n  worker_nice: 20\n", {}, "deputy.yaml"));
}

TEST(Config, HeartbeatsAndTakeoverLeaveAProcessRoomToStopBeforeItIsTakenOver) {
  auto defaults = load_from_string("listen: 127.0.0.1:3000\n", {}, "deputy.yaml");
  ASSERT_TRUE(defaults);
  EXPECT_EQ(defaults->server.heartbeat_seconds, 2u);
  EXPECT_EQ(defaults->server.takeover_seconds, 10u);
  auto set = load_from_string("server:\n  heartbeat_seconds: 1\n  takeover_seconds: 4\n", {}, "deputy.yaml");
  ASSERT_TRUE(set) << set.status().message();
  EXPECT_EQ(set->server.takeover_seconds, 4u);
  auto tight = load_from_string("server:\n  heartbeat_seconds: 2\n  takeover_seconds: 7\n", {}, "deputy.yaml");
  ASSERT_FALSE(tight) << "a process must stop starting work two heartbeats before it can be taken over";
  EXPECT_NE(tight.status().message().find("server.takeover_seconds"), std::string::npos) << tight.status().message();
  EXPECT_NE(tight.status().message().find("deputy.yaml:3"), std::string::npos) << tight.status().message();
  EXPECT_FALSE(load_from_string("server:\n  heartbeat_seconds: 0\n", {}, "deputy.yaml"));
}

TEST(Config, LimitsOnJobsInFlightAndOutboundConnections) {
  auto defaults = load_from_string("listen: 127.0.0.1:3000\n", {}, "deputy.yaml");
  ASSERT_TRUE(defaults);
  EXPECT_EQ(defaults->server.jobs_in_flight, 2048u);
  EXPECT_EQ(defaults->server.outbound_connections_per_host, 1024u);
  EXPECT_EQ(defaults->server.outbound_ca_file, "");
  auto set = load_from_string("server:\n  jobs_in_flight: 64\n  outbound_connections_per_host: 8\n  outbound_ca_file: /etc/ca.pem\n", {},
                              "deputy.yaml");
  ASSERT_TRUE(set) << set.status().message();
  EXPECT_EQ(set->server.jobs_in_flight, 64u);
  EXPECT_EQ(set->server.outbound_connections_per_host, 8u);
  EXPECT_EQ(set->server.outbound_ca_file, "/etc/ca.pem");
  auto zero = load_from_string("server:\n  outbound_connections_per_host: 0\n", {}, "deputy.yaml");
  ASSERT_FALSE(zero);
  EXPECT_NE(zero.status().message().find("server.outbound_connections_per_host"), std::string::npos) << zero.status().message();
  EXPECT_FALSE(load_from_string("server:\n  jobs_in_flight: 0\n", {}, "deputy.yaml"));
}

TEST(Config, TheFrontDoorsCapAndDeadlines) {
  auto defaults = load_from_string("listen: 127.0.0.1:3000\n", {}, "deputy.yaml");
  ASSERT_TRUE(defaults);
  EXPECT_EQ(defaults->server.max_connections, 0u) << "from the open-file limit";
  EXPECT_EQ(defaults->server.header_timeout_seconds, 10u);
  EXPECT_EQ(defaults->server.read_timeout_seconds, 30u);
  auto set = load_from_string("server:\n  max_connections: 5000\n  header_timeout_seconds: 5\n", {}, "deputy.yaml");
  ASSERT_TRUE(set) << set.status().message();
  EXPECT_EQ(set->server.max_connections, 5000u);
  EXPECT_EQ(set->server.header_timeout_seconds, 5u);
  auto zero = load_from_string("server:\n  header_timeout_seconds: 0\n", {}, "deputy.yaml");
  ASSERT_FALSE(zero) << "a zero deadline would close every connection at once";
  EXPECT_NE(zero.status().message().find("server.header_timeout_seconds"), std::string::npos) << zero.status().message();
}

TEST(Config, ErrorsNameFileLineAndField) {
  auto c = load_from_string("listen: 127.0.0.1:3000\nserver:\n  workers: many\n", {}, "deputy.yaml");
  ASSERT_FALSE(c);
  EXPECT_NE(c.status().message().find("deputy.yaml:3"), std::string::npos) << c.status().message();
  EXPECT_NE(c.status().message().find("server.workers"), std::string::npos);
  auto unknown = load_from_string("lisen: x\n", {}, "deputy.yaml");
  ASSERT_FALSE(unknown);
  EXPECT_NE(unknown.status().message().find("lisen"), std::string::npos);
  EXPECT_FALSE(load_from_string("listen: nohost\n", {}, "x.yaml"));
  EXPECT_FALSE(load_from_string("listen: [\n", {}, "x.yaml"));
}

}  // namespace
}  // namespace deputy::config
