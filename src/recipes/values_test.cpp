#include "recipes/values.h"

#include <gtest/gtest.h>

namespace deputy::recipes {
namespace {

TEST(Values, ANumberIsDigitsWithAnOptionalSignAndPointAndNothingElse) {
  for (const char* good : {"0", "1250", "-3", "+4", "1250.50", ".5", "5.", "007", "12345678901234567890.123"})
    EXPECT_TRUE(parse_decimal(good)) << good;
  for (const char* bad : {"", "-", ".", "1e400", "1E5", "1,250", "1 250", "0x10", "nan", "inf", "1.2.3", "--1", "12abc", "١٢"})
    EXPECT_FALSE(parse_decimal(bad)) << bad;
}

TEST(Values, ANumberKeepsEveryDigitTyped) {
  EXPECT_EQ(json_number(*parse_decimal("12345678901234567890.123")), "12345678901234567890.123");
  EXPECT_EQ(json_number(*parse_decimal("1250.50")), "1250.50") << "trailing zeros are the person's";
  EXPECT_EQ(json_number(*parse_decimal("+007.5")), "7.5") << "only what JSON forbids is rewritten";
  EXPECT_EQ(json_number(*parse_decimal(".5")), "0.5");
  EXPECT_EQ(json_number(*parse_decimal("5.")), "5");
  EXPECT_EQ(json_number(*parse_decimal("-0.00")), "0.00");
}

TEST(Values, NumbersCompareByValueExactly) {
  auto d = [](const char* s) { return *parse_decimal(s); };
  EXPECT_EQ(compare(d("1.50"), d("1.5")), 0);
  EXPECT_EQ(compare(d("-0"), d("0")), 0);
  EXPECT_LT(compare(d("99.99"), d("100")), 0);
  EXPECT_GT(compare(d("12345678901234567890.124"), d("12345678901234567890.123")), 0)
      << "a double could not tell these apart";
  EXPECT_LT(compare(d("-5"), d("-4.9")), 0);
  EXPECT_GT(compare(d("0.001"), d("-1000")), 0);
  EXPECT_LT(compare(d("007"), d("8")), 0);
}

TEST(Values, ADateIsADayThatExists) {
  EXPECT_FALSE(date_problem("2026-12-31"));
  EXPECT_FALSE(date_problem("2028-02-29")) << "leap year";
  EXPECT_FALSE(date_problem("2000-02-29")) << "divisible by 400";
  auto feb30 = date_problem("2026-02-30");
  ASSERT_TRUE(feb30);
  EXPECT_EQ(*feb30, "a day that exists: February 2026 has 28 days");
  EXPECT_TRUE(date_problem("2100-02-29")) << "divisible by 100, not 400";
  EXPECT_TRUE(date_problem("2026-04-31"));
  EXPECT_TRUE(date_problem("2026-13-01"));
  EXPECT_TRUE(date_problem("2026-00-10"));
  EXPECT_TRUE(date_problem("2026-1-5"));
  EXPECT_TRUE(date_problem("31/12/2026"));
  EXPECT_TRUE(date_problem("0000-01-01"));
}

}  // namespace
}  // namespace deputy::recipes
