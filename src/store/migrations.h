#pragma once

#include "store/database.h"

namespace deputy::store {

// Brings the schema up to date; safe to run from several processes at once.
Status migrate(Database& database);

// The newest schema version this build knows.
int latest_schema_version();

}  // namespace deputy::store
