#include "oauth/protocol.h"

#include <gtest/gtest.h>

#include "common/encoding.h"
#include "testing/fake_http_client.h"

namespace deputy::oauth {
namespace {

TEST(Pkce, MatchesRfc7636AppendixB) {
  EXPECT_EQ(pkce_challenge("dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk"), "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM");
  auto p = make_pkce();
  EXPECT_EQ(p.verifier.size(), 43u);
  EXPECT_EQ(p.challenge, pkce_challenge(p.verifier));
  EXPECT_NE(make_pkce().verifier, p.verifier);
  EXPECT_EQ(random_token().size(), 43u) << "256 bits of state";
}

TEST(ExpiresIn, BelievesOnlyPlausibleLifetimes) {
  EXPECT_EQ(parse_expires_in(3600), 3600);
  EXPECT_EQ(parse_expires_in("3600"), 3600);
  EXPECT_EQ(parse_expires_in(" 7200 "), 7200);
  EXPECT_EQ(parse_expires_in(3599.9), 3599);
  EXPECT_FALSE(parse_expires_in(nullptr));
  EXPECT_FALSE(parse_expires_in("soon"));
  EXPECT_FALSE(parse_expires_in("-5"));
  EXPECT_FALSE(parse_expires_in(0));
  EXPECT_FALSE(parse_expires_in(-1));
  EXPECT_FALSE(parse_expires_in(1e300));
  EXPECT_FALSE(parse_expires_in(nlohmann::json::array()));
}

TEST(Jwt, ReadsClaims) {
  std::string payload = base64url_encode(R"({"sub":"alice","email":"alice@example.com"})");
  auto claims = jwt_claims("eyJhbGciOiJSUzI1NiJ9." + payload + ".sig");
  ASSERT_TRUE(claims);
  EXPECT_EQ((*claims)["email"], "alice@example.com");
  EXPECT_FALSE(jwt_claims("not-a-jwt"));
  EXPECT_FALSE(jwt_claims("a.!!!.c"));
}

struct ProtocolTest : ::testing::Test {
  testing::FakeHttpClient http;
  Protocol protocol{http};
  App app = [] {
    App a;
    a.id = "demo";
    a.client_id = "deputy client";
    a.client_secret = "s3cret:x";
    a.token_url = "http://idp.test/token";
    a.revoke_url = "http://idp.test/revoke";
    return a;
  }();
};

TEST_F(ProtocolTest, ExchangesACodeWithBasicAuthAndTheVerifier) {
  http.push(200, R"({"access_token":"at","refresh_token":"rt","token_type":"Bearer","expires_in":"60","id_token":"x.y.z"})");
  auto result = protocol.exchange_code(app, "the-code", "https://deputy.test/oauth/callback", "the-verifier");
  auto* tokens = std::get_if<TokenSet>(&result);
  ASSERT_TRUE(tokens);
  EXPECT_EQ(tokens->refresh_token, "rt");
  EXPECT_EQ(tokens->expires_in, 60);
  const auto& request = http.requests.at(0);
  auto form = parse_form(request.body).value();
  EXPECT_EQ(form_value(form, "grant_type"), "authorization_code");
  EXPECT_EQ(form_value(form, "code_verifier"), "the-verifier");
  EXPECT_FALSE(request.is_idempotent()) << "a code (or a rotating refresh token) is never sent twice";
  EXPECT_FALSE(form_value(form, "client_secret")) << "basic auth keeps the secret out of the body";
  bool basic = false;
  for (auto& [k, v] : request.headers) {
    if (k == "Authorization") basic = v == "Basic " + base64_encode("deputy%20client:s3cret%3Ax");
  }
  EXPECT_TRUE(basic) << "RFC 6749 2.3.1: id and secret form-encoded, then Basic";
}

TEST_F(ProtocolTest, PostAuthPutsTheClientInTheBody) {
  app.token_auth = TokenAuth::kClientSecretPost;
  http.push(200, R"({"access_token":"at"})");
  auto result = protocol.refresh(app, "rt");
  ASSERT_TRUE(std::holds_alternative<TokenSet>(result));
  auto form = parse_form(http.requests.at(0).body).value();
  EXPECT_EQ(form_value(form, "client_secret"), "s3cret:x");
  EXPECT_FALSE(std::get<TokenSet>(result).expires_in);
}

TEST_F(ProtocolTest, ClassifiesFailures) {
  auto failure = [&](int status, const std::string& body) {
    http.push(status, body);
    auto result = protocol.refresh(app, "rt");
    return std::get<TokenError>(result).failure;
  };
  EXPECT_EQ(failure(400, R"({"error":"invalid_grant"})"), TokenFailure::kTerminal);
  EXPECT_EQ(failure(401, R"({"error":"invalid_client"})"), TokenFailure::kTerminal);
  EXPECT_EQ(failure(400, R"({"error":"invalid_request"})"), TokenFailure::kRejected);
  EXPECT_EQ(failure(429, ""), TokenFailure::kTransient);
  EXPECT_EQ(failure(503, R"({"error":"temporarily_unavailable"})"), TokenFailure::kTransient);
  EXPECT_EQ(failure(200, "<html>oops</html>"), TokenFailure::kTransient);
  EXPECT_EQ(failure(200, R"({"token_type":"Bearer"})"), TokenFailure::kTransient);
  http.push_failure(Unavailable("timeout"));
  EXPECT_EQ(std::get<TokenError>(protocol.refresh(app, "rt")).failure, TokenFailure::kTransient);
}

TEST_F(ProtocolTest, RevokesPerRfc7009) {
  http.push(200, "");
  EXPECT_TRUE(protocol.revoke(app, "rt", "refresh_token").ok());
  auto form = parse_form(http.requests.at(0).body).value();
  EXPECT_EQ(form_value(form, "token"), "rt");
  EXPECT_EQ(form_value(form, "token_type_hint"), "refresh_token");
  http.push(503, "");
  EXPECT_FALSE(protocol.revoke(app, "rt", "refresh_token").ok());
  app.revoke_url.clear();
  EXPECT_EQ(protocol.revoke(app, "rt", "").code(), ErrorCode::kFailedPrecondition);
}

}  // namespace
}  // namespace deputy::oauth
