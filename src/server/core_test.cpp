#include "server/core.h"

#include <gtest/gtest.h>

#include "common/limits.h"

namespace deputy::server {
namespace {

TEST(OutboundConnections, AsManyAsAskedWhenTheOpenFileLimitAllows) {
  auto c = outbound_connections(1024, 65536);
  EXPECT_EQ(c.per_host, 1024);
  EXPECT_EQ(c.total, 2048) << "the app's and as many again for Slack and token endpoints";
  EXPECT_EQ(outbound_connections(8, 65536).total, 1024);
}

TEST(OutboundConnections, NeverMoreThanHalfTheOpenFiles) {
  // The usual soft default: 1,024 connections to one app would leave no file for anything else.
  auto c = outbound_connections(1024, 1024);
  EXPECT_EQ(c.total, 512);
  EXPECT_EQ(c.per_host, 512);
  EXPECT_EQ(outbound_connections(1024, 10).total, 16) << "a floor, however low the limit";
}

TEST(InboundConnections, WhatTheOpenFilesLeaveAfterOutboundCallsTheDatabaseAndAReserve) {
  config::Config cfg;
  // At the usual 1,024: half goes to outbound calls, then the database's and a reserve of 64.
  EXPECT_EQ(inbound_connections(cfg, 1024, 10), 1024u - 512u - 10u - 64u);
  EXPECT_EQ(inbound_connections(cfg, 65536, 10), 65536u - 2048u - 10u - 64u);
  EXPECT_EQ(inbound_connections(cfg, 100, 10), 16u) << "a floor, however low the limit";
  cfg.server.max_connections = 5000;
  EXPECT_EQ(inbound_connections(cfg, 1024, 10), 5000u) << "what the config asks for";
}

TEST(WorkerThreads, OnePerCoreByDefaultTwiceThatOnPostgres) {
  config::Config cfg;
  cfg.database = "sqlite:./deputy.db";
  EXPECT_EQ(worker_threads(cfg, 2), 2u);
  EXPECT_EQ(worker_threads(cfg, 8), 8u);
  EXPECT_EQ(worker_threads(cfg, 1), 2u) << "at least two: one can wait on a database read while the other works";
  EXPECT_EQ(worker_threads(cfg, 0), 2u) << "a machine that does not say";
  cfg.database = "postgresql://deputy@db/deputy";
  EXPECT_EQ(worker_threads(cfg, 2), 4u);
  cfg.server.workers = 3;
  EXPECT_EQ(worker_threads(cfg, 2), 3u) << "what the config asks for";
}

TEST(OpenFileLimit, RaisingItNeverLowersIt) {
  const size_t before = open_file_limit();
  EXPECT_GE(raise_open_file_limit(), before);
  EXPECT_EQ(open_file_limit(), raise_open_file_limit());
}

}  // namespace
}  // namespace deputy::server
