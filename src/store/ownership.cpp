#include "store/ownership.h"

namespace deputy::store {

const Ownership& unowned() {
  static const FixedOwnership kNobody(0);
  return kNobody;
}

}  // namespace deputy::store
