#include "oauth/apps.h"

#include <gtest/gtest.h>

namespace deputy::oauth {
namespace {

config::AppSettings settings(const std::string& id, const std::string& type) {
  config::AppSettings s;
  s.id = id;
  s.type = type;
  s.client_id = "client";
  s.line = 3;
  return s;
}

TEST(Catalogue, FillsSalesforceHostsAndDefaults) {
  auto sandbox = settings("sf", "salesforce");
  sandbox.login_host = "https://test.salesforce.com/";
  auto apps = build_catalogue({settings("salesforce", "salesforce"), sandbox});
  ASSERT_TRUE(apps) << apps.status().message();
  const App& prod = apps->at("salesforce");
  EXPECT_EQ(prod.authorize_url, "https://login.salesforce.com/services/oauth2/authorize");
  EXPECT_EQ(prod.revoke_url, "https://login.salesforce.com/services/oauth2/revoke");
  EXPECT_EQ(prod.api_base_url, "{instance_url}/services/data/v60.0");
  EXPECT_TRUE(prod.pkce);
  EXPECT_EQ(apps->at("sf").token_url, "https://test.salesforce.com/services/oauth2/token");
}

TEST(Catalogue, ServiceNowIsPerInstanceAndBoxHasNoPkce) {
  auto snow = settings("snow", "servicenow");
  snow.instance = "acme.service-now.com";
  auto apps = build_catalogue({snow, settings("box", "box")});
  ASSERT_TRUE(apps);
  EXPECT_EQ(apps->at("snow").authorize_url, "https://acme.service-now.com/oauth_auth.do");
  EXPECT_EQ(apps->at("snow").identity_source, IdentitySource::kApi);
  EXPECT_FALSE(apps->at("box").pkce);
  EXPECT_EQ(apps->at("box").identity_field, "/login");
  EXPECT_FALSE(build_catalogue({settings("snow", "servicenow")})) << "instance is required";
}

TEST(Catalogue, GenericAppsNeedDiscoveryOrUrls) {
  auto generic = settings("idp", "oauth2");
  auto missing = build_catalogue({generic});
  ASSERT_FALSE(missing);
  EXPECT_NE(missing.status().message().find("apps.idp (line 3)"), std::string::npos);
  generic.issuer = "http://127.0.0.1:4000";
  auto apps = build_catalogue({generic});
  ASSERT_TRUE(apps);
  EXPECT_TRUE(apps->at("idp").discover);
  EXPECT_EQ(apps->at("idp").identity_source, IdentitySource::kIdToken);
}

TEST(Catalogue, RefusesBadSettings) {
  auto bad = settings("x", "ldap");
  EXPECT_FALSE(build_catalogue({bad}));
  auto no_client = settings("sf", "salesforce");
  no_client.client_id.clear();
  EXPECT_FALSE(build_catalogue({no_client}));
  auto no_client_dashed = settings("my-crm", "salesforce");
  no_client_dashed.client_id.clear();
  auto refused = build_catalogue({no_client_dashed});
  ASSERT_FALSE(refused);
  EXPECT_NE(refused.status().message().find("DEPUTY_APP_MY_CRM_CLIENT_ID"), std::string::npos) << refused.status().message();
  auto check = settings("sf", "salesforce");
  check.identity_check = "trust_me";
  EXPECT_FALSE(build_catalogue({check}));
  auto key = settings("legacy", "api_key");
  key.api_base_url = "https://legacy.example.com";
  auto apps = build_catalogue({key});
  ASSERT_TRUE(apps);
  EXPECT_FALSE(apps->at("legacy").oauth2);
}

}  // namespace
}  // namespace deputy::oauth
