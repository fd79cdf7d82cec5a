#include "slack/signature.h"

#include <openssl/core_names.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/params.h>

#include <atomic>
#include <charconv>
#include <memory>

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

namespace {

// Ids are never reused, so a thread's keyed HMAC cannot be taken for another verifier's,
// even one built at the same address after the first was destroyed.
std::atomic<uint64_t> next_verifier_id{1};

struct MacDeleter {
  void operator()(EVP_MAC_CTX* ctx) const { EVP_MAC_CTX_free(ctx); }
};

EVP_MAC* hmac_algorithm() {
  static EVP_MAC* const mac = EVP_MAC_fetch(nullptr, "HMAC", nullptr);
  return mac;
}

// The keyed HMAC of the verifier this thread used last; re-keyed when another one is used.
struct ThreadMac {
  uint64_t verifier_id = 0;
  std::unique_ptr<EVP_MAC_CTX, MacDeleter> ctx;
};

EVP_MAC_CTX* keyed_for_this_thread(uint64_t verifier_id, std::string_view secret) {
  thread_local ThreadMac mine;
  if (mine.verifier_id == verifier_id && mine.ctx) {
    // A null key keeps the key already set: HMAC restarts from its saved inner and outer states.
    if (EVP_MAC_init(mine.ctx.get(), nullptr, 0, nullptr) == 1) return mine.ctx.get();
  }
  mine.verifier_id = 0;
  ERR_clear_error();
  if (!hmac_algorithm()) return nullptr;
  mine.ctx.reset(EVP_MAC_CTX_new(hmac_algorithm()));
  if (!mine.ctx) return nullptr;
  char digest_name[] = "SHA256";
  OSSL_PARAM params[] = {OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST, digest_name, 0), OSSL_PARAM_construct_end()};
  if (EVP_MAC_init(mine.ctx.get(), reinterpret_cast<const unsigned char*>(secret.data()), secret.size(), params) != 1) {
    mine.ctx.reset();
    return nullptr;
  }
  mine.verifier_id = verifier_id;
  return mine.ctx.get();
}

}  // namespace

RequestVerifier::RequestVerifier(std::string secret)
    : secret_(std::move(secret)), id_(next_verifier_id.fetch_add(1, std::memory_order_relaxed)) {}

RequestVerifier::~RequestVerifier() {
  // Not left in freed memory by this copy (OpenSSL's keyed contexts hold their own until
  // each thread re-keys or ends).
  OPENSSL_cleanse(secret_.data(), secret_.size());
}

std::string RequestVerifier::sign(std::string_view timestamp, std::string_view body) const {
  EVP_MAC_CTX* mac = keyed_for_this_thread(id_, secret_);
  unsigned char digest[EVP_MAX_MD_SIZE];
  size_t length = 0;
  // The three parts in turn rather than one concatenated copy of the body.
  if (!mac || EVP_MAC_update(mac, reinterpret_cast<const unsigned char*>("v0:"), 3) != 1 ||
      EVP_MAC_update(mac, reinterpret_cast<const unsigned char*>(timestamp.data()), timestamp.size()) != 1 ||
      EVP_MAC_update(mac, reinterpret_cast<const unsigned char*>(":"), 1) != 1 ||
      EVP_MAC_update(mac, reinterpret_cast<const unsigned char*>(body.data()), body.size()) != 1 ||
      EVP_MAC_final(mac, digest, &length, sizeof digest) != 1) {
    ERR_clear_error();  // not left for the next OpenSSL caller on this thread to find
    return {};          // matches no signature: the request is refused rather than let through
  }
  return "v0=" + to_hex(std::string_view(reinterpret_cast<const char*>(digest), length));
}

SignatureVerdict RequestVerifier::verify(std::string_view timestamp, std::string_view signature, std::string_view body,
                                         int64_t now_unix_seconds, int64_t window_seconds) const {
  if (secret_.empty()) return SignatureVerdict::kNoSecretConfigured;
  if (timestamp.empty() || signature.empty()) return SignatureVerdict::kMissingHeaders;
  int64_t sent = 0;
  auto [end, error] = std::from_chars(timestamp.data(), timestamp.data() + timestamp.size(), sent);
  if (error != std::errc() || end != timestamp.data() + timestamp.size()) return SignatureVerdict::kMalformedTimestamp;
  int64_t age = now_unix_seconds - sent;
  if (age > window_seconds || age < -window_seconds) return SignatureVerdict::kStaleTimestamp;
  std::string expected = sign(timestamp, body);
  if (expected.empty() || !constant_time_equal(expected, signature)) return SignatureVerdict::kMismatch;
  return SignatureVerdict::kValid;
}

}  // namespace deputy::slack
