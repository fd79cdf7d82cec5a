#include "slack/text.h"

#include <algorithm>

namespace deputy::slack {
namespace {

constexpr std::string_view kOpenCurly = "\xE2\x80\x9C";   // “
constexpr std::string_view kCloseCurly = "\xE2\x80\x9D";  // ”
constexpr std::string_view kLowCurly = "\xE2\x80\x9E";    // „ (opens in German and others)

bool starts(std::string_view text, size_t at, std::string_view what) { return text.compare(at, what.size(), what) == 0; }

// The character that an entity at `at` stands for and the entity's length; {0, 0} if none.
// Slack escapes these three only.
std::pair<char, size_t> entity_at(std::string_view text, size_t at) {
  for (auto [entity, c] : {std::pair<std::string_view, char>{"&amp;", '&'}, {"&lt;", '<'}, {"&gt;", '>'}})
    if (starts(text, at, entity)) return {c, entity.size()};
  return {0, 0};
}


// A URL scheme ("https:", "mailto:") at the start: letters, then digits, '+', '-' or '.'.
bool has_scheme(std::string_view target) {
  size_t colon = target.find(':');
  if (colon == std::string_view::npos || colon == 0) return false;
  for (size_t i = 0; i < colon; ++i) {
    char c = target[i];
    bool letter = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
    if (!letter && (i == 0 || !((c >= '0' && c <= '9') || c == '+' || c == '-' || c == '.'))) return false;
  }
  return true;
}

// Slack only ever sends '<' to open a form, and every form starts like one of these; text
// from anywhere else that holds a bare '<' keeps it.
bool is_form(std::string_view inside) {
  if (inside.empty()) return false;
  return inside[0] == '@' || inside[0] == '#' || inside[0] == '!' || has_scheme(inside.substr(0, inside.find('|')));
}

std::string with_prefix(char prefix, std::string shown) {
  if (shown.empty() || shown[0] != prefix) shown.insert(shown.begin(), prefix);
  return shown;
}

struct Form {
  Reference::Kind kind = Reference::Kind::kOther;
  std::string target;
  std::string shown;  // what the person saw and typed
};

// The inside of one <…> form, as Slack documents them ("Formatting text for app surfaces").
Form read_form(std::string_view inside) {
  const size_t bar = inside.find('|');
  const std::string_view target = inside.substr(0, bar);
  const std::string label = bar == std::string_view::npos ? std::string() : decode_entities(inside.substr(bar + 1));
  Form form;
  if (target[0] == '@' && is_user_id(target.substr(1))) {
    form.kind = Reference::Kind::kUser;
    form.target = std::string(target.substr(1));
    form.shown = with_prefix('@', label.empty() ? form.target : label);
  } else if (target[0] == '#' && target.size() > 1) {
    form.kind = Reference::Kind::kChannel;
    form.target = std::string(target.substr(1));
    form.shown = with_prefix('#', label.empty() ? form.target : label);
  } else if (target == "!here" || target == "!channel" || target == "!everyone") {
    form.kind = Reference::Kind::kBroadcast;
    form.target = std::string(target.substr(1));
    form.shown = "@" + form.target;
  } else if (target.rfind("!subteam^", 0) == 0 && target.size() > 9) {
    form.kind = Reference::Kind::kUserGroup;
    form.target = std::string(target.substr(9));
    form.shown = with_prefix('@', label.empty() ? form.target : label);
  } else if (target[0] != '!' && target[0] != '@' && target[0] != '#' && has_scheme(target)) {
    form.kind = Reference::Kind::kLink;
    form.target = decode_entities(target);
    form.shown = label.empty() ? form.target : label;
  } else {
    // <!date^…|fallback> and forms this code does not know: their label is what people read.
    form.target = decode_entities(target);
    form.shown = label.empty() ? form.target : label;
  }
  return form;
}

// Walks Slack text once: each <…> form goes to on_form, each other character, entities
// decoded, to on_char with whether it came from an entity (and so is never syntax).
template <typename OnForm, typename OnChar>
void scan(std::string_view text, OnForm on_form, OnChar on_char) {
  size_t i = 0;
  while (i < text.size()) {
    const char c = text[i];
    if (c == '<') {
      const size_t close = text.find('>', i + 1);
      if (close != std::string_view::npos && is_form(text.substr(i + 1, close - i - 1))) {
        on_form(read_form(text.substr(i + 1, close - i - 1)));
        i = close + 1;
        continue;
      }
    } else if (c == '&') {
      if (auto [decoded, length] = entity_at(text, i); length > 0) {
        i += length;
        on_char(text, i, decoded, true);
        continue;
      }
    }
    ++i;
    on_char(text, i, c, false);
  }
}

// The quote that closes one opening at `at`, or empty when no quote opens there:
// "…", “…” (English), „…“ (German and others), ”…” (Swedish and Finnish).
std::string_view closing_quote(std::string_view text, size_t at) {
  if (text[at] == '"') return "\"";
  if (starts(text, at, kOpenCurly)) return kCloseCurly;
  if (starts(text, at, kLowCurly)) return kOpenCurly;
  if (starts(text, at, kCloseCurly)) return kCloseCurly;
  return {};
}

}  // namespace

bool is_user_id(std::string_view id) {
  return id.size() >= 3 && (id[0] == 'U' || id[0] == 'W') &&
         std::all_of(id.begin(), id.end(), [](char c) { return (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9'); });
}

std::string decode_entities(std::string_view escaped) {
  std::string out;
  out.reserve(escaped.size());
  for (size_t i = 0; i < escaped.size();) {
    auto [decoded, length] = entity_at(escaped, i);
    out += length > 0 ? decoded : escaped[i];
    i += length > 0 ? length : 1;
  }
  return out;
}

const Reference* Word::sole_reference(size_t from) const {
  const Reference* found = nullptr;
  for (const Reference& r : references) {
    if (r.end <= from) continue;
    if (found) return nullptr;
    found = &r;
  }
  return found && found->begin == from && found->end == text.size() ? found : nullptr;
}

std::string Word::user_id(size_t from) const {
  if (from > text.size()) return {};
  if (const Reference* r = sole_reference(from)) return r->kind == Reference::Kind::kUser ? r->target : std::string();
  // Text that holds a form is not a bare id, nor is anything typed with < > (escaped forms).
  for (const Reference& r : references)
    if (r.end > from) return {};
  std::string_view typed = std::string_view(text).substr(from);
  return is_user_id(typed) ? std::string(typed) : std::string();
}

std::vector<Word> typed_words(std::string_view slack_text) {
  std::vector<Word> words;
  Word current;
  bool in_word = false;
  std::string_view closing;  // the quote that ends the quoted part, when inside one
  auto finish = [&] {
    if (in_word) words.push_back(std::move(current));
    current = Word{};
    in_word = false;
  };
  scan(
      slack_text,
      [&](Form form) {
        Reference r{form.kind, std::move(form.target), current.text.size(), 0};
        current.text += form.shown;
        r.end = current.text.size();
        current.references.push_back(std::move(r));
        in_word = true;
      },
      [&](std::string_view text, size_t& next, char c, bool from_entity) {
        // `next` is just past c; a curly quote is three bytes, of which c is the first.
        if (!from_entity) {
          const size_t at = next - 1;
          if (!closing.empty()) {
            if (starts(text, at, closing)) {
              next = at + closing.size();
              closing = {};
              in_word = true;
              return;
            }
          } else if (std::string_view close = closing_quote(text, at); !close.empty()) {
            next = at + (c == '"' ? 1 : kOpenCurly.size());
            closing = close;
            in_word = true;
            current.quoted = true;
            return;
          } else if (c == ' ' || c == '\t' || c == '\n' || c == '\r') {
            finish();
            return;
          }
        }
        current.text += c;
        in_word = true;
      });
  if (!closing.empty()) current.unclosed = true;
  finish();
  return words;
}

std::string as_typed(std::string_view slack_text) {
  std::string out;
  out.reserve(slack_text.size());
  scan(
      slack_text, [&](const Form& form) { out += form.shown; }, [&](std::string_view, size_t&, char c, bool) { out += c; });
  return out;
}

}  // namespace deputy::slack
