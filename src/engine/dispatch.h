// Deliveries to their handlers by kind: one handler registered per kind, so a kind nobody
// handles is found at start (missing()) and a stored kind nobody knows fails its delivery
// plainly instead of being routed as a command.
#pragma once

#include <map>
#include <vector>

#include "common/delivery_kind.h"
#include "engine/workers.h"

namespace deputy::engine {

class Dispatch {
 public:
  // Registers the one handler of `kind`; registering a kind twice is a programming error.
  void on(DeliveryKind kind, Workers::StartHandle handler);
  // The kinds without a handler.
  std::vector<DeliveryKind> missing() const;
  void operator()(const store::ClaimedDelivery& delivery, Workers::Finish finish) const;

 private:
  std::map<DeliveryKind, Workers::StartHandle> handlers_;
};

}  // namespace deputy::engine
