// Encryption keys for the token vault. A keyring holds every key that may still have
// records sealed under it, and names the active one that new records use.
//
// File format (JSON, mode 0600):
//   {"version":1,"active":"k-…","keys":[{"id":"k-…","key":"<base64 of 32 bytes>","created":<unix seconds>}]}
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "common/result.h"

namespace deputy::vault {

struct Key {
  std::string id;
  std::string material;  // 32 raw bytes
  int64_t created = 0;
};

class Keyring {
 public:
  static Result<Keyring> parse(const std::string& text, const std::string& source);
  static Result<Keyring> load(const std::string& path);
  // A keyring with one fresh random key.
  static Keyring generate(int64_t now);

  // Writes atomically (temp file, fsync, rename) with mode 0600.
  Status save(const std::string& path) const;
  std::string serialize() const;

  const Key& active() const;
  const Key* find(const std::string& id) const;
  const std::vector<Key>& keys() const { return keys_; }
  // Adds a fresh key and makes it active; returns its id.
  std::string rotate(int64_t now);

 private:
  std::vector<Key> keys_;
  std::string active_id_;
};

// The key material as the keyring file writes it (base64).
std::string base64_key_text(const Key& key);

struct LoadedKeyring {
  Keyring keyring;
  bool created = false;  // true: no file existed, a new one was written
};

// Startup rule: a missing file is created (and the caller warns); a file that exists but
// cannot be read or parsed is an error, so the server refuses to start.
Result<LoadedKeyring> load_or_create(const std::string& path, int64_t now);

}  // namespace deputy::vault
