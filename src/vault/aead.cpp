#include "vault/aead.h"

#include <openssl/crypto.h>
#include <openssl/evp.h>

#include <memory>

#include "common/clock.h"

namespace deputy::vault {
namespace {

struct CtxDeleter {
  void operator()(EVP_CIPHER_CTX* ctx) const { EVP_CIPHER_CTX_free(ctx); }
};
using Ctx = std::unique_ptr<EVP_CIPHER_CTX, CtxDeleter>;

const unsigned char* bytes(std::string_view s) { return reinterpret_cast<const unsigned char*>(s.data()); }

// Fetched from the provider once: OpenSSL 3 looks the algorithm up by name again on every
// init given EVP_aes_256_gcm(), and every token read pays for that.
const EVP_CIPHER* aes_256_gcm() {
  static EVP_CIPHER* const cipher = EVP_CIPHER_fetch(nullptr, "AES-256-GCM", nullptr);
  return cipher;
}

}  // namespace

Result<Sealed> seal(std::string_view key, std::string_view plaintext, std::string_view associated_data) {
  if (key.size() != kKeyBytes) return InvalidArgument("encryption key must be 32 bytes");
  Sealed out;
  out.nonce = SecureRandom::instance().bytes(kNonceBytes);
  Ctx ctx(EVP_CIPHER_CTX_new());
  int len = 0;
  out.ciphertext.resize(plaintext.size() + kTagBytes);
  auto* cipher_out = reinterpret_cast<unsigned char*>(out.ciphertext.data());
  if (!ctx || !aes_256_gcm() || EVP_EncryptInit_ex(ctx.get(), aes_256_gcm(), nullptr, nullptr, nullptr) != 1 ||
      EVP_CIPHER_CTX_ctrl(ctx.get(), EVP_CTRL_GCM_SET_IVLEN, kNonceBytes, nullptr) != 1 ||
      EVP_EncryptInit_ex(ctx.get(), nullptr, nullptr, bytes(key), bytes(out.nonce)) != 1 ||
      EVP_EncryptUpdate(ctx.get(), nullptr, &len, bytes(associated_data), static_cast<int>(associated_data.size())) != 1 ||
      EVP_EncryptUpdate(ctx.get(), cipher_out, &len, bytes(plaintext), static_cast<int>(plaintext.size())) != 1) {
    return Internal("AES-256-GCM encryption failed");
  }
  int total = len;
  if (EVP_EncryptFinal_ex(ctx.get(), cipher_out + total, &len) != 1 ||
      EVP_CIPHER_CTX_ctrl(ctx.get(), EVP_CTRL_GCM_GET_TAG, kTagBytes, cipher_out + plaintext.size()) != 1) {
    return Internal("AES-256-GCM encryption failed");
  }
  return out;
}

Result<std::string> open(std::string_view key, const Sealed& sealed, std::string_view associated_data) {
  if (key.size() != kKeyBytes) return InvalidArgument("encryption key must be 32 bytes");
  if (sealed.nonce.size() != kNonceBytes || sealed.ciphertext.size() < kTagBytes) {
    return PermissionDenied("sealed record is truncated");
  }
  size_t body = sealed.ciphertext.size() - kTagBytes;
  std::string plaintext(body, '\0');
  Ctx ctx(EVP_CIPHER_CTX_new());
  int len = 0;
  std::string tag = sealed.ciphertext.substr(body);
  if (!ctx || !aes_256_gcm() || EVP_DecryptInit_ex(ctx.get(), aes_256_gcm(), nullptr, nullptr, nullptr) != 1 ||
      EVP_CIPHER_CTX_ctrl(ctx.get(), EVP_CTRL_GCM_SET_IVLEN, kNonceBytes, nullptr) != 1 ||
      EVP_DecryptInit_ex(ctx.get(), nullptr, nullptr, bytes(key), bytes(sealed.nonce)) != 1 ||
      EVP_DecryptUpdate(ctx.get(), nullptr, &len, bytes(associated_data), static_cast<int>(associated_data.size())) != 1 ||
      EVP_DecryptUpdate(ctx.get(), reinterpret_cast<unsigned char*>(plaintext.data()), &len, bytes(sealed.ciphertext),
                        static_cast<int>(body)) != 1 ||
      EVP_CIPHER_CTX_ctrl(ctx.get(), EVP_CTRL_GCM_SET_TAG, kTagBytes, tag.data()) != 1) {
    return Internal("AES-256-GCM decryption failed");
  }
  int total = len;
  if (EVP_DecryptFinal_ex(ctx.get(), reinterpret_cast<unsigned char*>(plaintext.data()) + total, &len) != 1) {
    // Wipe what was decrypted before the tag check failed.
    OPENSSL_cleanse(plaintext.data(), plaintext.size());
    return PermissionDenied("sealed record failed authentication (wrong key, tampered, or moved)");
  }
  return plaintext;
}

}  // namespace deputy::vault
