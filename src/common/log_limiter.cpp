#include "common/log_limiter.h"

#include <algorithm>
#include <cctype>

namespace deputy::log {
namespace {

constexpr auto kSecond = std::chrono::seconds(1);
constexpr auto kMinute = std::chrono::minutes(1);
constexpr size_t kKindPrefix = 64;
constexpr size_t kSampleLength = 200;

long whole_seconds(std::chrono::steady_clock::duration d) {
  return static_cast<long>(std::chrono::duration_cast<std::chrono::seconds>(d).count());
}

std::string megabytes(size_t bytes) {
  return bytes % (1 << 20) == 0 ? std::to_string(bytes >> 20) + " MB" : with_thousands(bytes) + " bytes";
}

}  // namespace

std::string with_thousands(size_t n) {
  std::string digits = std::to_string(n);
  std::string out;
  for (size_t i = 0; i < digits.size(); ++i) {
    if (i > 0 && (digits.size() - i) % 3 == 0) out += ',';
    out += digits[i];
  }
  return out;
}

Limiter::Limiter(LimiterOptions options) : options_(options) {}

std::string Limiter::kind_of(int level, std::string_view text) {
  std::string kind(1, static_cast<char>('0' + std::clamp(level, 0, 9)));
  for (char c : text.substr(0, kKindPrefix)) {
    if (!std::isdigit(static_cast<unsigned char>(c))) {
      kind += c;
    } else if (kind.back() != '#') {
      kind += '#';
    }
  }
  return kind;
}

Limiter::Kind& Limiter::kind_for(int level, std::string_view text, Time now) {
  std::string key = kind_of(level, text);
  if (auto it = kinds_.find(key); it != kinds_.end()) return it->second;
  if (kinds_.size() >= options_.kinds) return overflow_;
  Kind& kind = kinds_[std::move(key)];
  kind.second_started = now;
  return kind;
}

bool Limiter::admit(int level, std::string_view text, size_t bytes, Time now) {
  Kind& kind = kind_for(level, text, now);
  kind.last_seen = now;
  if (now - kind.second_started >= kSecond) {
    kind.second_started = now;
    kind.lines_this_second = 0;
  }
  if (++kind.lines_this_second > options_.lines_per_kind_per_second) {
    if (kind.held_back++ == 0) {
      kind.held_since = now;
      kind.sample = std::string(text.substr(0, kSampleLength));
      kind.level = level;
      next_due_ = std::min(next_due_, now + options_.summary_every);
    }
    kind.level = std::max(kind.level, level);
    return false;
  }
  if (now - minute_started_ >= kMinute) {
    minute_started_ = now;
    bytes_this_minute_ = 0;
  }
  // A sixteenth of the budget is kept for the summaries, which are always written.
  const size_t for_lines = options_.bytes_per_minute - options_.bytes_per_minute / 16;
  if (bytes_this_minute_ + bytes > for_lines) {
    if (over_budget_lines_++ == 0) {
      over_budget_since_ = now;
      next_due_ = std::min(next_due_, now + options_.summary_every);
    }
    over_budget_bytes_ += bytes;
    return false;
  }
  bytes_this_minute_ += bytes;
  return true;
}

std::vector<Limiter::Summary> Limiter::summaries(Time now) {
  std::vector<Summary> out;
  if (now >= next_due_) {
    next_due_ = Time::max();
    auto summarise = [&](Kind& kind, bool overflow) {
      if (kind.held_back == 0) return;
      if (now - kind.held_since < options_.summary_every) {
        next_due_ = std::min(next_due_, kind.held_since + options_.summary_every);
        return;
      }
      std::string text = "\"" + kind.sample + "\"" + (overflow ? " and lines of other messages" : "") + " repeated " +
                         with_thousands(kind.held_back) + " times in the last " + std::to_string(whole_seconds(now - kind.held_since)) +
                         " s (not written: one message is written at most " + std::to_string(options_.lines_per_kind_per_second) +
                         " times a second)";
      out.push_back({kind.level, std::move(text)});
      kind.held_back = 0;
      kind.sample.clear();
    };
    for (auto& [key, kind] : kinds_) summarise(kind, false);
    summarise(overflow_, true);
    if (over_budget_lines_ > 0) {
      if (now - over_budget_since_ < options_.summary_every) {
        next_due_ = std::min(next_due_, over_budget_since_ + options_.summary_every);
      } else {
        out.push_back({3, with_thousands(over_budget_lines_) + " log lines (" + with_thousands(over_budget_bytes_) +
                              " bytes) not written in the last " + std::to_string(whole_seconds(now - over_budget_since_)) +
                              " s: the log is kept under " + megabytes(options_.bytes_per_minute) + " a minute"});
        over_budget_lines_ = 0;
        over_budget_bytes_ = 0;
      }
    }
    for (const auto& summary : out) bytes_this_minute_ += summary.text.size();
  }
  if (now >= next_forget_) {
    next_forget_ = now + kMinute;
    std::erase_if(kinds_, [&](const auto& entry) { return entry.second.held_back == 0 && now - entry.second.last_seen > kMinute; });
  }
  return out;
}

}  // namespace deputy::log
