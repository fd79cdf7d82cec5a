// Keeps the log from flooding: no input can push one kind of message past a number of lines a
// second, or the whole log past a number of bytes a minute. What is held back is told as a
// count ("… repeated 4,337,420 times in the last 10 s"), so nothing vanishes silently.
#pragma once

#include <chrono>
#include <cstddef>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

namespace deputy::log {

struct LimiterOptions {
  size_t lines_per_kind_per_second = 100;
  size_t bytes_per_minute = 10 << 20;  // summaries included: they have a share kept for them
  std::chrono::seconds summary_every{10};
  // Kinds counted apart; lines of further kinds share one count until old kinds fall quiet.
  size_t kinds = 256;
};

class Limiter {
 public:
  using Time = std::chrono::steady_clock::time_point;

  explicit Limiter(LimiterOptions options = {});

  // Whether to write a line of `bytes` bytes (as written) with this level and text.
  bool admit(int level, std::string_view text, size_t bytes, Time now);

  struct Summary {
    int level;
    std::string text;
  };
  // What was held back, once per summary_every at most for each kind; also forgets kinds
  // that have been quiet for a minute. Cheap when nothing is due.
  std::vector<Summary> summaries(Time now);

  // Lines of one kind: the same level and the same text up to its digits (ids and counts
  // vary, the message does not: a run of digits counts as one), judged on its first 64
  // characters.
  static std::string kind_of(int level, std::string_view text);

 private:
  struct Kind {
    std::string sample;  // the first line of the kind held back in the current summary period
    int level = 0;
    Time second_started{};
    size_t lines_this_second = 0;
    size_t held_back = 0;
    Time held_since{};
    Time last_seen{};
  };
  Kind& kind_for(int level, std::string_view text, Time now);

  LimiterOptions options_;
  std::unordered_map<std::string, Kind> kinds_;
  Kind overflow_;  // kinds past options_.kinds
  Time minute_started_{};
  size_t bytes_this_minute_ = 0;
  size_t over_budget_lines_ = 0;
  size_t over_budget_bytes_ = 0;
  Time over_budget_since_{};
  Time next_due_ = Time::max();
  Time next_forget_{};
};

// 4337420 → "4,337,420".
std::string with_thousands(size_t n);

}  // namespace deputy::log
