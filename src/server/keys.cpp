#include "server/keys.h"

#include <spdlog/spdlog.h>

namespace deputy::server {
namespace {

constexpr const char* kCanaryText = "deputy keyring canary";

vault::RecordIdentity canary_identity(const std::string& key_id) { return {"-", "-", "-", key_id}; }

Status ensure_canaries(vault::TokenVault& vault, const vault::Keyring& keyring, store::Database& database, const Clock& clock) {
  auto lease = database.acquire();
  if (!lease) return lease.status();
  for (const vault::Key& key : keyring.keys()) {
    auto rows = (*lease)->query("SELECT nonce, sealed FROM vault_canary WHERE key_id = ?", {key.id});
    if (!rows) return rows.status();
    if (!rows->empty()) {
      vault::SealedRecord record{key.id, {rows->front().blob(0), rows->front().blob(1)}};
      auto opened = vault.open(canary_identity(key.id), "canary", record);
      if (!opened || *opened != kCanaryText) {
        return FailedPrecondition("key '" + key.id + "' in the keyring is not the key this database was encrypted with; refusing to start");
      }
      continue;
    }
    auto sealed = vault::seal(key.material, kCanaryText, canary_identity(key.id).associated_data("canary"));
    if (!sealed) return sealed.status();
    auto inserted = (*lease)->execute("INSERT INTO vault_canary (key_id, nonce, sealed, created_at) VALUES (?, ?, ?, ?) ON CONFLICT DO NOTHING",
                                      {key.id, store::Blob{sealed->nonce}, store::Blob{sealed->ciphertext}, clock.unix_seconds()});
    if (!inserted) return inserted.status();
  }
  return Status::Ok();
}

}  // namespace

Status verify_keyring(vault::TokenVault& vault, const vault::Keyring& keyring, store::Database& database, const Clock& clock) {
  store::Connections connections(database, clock);
  auto used = connections.key_ids_in_use();
  if (!used) return used.status();
  for (const auto& id : *used) {
    if (!keyring.find(id))
      return FailedPrecondition("this database was encrypted with key '" + id +
                                "', which the keyring does not have (wrong or replaced key file?); refusing to start");
  }
  return ensure_canaries(vault, keyring, database, clock);
}

Result<RotationReport> rotate_keys(const std::string& keyring_path, store::Database& database, const Clock& clock) {
  auto keyring = vault::Keyring::load(keyring_path);
  if (!keyring) return keyring.status();
  vault::TokenVault old_vault(*keyring, "");
  if (Status s = verify_keyring(old_vault, *keyring, database, clock); !s.ok()) return s;
  RotationReport report;
  report.new_key_id = keyring->rotate(clock.unix_seconds());
  if (Status s = keyring->save(keyring_path); !s.ok()) return s;
  vault::TokenVault vault(*keyring, "");
  if (Status s = ensure_canaries(vault, *keyring, database, clock); !s.ok()) return s;
  store::Connections connections(database, clock);
  // Loop until nothing is left under an old key: a server that had not yet re-read the
  // keyring may have sealed a record with the old key meanwhile.
  for (int round = 0; round < 100; ++round) {
    auto batch = connections.sealed_with_other_key(report.new_key_id, 500);
    if (!batch) return batch.status();
    if (batch->empty()) return report;
    for (auto& record : *batch) {
      vault::RecordIdentity identity{record.team_id, record.user_id, record.app, record.id};
      auto plain = vault.open(identity, "connection", {record.key_id, {record.nonce.bytes, record.sealed.bytes}});
      if (!plain) return Internal("connection " + record.id + " cannot be opened: " + plain.status().message());
      auto sealed = vault.seal(identity, "connection", *plain);
      if (!sealed) return sealed.status();
      store::ConnectionRecord updated = record;
      updated.key_id = sealed->key_id;
      updated.nonce = store::Blob{sealed->sealed.nonce};
      updated.sealed = store::Blob{sealed->sealed.ciphertext};
      auto replaced = connections.replace_tokens(updated, record.version, std::nullopt);
      if (!replaced) return replaced.status();
      if (*replaced) ++report.reencrypted;  // else a refresh raced us; the next round sees its new row
    }
  }
  return Internal("key rotation did not converge; run it again");
}

}  // namespace deputy::server
