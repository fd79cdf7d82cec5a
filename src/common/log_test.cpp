#include "common/log.h"

#include <gtest/gtest.h>

namespace deputy::log {
namespace {

TEST(LogRedaction, MasksTokensAndSecrets) {
  std::string out = redact("token xoxb-1234567890-abcdefghij and Authorization: Bearer eyJhbGciOi.abc.def end");
  EXPECT_EQ(out.find("1234567890-abcdefghij"), std::string::npos);
  EXPECT_EQ(out.find("eyJhbGciOi"), std::string::npos);
  EXPECT_NE(out.find("end"), std::string::npos);
  std::string form = redact("grant_type=authorization_code&code=SplxlOBeZQQYbYS6WxSbIA&code_verifier=dBjftJeZ4CVP&client_secret=s3cr3t");
  EXPECT_EQ(form.find("SplxlOBeZQQYbYS6WxSbIA"), std::string::npos);
  EXPECT_EQ(form.find("dBjftJeZ4CVP"), std::string::npos);
  EXPECT_EQ(form.find("s3cr3t"), std::string::npos);
  std::string json = redact(R"({"access_token":"at-123","refresh_token":"rt-456"})");
  EXPECT_EQ(json.find("at-123"), std::string::npos);
  EXPECT_EQ(json.find("rt-456"), std::string::npos);
}

TEST(LogRedaction, LeavesOrdinaryTextAlone) {
  EXPECT_EQ(redact("delivery 42 failed: channel_not_found"), "delivery 42 failed: channel_not_found");
}

}  // namespace
}  // namespace deputy::log
