#include "recipes/values.h"

#include <cctype>

namespace deputy::recipes {
namespace {

bool all_digits(std::string_view s) {
  for (char c : s)
    if (!std::isdigit(static_cast<unsigned char>(c))) return false;
  return true;
}

std::string_view without_trailing_zeros(std::string_view s) {
  while (!s.empty() && s.back() == '0') s.remove_suffix(1);
  return s;
}

bool is_zero(const Decimal& d) { return d.whole.empty() && without_trailing_zeros(d.fraction).empty(); }

int compare_magnitude(const Decimal& a, const Decimal& b) {
  if (a.whole.size() != b.whole.size()) return a.whole.size() < b.whole.size() ? -1 : 1;
  if (int c = a.whole.compare(b.whole); c != 0) return c < 0 ? -1 : 1;
  std::string_view fa = without_trailing_zeros(a.fraction), fb = without_trailing_zeros(b.fraction);
  const size_t n = std::max(fa.size(), fb.size());
  for (size_t i = 0; i < n; ++i) {
    const char x = i < fa.size() ? fa[i] : '0', y = i < fb.size() ? fb[i] : '0';
    if (x != y) return x < y ? -1 : 1;
  }
  return 0;
}

}  // namespace

std::optional<Decimal> parse_decimal(std::string_view typed) {
  Decimal d;
  if (!typed.empty() && (typed.front() == '-' || typed.front() == '+')) {
    d.negative = typed.front() == '-';
    typed.remove_prefix(1);
  }
  const size_t point = typed.find('.');
  std::string_view whole = typed.substr(0, point);
  std::string_view fraction = point == std::string_view::npos ? std::string_view() : typed.substr(point + 1);
  if (whole.empty() && fraction.empty()) return std::nullopt;
  if (!all_digits(whole) || !all_digits(fraction)) return std::nullopt;
  while (!whole.empty() && whole.front() == '0') whole.remove_prefix(1);
  d.whole = std::string(whole);
  d.fraction = std::string(fraction);
  return d;
}

int compare(const Decimal& a, const Decimal& b) {
  const bool a_negative = a.negative && !is_zero(a), b_negative = b.negative && !is_zero(b);
  if (a_negative != b_negative) return a_negative ? -1 : 1;
  const int magnitude = compare_magnitude(a, b);
  return a_negative ? -magnitude : magnitude;
}

std::string json_number(const Decimal& d) {
  std::string out = d.negative && !is_zero(d) ? "-" : "";
  out += d.whole.empty() ? "0" : d.whole;
  if (!d.fraction.empty()) out += "." + d.fraction;
  return out;
}

std::optional<std::string> date_problem(std::string_view v) {
  static const char* kShape = "a date written YYYY-MM-DD, like 2026-12-31";
  if (v.size() != 10 || v[4] != '-' || v[7] != '-' || !all_digits(v.substr(0, 4)) || !all_digits(v.substr(5, 2)) ||
      !all_digits(v.substr(8, 2)))
    return std::string(kShape);
  const int year = std::stoi(std::string(v.substr(0, 4)));
  const int month = std::stoi(std::string(v.substr(5, 2)));
  const int day = std::stoi(std::string(v.substr(8, 2)));
  static const char* kMonths[] = {"January", "February", "March", "April", "May", "June", "July", "August", "September", "October",
                                  "November", "December"};
  if (year < 1) return std::string("a date in year 1 or later");
  if (month < 1 || month > 12) return std::string("a date whose month is 01 to 12");
  const bool leap = (year % 4 == 0 && year % 100 != 0) || year % 400 == 0;
  static const int kDays[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
  const int days = month == 2 && leap ? 29 : kDays[month - 1];
  if (day < 1 || day > days)
    return "a day that exists: " + std::string(kMonths[month - 1]) + " " + std::to_string(year) + " has " + std::to_string(days) + " days";
  return std::nullopt;
}

}  // namespace deputy::recipes
