#pragma once

#include <memory>
#include <string>

#include "store/database.h"

namespace deputy::store {

struct SqliteOptions {
  // Log length (pages) at which a checkpoint copies the log back into the database file,
  // and at which it also waits for a gap between writes to start the log over.
  int checkpoint_pages = 1000;
  int restart_pages = 16384;
};

// WAL mode, a pool of connections (readers run alongside the one writer), a prepared
// statement cache per connection, checkpoints on a thread of their own.
Result<std::unique_ptr<Database>> open_sqlite(const std::string& path, size_t pool_size, SqliteOptions options = {});

}  // namespace deputy::store
