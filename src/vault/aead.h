// AES-256-GCM with a fresh 96-bit nonce per seal and caller-supplied associated data.
#pragma once

#include <string>
#include <string_view>

#include "common/result.h"

namespace deputy::vault {

inline constexpr size_t kKeyBytes = 32;
inline constexpr size_t kNonceBytes = 12;
inline constexpr size_t kTagBytes = 16;

struct Sealed {
  std::string nonce;
  std::string ciphertext;  // ciphertext followed by the 16-byte tag
};

Result<Sealed> seal(std::string_view key, std::string_view plaintext, std::string_view associated_data);
// Fails (never returns garbage) when key, nonce, ciphertext, tag or associated data differ.
Result<std::string> open(std::string_view key, const Sealed& sealed, std::string_view associated_data);

}  // namespace deputy::vault
