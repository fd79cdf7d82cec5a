#include "http/proxy.h"

#include <gtest/gtest.h>

namespace deputy::http {
namespace {

Url url(const char* text) { return parse_url(text).value(); }

TEST(Proxy, EachSchemeUsesItsOwnSettingThenAllProxy) {
  ProxySettings s;
  s.http_proxy = "http://plain-proxy:3128";
  s.https_proxy = "secure-proxy:8080";
  auto plain = proxy_for(url("http://app.example/x"), s);
  ASSERT_TRUE(plain && *plain);
  EXPECT_EQ((*plain)->host, "plain-proxy");
  EXPECT_EQ((*plain)->port, 3128);
  auto secure = proxy_for(url("https://app.example/x"), s);
  ASSERT_TRUE(secure && *secure);
  EXPECT_EQ((*secure)->host, "secure-proxy");
  EXPECT_EQ((*secure)->port, 8080);

  ProxySettings only_all;
  only_all.all_proxy = "http://everything:9";
  auto all = proxy_for(url("https://app.example/x"), only_all);
  ASSERT_TRUE(all && *all);
  EXPECT_EQ((*all)->host, "everything");

  auto none = proxy_for(url("https://app.example/x"), ProxySettings{});
  ASSERT_TRUE(none);
  EXPECT_FALSE(*none);
}

TEST(Proxy, APortlessProxyIsOnLibcurlsDefaultPortAndCredentialsBecomeBasicAuth) {
  ProxySettings s;
  s.https_proxy = "http://svc%40corp:p%3Ass@proxy.corp";
  auto p = proxy_for(url("https://app.example/x"), s);
  ASSERT_TRUE(p && *p) << p.status().message();
  EXPECT_EQ((*p)->port, 1080);
  EXPECT_EQ((*p)->authorization, "Basic c3ZjQGNvcnA6cDpzcw==");  // svc@corp:p:ss
}

TEST(Proxy, AProxyThatCannotBeUsedIsAnErrorNotADirectCall) {
  for (const char* setting : {"socks5://proxy:1080", "https://proxy:443", "http://"}) {
    ProxySettings s;
    s.https_proxy = setting;
    EXPECT_FALSE(proxy_for(url("https://app.example/x"), s)) << setting;
  }
}

TEST(Proxy, NoProxyMatchesHostsDomainsAddressesAndRanges) {
  const char* list = "localhost, .corp.example,internal.example 10.0.0.0/8,[fd00::]/8,192.168.1.7";
  EXPECT_TRUE(bypasses_proxy("localhost", list));
  EXPECT_TRUE(bypasses_proxy("LOCALHOST", list));
  EXPECT_TRUE(bypasses_proxy("crm.corp.example", list));
  EXPECT_TRUE(bypasses_proxy("corp.example", list));
  EXPECT_TRUE(bypasses_proxy("a.b.internal.example", list));
  EXPECT_TRUE(bypasses_proxy("10.20.30.40", list));
  EXPECT_TRUE(bypasses_proxy("fd12::1", list));
  EXPECT_TRUE(bypasses_proxy("192.168.1.7", list));
  EXPECT_FALSE(bypasses_proxy("notcorp.example", list)) << "a suffix only matches at a dot";
  EXPECT_FALSE(bypasses_proxy("xinternal.example", list));
  EXPECT_FALSE(bypasses_proxy("11.0.0.1", list));
  EXPECT_FALSE(bypasses_proxy("192.168.1.8", list));
  EXPECT_FALSE(bypasses_proxy("salesforce.com", list));
  EXPECT_TRUE(bypasses_proxy("anything.example", "*"));
  EXPECT_FALSE(bypasses_proxy("anything.example", ""));

  ProxySettings s;
  s.https_proxy = "proxy:3128";
  s.no_proxy = list;
  auto direct = proxy_for(url("https://crm.corp.example/x"), s);
  ASSERT_TRUE(direct);
  EXPECT_FALSE(*direct);
}

}  // namespace
}  // namespace deputy::http
