#include "slack/signature.h"

#include <openssl/evp.h>
#include <openssl/hmac.h>

#include <charconv>

#include "common/encoding.h"

namespace deputy::slack {

const char* describe(SignatureVerdict verdict) {
  switch (verdict) {
    case SignatureVerdict::kValid: return "valid";
    case SignatureVerdict::kNoSecretConfigured: return "no signing secret configured";
    case SignatureVerdict::kMissingHeaders: return "missing X-Slack-Signature or X-Slack-Request-Timestamp";
    case SignatureVerdict::kMalformedTimestamp: return "malformed timestamp";
    case SignatureVerdict::kStaleTimestamp: return "timestamp outside the 5-minute window";
    case SignatureVerdict::kMismatch: return "signature mismatch";
  }
  return "unknown";
}

std::string compute_signature(std::string_view secret, std::string_view timestamp, std::string_view body) {
  std::string base;
  base.reserve(4 + timestamp.size() + body.size());
  base.append("v0:").append(timestamp).append(":").append(body);
  unsigned char digest[EVP_MAX_MD_SIZE];
  unsigned int length = 0;
  HMAC(EVP_sha256(), secret.data(), static_cast<int>(secret.size()), reinterpret_cast<const unsigned char*>(base.data()),
       base.size(), digest, &length);
  return "v0=" + to_hex(std::string_view(reinterpret_cast<const char*>(digest), length));
}

SignatureVerdict verify_signature(std::string_view secret, std::string_view timestamp, std::string_view signature,
                                  std::string_view body, int64_t now_unix_seconds, int64_t window_seconds) {
  if (secret.empty()) return SignatureVerdict::kNoSecretConfigured;
  if (timestamp.empty() || signature.empty()) return SignatureVerdict::kMissingHeaders;
  int64_t sent = 0;
  auto [end, error] = std::from_chars(timestamp.data(), timestamp.data() + timestamp.size(), sent);
  if (error != std::errc() || end != timestamp.data() + timestamp.size()) return SignatureVerdict::kMalformedTimestamp;
  int64_t age = now_unix_seconds - sent;
  if (age > window_seconds || age < -window_seconds) return SignatureVerdict::kStaleTimestamp;
  if (!constant_time_equal(compute_signature(secret, timestamp, body), signature)) return SignatureVerdict::kMismatch;
  return SignatureVerdict::kValid;
}

}  // namespace deputy::slack
