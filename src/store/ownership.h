// Who holds the claims this process makes on deliveries and jobs: the epoch of its run
// (cluster/membership.h). Claims are stamped with it, and every later change to a claimed row is
// conditional on it, so a run that was taken over can change nothing it held.
#pragma once

#include <cstdint>

namespace deputy::store {

class Ownership {
 public:
  virtual ~Ownership() = default;
  virtual int64_t epoch() const = 0;
  // Whether this process may start work now (its heartbeat is not late).
  virtual bool fresh() const { return true; }
  // Whether work claimed under `epoch` may still be acted on.
  bool may_act_for(int64_t claimed_under) const { return claimed_under == epoch() && fresh(); }
};

// One epoch for good: tools, tests, and stores used before a process has joined.
class FixedOwnership final : public Ownership {
 public:
  explicit FixedOwnership(int64_t epoch) : epoch_(epoch) {}
  int64_t epoch() const override { return epoch_; }

 private:
  int64_t epoch_;
};

// Epoch 0, for a store nobody gave an owner.
const Ownership& unowned();

}  // namespace deputy::store
