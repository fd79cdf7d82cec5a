#include "vault/aead.h"

#include <gtest/gtest.h>

namespace deputy::vault {
namespace {

const std::string kKey(32, '\x42');
const std::string kOtherKey(32, '\x43');

TEST(Aead, RoundTripsWithAFreshNonceEachTime) {
  auto a = seal(kKey, "refresh-token-value", "T1|U1|salesforce|7");
  auto b = seal(kKey, "refresh-token-value", "T1|U1|salesforce|7");
  ASSERT_TRUE(a && b);
  EXPECT_NE(a->nonce, b->nonce);
  EXPECT_NE(a->ciphertext, b->ciphertext);
  EXPECT_EQ(a->ciphertext.find("refresh-token-value"), std::string::npos);
  EXPECT_EQ(open(kKey, *a, "T1|U1|salesforce|7").value(), "refresh-token-value");
}

TEST(Aead, FlippingAnyByteMakesTheReadFail) {
  auto sealed = seal(kKey, "secret", "aad").value();
  for (size_t i = 0; i < sealed.ciphertext.size(); ++i) {
    Sealed tampered = sealed;
    tampered.ciphertext[i] ^= 0x01;
    EXPECT_FALSE(open(kKey, tampered, "aad")) << "byte " << i;
  }
  for (size_t i = 0; i < sealed.nonce.size(); ++i) {
    Sealed tampered = sealed;
    tampered.nonce[i] ^= 0x80;
    EXPECT_FALSE(open(kKey, tampered, "aad")) << "nonce byte " << i;
  }
}

TEST(Aead, OtherAssociatedDataOrKeyFails) {
  auto sealed = seal(kKey, "secret", "T1|U1|box|1").value();
  EXPECT_FALSE(open(kKey, sealed, "T1|U2|box|1"));
  EXPECT_FALSE(open(kOtherKey, sealed, "T1|U1|box|1"));
  Sealed truncated = sealed;
  truncated.ciphertext.resize(5);
  EXPECT_FALSE(open(kKey, truncated, "T1|U1|box|1"));
  EXPECT_FALSE(seal("short", "x", ""));
}

}  // namespace
}  // namespace deputy::vault
