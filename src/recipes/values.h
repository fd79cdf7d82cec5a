// What a person typed for a number or a date, checked exactly: a number is kept as the decimal
// text typed (never rounded through a double, so a money field gets every digit), a date is a
// day that exists.
#pragma once

#include <optional>
#include <string>
#include <string_view>

namespace deputy::recipes {

// A decimal as typed: an optional sign, digits, an optional point and more digits. No
// exponent, no thousands separators, nothing else.
struct Decimal {
  bool negative = false;
  std::string whole;     // without leading zeros; empty for zero
  std::string fraction;  // as typed, trailing zeros included
};

std::optional<Decimal> parse_decimal(std::string_view typed);
// <0, 0, >0 as a is less than, equal to, greater than b (by value: 1.50 equals 1.5).
int compare(const Decimal& a, const Decimal& b);
// The same value as a JSON number token: no '+', no leading zeros, a digit on each side of
// the point ("+007.50" -> "7.50", ".5" -> "0.5", "5." -> "5"). The digits are the ones typed.
std::string json_number(const Decimal& d);

// Why `typed` is not a real calendar date written YYYY-MM-DD, or nothing when it is.
std::optional<std::string> date_problem(std::string_view typed);

}  // namespace deputy::recipes
