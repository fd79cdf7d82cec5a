#pragma once

#include <memory>
#include <string>

#include "store/database.h"

namespace deputy::store {

// WAL mode, a pool of connections (readers run alongside the one writer), a prepared
// statement cache per connection.
Result<std::unique_ptr<Database>> open_sqlite(const std::string& path, size_t pool_size);

}  // namespace deputy::store
