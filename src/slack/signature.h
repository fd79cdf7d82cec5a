// Slack request signing, v0: HMAC-SHA256 over "v0:{timestamp}:{raw body}".
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

namespace deputy::slack {

enum class SignatureVerdict {
  kValid,
  kNoSecretConfigured,
  kMissingHeaders,
  kMalformedTimestamp,
  kStaleTimestamp,  // outside the 5-minute window, either side
  kMismatch,
};

const char* describe(SignatureVerdict verdict);

std::string compute_signature(std::string_view secret, std::string_view timestamp, std::string_view body);

SignatureVerdict verify_signature(std::string_view secret, std::string_view timestamp, std::string_view signature,
                                  std::string_view body, int64_t now_unix_seconds, int64_t window_seconds = 300);

}  // namespace deputy::slack
