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

// One signing secret, for verifying every request. OpenSSL's one-shot HMAC looks the
// algorithm up and hashes the key on each call; this keeps a keyed HMAC per thread instead,
// so a request costs only hashing its own bytes. Safe to use from several threads at once.
class RequestVerifier {
 public:
  explicit RequestVerifier(std::string secret);
  RequestVerifier(const RequestVerifier&) = delete;
  RequestVerifier& operator=(const RequestVerifier&) = delete;
  ~RequestVerifier();

  SignatureVerdict verify(std::string_view timestamp, std::string_view signature, std::string_view body,
                          int64_t now_unix_seconds, int64_t window_seconds = 300) const;
  // "v0=" and the lowercase hex digest, as Slack sends it in X-Slack-Signature.
  std::string sign(std::string_view timestamp, std::string_view body) const;

 private:
  std::string secret_;
  uint64_t id_;  // tells the per-thread keyed HMAC which verifier it belongs to
};

}  // namespace deputy::slack
