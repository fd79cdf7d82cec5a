#pragma once

#include <memory>
#include <string>

#include "store/database.h"

namespace deputy::store {

// libpq connections; `?` placeholders are rewritten to $1..$n.
Result<std::unique_ptr<Database>> open_postgres(const std::string& url, size_t pool_size);

// Exposed for tests: rewrites `?` outside quoted literals to PostgreSQL's $n.
std::string to_postgres_placeholders(std::string_view sql);

}  // namespace deputy::store
