// A process's claim on its work, switched by a test: its heartbeat late, or its run taken over
// (joined again under another epoch).
#pragma once

#include <atomic>
#include <cstdint>

#include "store/ownership.h"

namespace deputy::testing {

struct SwitchableOwnership final : store::Ownership {
  std::atomic<int64_t> current{7};
  std::atomic<bool> heartbeat_held{true};
  int64_t epoch() const override { return current; }
  bool fresh() const override { return heartbeat_held; }
};

}  // namespace deputy::testing
