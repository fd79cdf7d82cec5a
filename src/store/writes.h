// Where writes that a caller can wait for asynchronously go. On SQLite one writer thread
// commits many callers' writes in one transaction (group commit), so no worker holds the
// database's only write lock while an ack waits for it; elsewhere each write is its own
// transaction on the calling thread.
#pragma once

#include <functional>

#include "store/database.h"

namespace deputy::store {

class Writes {
 public:
  using Work = std::function<Status(Connection&)>;
  using Written = std::function<void(Status)>;
  virtual ~Writes() = default;
  // Runs `work` inside a write transaction, perhaps beside other callers' work; its changes
  // are kept only if it returns Ok. `written` is told once, after the commit (or the failure),
  // perhaps on another thread. Writes are committed in the order they were asked for.
  virtual void write(Work work, Durability durability, Written written) = 0;
};

// Each write in a transaction of its own, on the calling thread, before write() returns.
class DirectWrites final : public Writes {
 public:
  explicit DirectWrites(Database& database) : database_(database) {}
  void write(Work work, Durability durability, Written written) override;
  // The same, answered as a value.
  Status write_now(const Work& work, Durability durability);

 private:
  Database& database_;
};

}  // namespace deputy::store
