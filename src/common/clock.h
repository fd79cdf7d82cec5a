// Time and randomness come through interfaces so tests can pin them.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <string>

namespace deputy {

class Clock {
 public:
  virtual ~Clock() = default;
  virtual std::chrono::system_clock::time_point now() const = 0;
  int64_t unix_seconds() const {
    return std::chrono::duration_cast<std::chrono::seconds>(now().time_since_epoch()).count();
  }
  int64_t unix_millis() const {
    return std::chrono::duration_cast<std::chrono::milliseconds>(now().time_since_epoch()).count();
  }
};

class SystemClock final : public Clock {
 public:
  std::chrono::system_clock::time_point now() const override { return std::chrono::system_clock::now(); }
  static const SystemClock& instance();
};

// A clock tests move by hand; safe to read on other threads while the test moves it.
class FixedClock final : public Clock {
 public:
  explicit FixedClock(int64_t unix_seconds) : ticks_(std::chrono::system_clock::duration(std::chrono::seconds(unix_seconds)).count()) {}
  std::chrono::system_clock::time_point now() const override {
    return std::chrono::system_clock::time_point(std::chrono::system_clock::duration(ticks_.load()));
  }
  void advance(std::chrono::milliseconds by) { ticks_ += std::chrono::system_clock::duration(by).count(); }
  void set(int64_t unix_seconds) { ticks_ = std::chrono::system_clock::duration(std::chrono::seconds(unix_seconds)).count(); }

 private:
  std::atomic<std::chrono::system_clock::rep> ticks_;
};

// Cryptographically secure bytes; the OpenSSL-backed source is the only one used outside tests.
class RandomSource {
 public:
  virtual ~RandomSource() = default;
  virtual std::string bytes(size_t n) = 0;
};

class SecureRandom final : public RandomSource {
 public:
  std::string bytes(size_t n) override;
  static SecureRandom& instance();
};

}  // namespace deputy
