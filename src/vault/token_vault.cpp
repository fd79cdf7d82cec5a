#include "vault/token_vault.h"

#include <sys/stat.h>

#include <spdlog/spdlog.h>

#include <chrono>

namespace deputy::vault {
namespace {

// Changes when the file is rewritten: the keyring is saved by rename, so the inode changes
// even when the coarse file clock shows the same modification time.
int64_t file_signature(const std::string& path) {
  struct stat info {};
  if (::stat(path.c_str(), &info) != 0) return 0;
  int64_t mtime = static_cast<int64_t>(info.st_mtim.tv_sec) * 1000000000 + info.st_mtim.tv_nsec;
  return mtime ^ (static_cast<int64_t>(info.st_ino) << 20) ^ static_cast<int64_t>(info.st_size);
}

int64_t now_ms() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

void append_field(std::string& out, std::string_view field) {
  out += std::to_string(field.size());
  out += ':';
  out += field;
}

}  // namespace

std::string RecordIdentity::associated_data(std::string_view purpose) const {
  std::string out = "deputy/v1";
  append_field(out, purpose);
  append_field(out, team_id);
  append_field(out, user_id);
  append_field(out, app);
  append_field(out, record_id);
  return out;
}

TokenVault::TokenVault(Keyring keyring, std::string path) : keyring_(std::move(keyring)), path_(std::move(path)) {
  if (!path_.empty()) loaded_mtime_ns_ = file_signature(path_);
}

void TokenVault::refresh(bool force) {
  if (path_.empty()) return;
  int64_t now = now_ms();
  if (!force && now - last_check_ms_ < 1000) return;
  last_check_ms_ = now;
  int64_t mtime = file_signature(path_);
  if (mtime == loaded_mtime_ns_ && !force) return;
  auto reloaded = Keyring::load(path_);
  if (!reloaded) {
    // Keep the keys we have: a half-written or broken file must not lock tokens away.
    spdlog::error("keyring {} changed but cannot be used, keeping the loaded keys: {}", path_, reloaded.status().message());
    return;
  }
  // A reloaded keyring must still hold every key we had; otherwise records would be lost.
  for (const Key& key : keyring_.keys()) {
    if (!reloaded->find(key.id)) {
      spdlog::error("keyring {} no longer has key {}, keeping the loaded keys", path_, key.id);
      return;
    }
  }
  keyring_ = std::move(reloaded).value();
  loaded_mtime_ns_ = mtime;
  spdlog::info("keyring reloaded; active key {}", keyring_.active().id);
}

std::string TokenVault::active_key_id() {
  std::lock_guard lock(mutex_);
  refresh(false);
  return keyring_.active().id;
}

Result<SealedRecord> TokenVault::seal(const RecordIdentity& identity, std::string_view purpose, std::string_view plaintext) {
  std::lock_guard lock(mutex_);
  refresh(false);
  const Key& key = keyring_.active();
  auto sealed = vault::seal(key.material, plaintext, identity.associated_data(purpose));
  if (!sealed) return sealed.status();
  return SealedRecord{key.id, std::move(sealed).value()};
}

Result<std::string> TokenVault::open(const RecordIdentity& identity, std::string_view purpose, const SealedRecord& record) {
  std::string material;
  {
    std::lock_guard lock(mutex_);
    const Key* key = keyring_.find(record.key_id);
    if (!key) {
      refresh(true);
      key = keyring_.find(record.key_id);
    }
    if (!key) return FailedPrecondition("record is sealed with key " + record.key_id + ", which is not in the keyring");
    material = key->material;
  }
  return vault::open(material, record.sealed, identity.associated_data(purpose));
}

}  // namespace deputy::vault
