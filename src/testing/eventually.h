// Polls a condition that another thread makes true, for tests of concurrent code.
#pragma once

#include <chrono>
#include <thread>

namespace deputy::testing {

// True as soon as `predicate()` is; false if it still is not after `timeout`.
template <typename Predicate>
bool eventually(Predicate predicate, std::chrono::milliseconds timeout = std::chrono::milliseconds(5000)) {
  auto until = std::chrono::steady_clock::now() + timeout;
  while (std::chrono::steady_clock::now() < until) {
    if (predicate()) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  return predicate();
}

}  // namespace deputy::testing
