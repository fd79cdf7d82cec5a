// Startup and rotation checks that keep the vault fail-closed.
#pragma once

#include <string>

#include "common/clock.h"
#include "store/connections.h"
#include "store/database.h"
#include "vault/token_vault.h"

namespace deputy::server {

// Every key id used by stored records must be in the keyring, and each key must open the
// canary sealed with it earlier: a replaced or wrong key file stops the server.
Status verify_keyring(vault::TokenVault& vault, const vault::Keyring& keyring, store::Database& database, const Clock& clock);

struct RotationReport {
  std::string new_key_id;
  size_t reencrypted = 0;
};

// Adds a new active key to the keyring file and re-seals every connection under it. Safe
// while servers run: they pick up the new keyring file, and rows are updated one by one
// with an optimistic version check.
Result<RotationReport> rotate_keys(const std::string& keyring_path, store::Database& database, const Clock& clock);

}  // namespace deputy::server
