#include "http/url.h"

#include <gtest/gtest.h>

namespace deputy::http {
namespace {

TEST(Url, ReadsWhereToConnectAndWhatToAsk) {
  auto u = parse_url("HTTPS://Api.Example.COM/services/data?q=a%20b#frag");
  ASSERT_TRUE(u) << u.status().message();
  EXPECT_EQ(u->scheme, "https");
  EXPECT_EQ(u->host, "api.example.com");
  EXPECT_EQ(u->port, 443);
  EXPECT_EQ(u->target, "/services/data?q=a%20b");
  EXPECT_EQ(u->authority(), "api.example.com");
  EXPECT_EQ(u->origin(), "https://api.example.com");

  auto v6 = parse_url("http://[::1]:8080");
  ASSERT_TRUE(v6) << v6.status().message();
  EXPECT_EQ(v6->host, "::1");
  EXPECT_EQ(v6->port, 8080);
  EXPECT_EQ(v6->target, "/");
  EXPECT_EQ(v6->authority(), "[::1]:8080");

  auto query_only = parse_url("http://127.0.0.1:3000?x=1");
  ASSERT_TRUE(query_only);
  EXPECT_EQ(query_only->target, "/?x=1");
}

TEST(Url, RefusesWhatItCannotUse) {
  for (const char* bad : {"ftp://host/x", "//host/x", "http://", "http://user:pw@host/", "http://host:0/", "http://host:65536/",
                          "http://host:80x/", "http://ho st/", "http://host/a b", "http://[::1/"}) {
    EXPECT_FALSE(parse_url(bad)) << bad;
  }
}

TEST(Url, OriginOfTextNamesNoPathOrQuery) {
  EXPECT_EQ(origin_of("https://hooks.slack.com/commands/T1/secret?token=x"), "https://hooks.slack.com");
  EXPECT_EQ(origin_of("https://host?token=x"), "https://host");
  EXPECT_EQ(origin_of("http://user:secret@host:8080/x"), "http://host:8080");
}

}  // namespace
}  // namespace deputy::http
