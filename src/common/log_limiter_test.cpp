#include "common/log_limiter.h"

#include <gtest/gtest.h>

namespace deputy::log {
namespace {

using namespace std::chrono_literals;
constexpr int kWarn = 3;
constexpr int kInfo = 2;

class LogLimiterTest : public ::testing::Test {
 protected:
  Limiter::Time t0 = Limiter::Time{} + 1h;

  // Offers `lines` copies of a line spread evenly over `over`, returns how many were admitted.
  size_t offer(Limiter& limiter, std::string_view text, size_t lines, std::chrono::milliseconds over, Limiter::Time from,
               int level = kWarn) {
    size_t admitted = 0;
    for (size_t i = 0; i < lines; ++i) {
      auto at = from + over * i / lines;
      if (limiter.admit(level, text, text.size() + 30, at)) ++admitted;
    }
    return admitted;
  }
};

TEST_F(LogLimiterTest, OneMessageIsWrittenAtMostAHundredTimesASecond) {
  Limiter limiter;
  EXPECT_EQ(offer(limiter, "accept failed: Too many open files", 100000, 1000ms, t0), 100u);
  // The next second has its own hundred.
  EXPECT_EQ(offer(limiter, "accept failed: Too many open files", 1000, 1000ms, t0 + 1s), 100u);
}

TEST_F(LogLimiterTest, WhatWasHeldBackIsToldOnceASummaryPeriodWithItsCount) {
  Limiter limiter;
  ASSERT_EQ(offer(limiter, "accept failed: Too many open files", 4337520, 9900ms, t0), 1000u);
  EXPECT_TRUE(limiter.summaries(t0 + 5s).empty()) << "not due before 10 s";
  auto told = limiter.summaries(t0 + 10s);
  ASSERT_EQ(told.size(), 1u);
  EXPECT_EQ(told[0].level, kWarn);
  EXPECT_NE(told[0].text.find("\"accept failed: Too many open files\" repeated 4,336,520 times in the last"), std::string::npos)
      << told[0].text;
  EXPECT_TRUE(limiter.summaries(t0 + 11s).empty()) << "told once";
  EXPECT_TRUE(limiter.summaries(t0 + 30s).empty()) << "nothing more was held back";
}

TEST_F(LogLimiterTest, LinesThatDifferOnlyInTheirNumbersAreOneKind) {
  EXPECT_EQ(Limiter::kind_of(kWarn, "delivery 42 failed"), Limiter::kind_of(kWarn, "delivery 4711 failed"));
  EXPECT_NE(Limiter::kind_of(kWarn, "delivery 42 failed"), Limiter::kind_of(kInfo, "delivery 42 failed"));
  EXPECT_NE(Limiter::kind_of(kWarn, "delivery 42 failed"), Limiter::kind_of(kWarn, "delivery 42 answered"));
  Limiter limiter;
  size_t admitted = 0;
  for (int i = 0; i < 1000; ++i) {
    std::string text = "delivery " + std::to_string(i) + " failed";
    if (limiter.admit(kWarn, text, text.size(), t0 + std::chrono::microseconds(i))) ++admitted;
  }
  EXPECT_EQ(admitted, 100u);
}

TEST_F(LogLimiterTest, OtherMessagesAreNotHeldBackByAFlood) {
  Limiter limiter;
  offer(limiter, "accept failed: Too many open files", 10000, 500ms, t0);
  EXPECT_TRUE(limiter.admit(kInfo, "Deputy listening on 127.0.0.1:3000", 40, t0 + 600ms));
}

TEST_F(LogLimiterTest, TheWholeLogStaysUnderItsBytesAMinuteWhateverTheMessages) {
  LimiterOptions options;
  options.bytes_per_minute = 1 << 20;
  Limiter limiter(options);
  const std::string filler(1000, 'x');
  size_t written = 0;
  size_t summary_bytes = 0;
  // Every line a different message, so no one kind reaches its own limit.
  for (int i = 0; i < 5000; ++i) {
    std::string text = std::string(1, char('a' + i % 26)) + std::string(1, char('a' + (i / 26) % 26)) +
                       std::string(1, char('a' + (i / 676) % 26)) + filler;
    auto at = t0 + std::chrono::milliseconds(i * 10);  // 50 s
    if (limiter.admit(kInfo, text, text.size(), at)) written += text.size();
    for (const auto& s : limiter.summaries(at)) summary_bytes += s.text.size();
  }
  EXPECT_LE(written + summary_bytes, size_t{1} << 20);
  EXPECT_GT(written, size_t{900} << 10) << "the budget is used, not wasted";
  auto told = limiter.summaries(t0 + 70s);
  ASSERT_FALSE(told.empty());
  EXPECT_NE(told.back().text.find("not written"), std::string::npos) << told.back().text;
  EXPECT_NE(told.back().text.find("the log is kept under 1 MB a minute"), std::string::npos) << told.back().text;
  // A new minute has its budget again.
  EXPECT_TRUE(limiter.admit(kInfo, "fresh", 5, t0 + 120s));
}

TEST_F(LogLimiterTest, KindsPastTheTableShareOneCountAndQuietKindsAreForgotten) {
  LimiterOptions options;
  options.kinds = 4;
  Limiter limiter(options);
  for (char c = 'a'; c < 'a' + 4; ++c) EXPECT_TRUE(limiter.admit(kInfo, std::string(1, c), 1, t0));
  // Further kinds share one count of a hundred a second.
  size_t admitted = 0;
  for (int i = 0; i < 500; ++i) {
    std::string text = "other " + std::string(1, char('a' + i % 26)) + std::string(1, char('a' + i / 26));
    if (limiter.admit(kInfo, text, text.size(), t0 + std::chrono::microseconds(i))) ++admitted;
  }
  EXPECT_EQ(admitted, 100u);
  auto told = limiter.summaries(t0 + 11s);
  ASSERT_EQ(told.size(), 1u);
  EXPECT_NE(told[0].text.find("and lines of other messages repeated 400 times"), std::string::npos) << told[0].text;
  // A minute later the first four are forgotten and a new kind has a count of its own.
  limiter.summaries(t0 + 2min);
  admitted = 0;
  for (int i = 0; i < 150; ++i) admitted += limiter.admit(kInfo, "new kind", 8, t0 + 2min + std::chrono::microseconds(i));
  EXPECT_EQ(admitted, 100u);
  told = limiter.summaries(t0 + 2min + 11s);
  ASSERT_EQ(told.size(), 1u);
  EXPECT_EQ(told[0].text.rfind("\"new kind\" repeated 50 times", 0), 0u) << told[0].text;
}

TEST(WithThousands, GroupsDigitsByThree) {
  EXPECT_EQ(with_thousands(0), "0");
  EXPECT_EQ(with_thousands(999), "999");
  EXPECT_EQ(with_thousands(1000), "1,000");
  EXPECT_EQ(with_thousands(4337420), "4,337,420");
}

}  // namespace
}  // namespace deputy::log
