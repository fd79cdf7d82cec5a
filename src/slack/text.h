// Text as Slack sends it in messages and commands, read back as the person typed it.
//
// Slack escapes `&`, `<` and `>` as &amp; &lt; &gt;, and sends people, channels, groups and
// links as <…> forms: <@U123|alice>, <#C123|general>, <!here>, <!subteam^S1|@team>,
// <https://example.com|label>, <mailto:a@b.com|a@b.com>. The forms are split out first and
// only then is the rest decoded, so someone who types "&lt;@U123&gt;" gets the plain text
// "<@U123>", never a mention.
#pragma once

#include <string>
#include <string_view>
#include <vector>

namespace deputy::slack {

struct Reference {
  enum class Kind {
    kUser,       // <@U…> or <@W…>: target is the user id
    kChannel,    // <#C…>: target is the channel id
    kLink,       // <https://…>, <mailto:…>: target is the URL, decoded
    kBroadcast,  // <!here>, <!channel>, <!everyone>: target is the word
    kUserGroup,  // <!subteam^S…>: target is the group id
    kOther,      // any other <!…> form (dates, unknown kinds): only its label counts
  };
  Kind kind = Kind::kOther;
  std::string target;
  // Where the form's label sits in the word's text.
  size_t begin = 0;
  size_t end = 0;
};

struct Word {
  // As typed: &amp; &lt; &gt; decoded, quotes that group words removed, forms shown by their
  // labels (@alice, #general, @here, a link's label or else its URL).
  std::string text;
  std::vector<Reference> references;  // the forms inside the word, in order
  bool quoted = false;    // some of it was typed inside quotes
  bool unclosed = false;  // a quote opened in it and the text ended before it closed

  // The one form whose label is exactly text[from, end), or nullptr.
  const Reference* sole_reference(size_t from = 0) const;
  // The user named by text[from, end): a mention that is the whole of it, or a bare user
  // id (U…/W…) typed as plain text; empty when it names nobody. Never a mention that was
  // typed as escaped text.
  std::string user_id(size_t from = 0) const;
};

// The words of a command. Spaces separate words; "straight" or “curly” double quotes keep
// words together (quotes removed, "" is an empty word). A form never splits and never
// opens or closes a quote.
std::vector<Word> typed_words(std::string_view slack_text);

// The whole text as typed, forms shown by their labels (for echoing and plain-text use).
std::string as_typed(std::string_view slack_text);

// A Slack user id (U… or W…, upper-case letters and digits).
bool is_user_id(std::string_view id);

// &amp; &lt; &gt; decoded; anything else, other entities included, kept as it is.
std::string decode_entities(std::string_view escaped);

}  // namespace deputy::slack
