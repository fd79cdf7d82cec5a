// Seals and opens token bundles bound to their owner. The associated data is the record's
// identity (workspace, user, app, connection id): a sealed record copied to another row
// fails to open. The keyring file is re-read when it changes, so `deputy keys rotate`
// takes effect in a running server without a restart.
#pragma once

#include <cstdint>
#include <mutex>
#include <optional>
#include <string>

#include "common/result.h"
#include "vault/aead.h"
#include "vault/keyring.h"

namespace deputy::vault {

struct RecordIdentity {
  std::string team_id;
  std::string user_id;  // empty for shared connections
  std::string app;
  std::string record_id;
  // Unambiguous encoding: each field length-prefixed, with a purpose label.
  std::string associated_data(std::string_view purpose) const;
};

struct SealedRecord {
  std::string key_id;
  Sealed sealed;
};

class TokenVault {
 public:
  // path: keyring file, re-read on change. Empty path: `keyring` is fixed (from the environment).
  TokenVault(Keyring keyring, std::string path);

  Result<SealedRecord> seal(const RecordIdentity& identity, std::string_view purpose, std::string_view plaintext);
  Result<std::string> open(const RecordIdentity& identity, std::string_view purpose, const SealedRecord& record);
  std::string active_key_id();

 private:
  // Re-reads the keyring file if it changed since the last look (or when forced).
  void refresh(bool force);

  std::mutex mutex_;
  Keyring keyring_;
  std::string path_;
  int64_t loaded_mtime_ns_ = 0;
  int64_t last_check_ms_ = 0;
};

}  // namespace deputy::vault
