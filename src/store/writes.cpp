#include "store/writes.h"

namespace deputy::store {

Status DirectWrites::write_now(const Work& work, Durability durability) {
  auto lease = database_.acquire();
  if (!lease) return lease.status();
  return with_write_transaction(**lease, work, durability);
}

void DirectWrites::write(Work work, Durability durability, Written written) { written(write_now(work, durability)); }

}  // namespace deputy::store
