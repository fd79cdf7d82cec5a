#include "http/client.h"

#include <gtest/gtest.h>

namespace deputy::http {
namespace {

using namespace std::chrono_literals;

std::optional<std::chrono::seconds> wait_for(const std::string& value, std::chrono::seconds cap = 300s) {
  ClientResponse response;
  response.status = 429;
  if (!value.empty()) response.headers = {{"retry-after", value}};
  // Sun, 06 Nov 1994 08:49:37 GMT
  return response.retry_after(std::chrono::system_clock::from_time_t(784111777), cap);
}

TEST(RetryAfter, ReadsDelaySecondsAndCapsThem) {
  EXPECT_EQ(wait_for("120"), 120s);
  EXPECT_EQ(wait_for(" 7 "), 7s);
  EXPECT_EQ(wait_for("0"), 0s);
  EXPECT_EQ(wait_for("86400"), 300s) << "a day is capped";
  EXPECT_EQ(wait_for("99999999999999999999999"), 300s) << "too long to read is still capped, not zero";
}

TEST(RetryAfter, ReadsAnHttpDateAgainstNow) {
  EXPECT_EQ(wait_for("Sun, 06 Nov 1994 08:50:07 GMT"), 30s);
  EXPECT_EQ(wait_for("Sunday, 06-Nov-94 08:50:37 GMT"), 60s) << "RFC 850 form";
  EXPECT_EQ(wait_for("Sun Nov  6 08:49:47 1994"), 10s) << "asctime form";
  EXPECT_EQ(wait_for("Sun, 06 Nov 1994 08:00:00 GMT"), 0s) << "a date already past means now";
  EXPECT_EQ(wait_for("Mon, 07 Nov 1994 08:49:37 GMT", 60s), 60s);
}

TEST(RetryAfter, IgnoresWhatItCannotRead) {
  EXPECT_EQ(wait_for(""), std::nullopt);
  EXPECT_EQ(wait_for("-5"), std::nullopt);
  EXPECT_EQ(wait_for("1.5"), std::nullopt);
  EXPECT_EQ(wait_for("soon"), std::nullopt);
  EXPECT_EQ(wait_for("Sun, 06 Nov 1994 08:50:07 PST"), std::nullopt);
}

}  // namespace
}  // namespace deputy::http
