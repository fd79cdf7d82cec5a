// Byte and text encodings used across the wire formats (Slack forms, OAuth, tokens).
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace deputy {

std::string to_hex(std::string_view bytes);
std::optional<std::string> from_hex(std::string_view hex);

std::string base64_encode(std::string_view bytes);
std::optional<std::string> base64_decode(std::string_view text);
// RFC 4648 §5 without padding, as PKCE and JWTs use it.
std::string base64url_encode(std::string_view bytes);
std::optional<std::string> base64url_decode(std::string_view text);

// application/x-www-form-urlencoded and URL query components.
std::string url_encode(std::string_view text);
std::optional<std::string> url_decode(std::string_view text, bool plus_is_space = true);

using FormFields = std::vector<std::pair<std::string, std::string>>;
// Returns nullopt when a field has a broken %-escape, so malformed input is refused, not guessed.
std::optional<FormFields> parse_form(std::string_view body);
std::string encode_form(const FormFields& fields);
std::optional<std::string> form_value(const FormFields& fields, std::string_view name);
// A form split into fields but not decoded, for reading a few fields only (the ack path).
// It points into the body, which must outlive it.
class FormView {
 public:
  // nullopt when a field has a broken %-escape, as parse_form.
  static std::optional<FormView> parse(std::string_view body);
  // Decoded; the first field of that name, as form_value.
  std::optional<std::string> value(std::string_view name) const;
  const std::vector<std::pair<std::string_view, std::string_view>>& escaped_fields() const { return fields_; }

 private:
  std::vector<std::pair<std::string_view, std::string_view>> fields_;
};

// True if every byte is part of a well-formed UTF-8 sequence (no overlongs, no surrogates).
bool is_valid_utf8(std::string_view text);

// Appends text as a quoted JSON string (RFC 8259): quotes, backslashes and control
// characters escaped, UTF-8 kept as it is; a byte that is not part of valid UTF-8 becomes
// U+FFFD, so text from anywhere (a user, an app) always makes a valid document.
void append_json_string(std::string& out, std::string_view text);

// Compares secrets without leaking where they differ through timing.
bool constant_time_equal(std::string_view a, std::string_view b);

// ASCII letters only: no locale lookups.
std::string to_lower(std::string_view text);
// ASCII letters only, as HTTP field names are; no locale lookups, no copies.
bool equal_ignoring_ascii_case(std::string_view a, std::string_view b);
std::string_view trim(std::string_view text);
std::vector<std::string> split_words(std::string_view text);

}  // namespace deputy
