#include "common/clock.h"

#include <openssl/rand.h>

#include <stdexcept>

namespace deputy {

const SystemClock& SystemClock::instance() {
  static const SystemClock clock;
  return clock;
}

std::string SecureRandom::bytes(size_t n) {
  std::string out(n, '\0');
  if (RAND_bytes(reinterpret_cast<unsigned char*>(out.data()), static_cast<int>(n)) != 1) {
    // Without entropy nothing secure can be made; this is truly exceptional.
    throw std::runtime_error("OpenSSL RAND_bytes failed");
  }
  return out;
}

SecureRandom& SecureRandom::instance() {
  static SecureRandom random;
  return random;
}

}  // namespace deputy
