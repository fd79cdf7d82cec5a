#include "bot/catalog.h"

#include <algorithm>

#include "common/encoding.h"

namespace deputy::bot {
namespace {

size_t edit_distance(const std::string& a, const std::string& b) {
  std::vector<size_t> row(b.size() + 1);
  for (size_t j = 0; j <= b.size(); ++j) row[j] = j;
  for (size_t i = 1; i <= a.size(); ++i) {
    size_t diagonal = row[0];
    row[0] = i;
    for (size_t j = 1; j <= b.size(); ++j) {
      size_t above = row[j];
      row[j] = std::min({row[j] + 1, row[j - 1] + 1, diagonal + (a[i - 1] == b[j - 1] ? 0 : 1)});
      diagonal = above;
    }
  }
  return row[b.size()];
}

std::string first_words(const std::vector<std::string>& words, size_t n) {
  std::string out;
  for (size_t i = 0; i < words.size() && i < n; ++i) {
    if (i) out += ' ';
    out += words[i];
  }
  return out;
}

}  // namespace

const std::vector<CommandInfo>& builtin_commands() {
  static const std::vector<CommandInfo> kBuiltins = {
      {"help", "help", "What I can do, and your personal accounts", "", false},
      {"connections", "connections", "The accounts I can act as for you, with Disconnect buttons", "", false},
  };
  return kBuiltins;
}

std::string suggest(const std::string& typed, const std::vector<std::string>& known) {
  auto words = split_words(to_lower(typed));
  if (words.empty()) return {};
  std::string best;
  size_t best_distance = SIZE_MAX;
  for (const std::string& candidate : known) {
    size_t n = split_words(candidate).size();
    std::string attempt = first_words(words, n);
    size_t distance = edit_distance(attempt, candidate);
    // Close means a typo or two, scaled with length, never more than half the word.
    size_t allowed = std::max<size_t>(1, std::min<size_t>(candidate.size() / 3 + 1, candidate.size() / 2));
    if (distance <= allowed && distance < best_distance) {
      best = candidate;
      best_distance = distance;
    }
  }
  return best;
}

}  // namespace deputy::bot
