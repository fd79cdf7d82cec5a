#include "server/keys.h"

#include <gtest/gtest.h>

#include "testing/databases.h"

namespace deputy::server {
namespace {

struct KeysTest : ::testing::Test {
  testing::TestDatabase db{"sqlite"};
  testing::TempDir dir;
  FixedClock clock{1700000000};
  std::string keys = dir.file("deputy.keys");

  store::ConnectionRecord seal(vault::TokenVault& vault, const std::string& user) {
    store::ConnectionRecord r;
    r.id = "c-" + user;
    r.team_id = "T1";
    r.user_id = user;
    r.app = "demo";
    r.status = "active";
    r.account = user;
    r.subject = user;
    auto sealed = vault.seal({"T1", user, "demo", r.id}, "connection", "{\"access_token\":\"at-" + user + "\"}").value();
    r.key_id = sealed.key_id;
    r.nonce = store::Blob{sealed.sealed.nonce};
    r.sealed = store::Blob{sealed.sealed.ciphertext};
    return r;
  }
};

TEST_F(KeysTest, AWrongKeyFileStopsTheServer) {
  auto first = vault::load_or_create(keys, 1).value().keyring;
  vault::TokenVault vault(first, keys);
  ASSERT_TRUE(verify_keyring(vault, first, *db.database, clock).ok());
  // Someone replaces the key file with one that keeps the key id but not the key.
  std::string text = first.serialize();
  auto other = vault::Keyring::generate(2);
  std::string fake = text;
  fake.replace(fake.find(vault::base64_key_text(first.active())), vault::base64_key_text(first.active()).size(),
               vault::base64_key_text(other.active()));
  auto wrong = vault::Keyring::parse(fake, "x").value();
  vault::TokenVault wrong_vault(wrong, "");
  auto refused = verify_keyring(wrong_vault, wrong, *db.database, clock);
  EXPECT_EQ(refused.code(), ErrorCode::kFailedPrecondition) << refused.message();
}

TEST_F(KeysTest, MissingKeysForStoredRecordsStopTheServer) {
  auto ring = vault::Keyring::generate(1);
  vault::TokenVault vault(ring, "");
  store::Connections connections(*db.database, clock);
  ASSERT_TRUE(connections.upsert(seal(vault, "alice"), std::nullopt).ok());
  auto unrelated = vault::Keyring::generate(2);
  vault::TokenVault unrelated_vault(unrelated, "");
  EXPECT_EQ(verify_keyring(unrelated_vault, unrelated, *db.database, clock).code(), ErrorCode::kFailedPrecondition);
}

TEST_F(KeysTest, RotationReencryptsEveryRecordAndAReloadingVaultStillReadsThem) {
  auto ring = vault::load_or_create(keys, 1).value().keyring;
  vault::TokenVault server_vault(ring, keys);  // a running server's vault, re-reading the file
  ASSERT_TRUE(verify_keyring(server_vault, ring, *db.database, clock).ok());
  store::Connections connections(*db.database, clock);
  for (const char* user : {"alice", "bob", "carol"}) ASSERT_TRUE(connections.upsert(seal(server_vault, user), std::nullopt).ok());
  std::string old_key = ring.active().id;

  auto report = rotate_keys(keys, *db.database, clock);
  ASSERT_TRUE(report) << report.status().message();
  EXPECT_EQ(report->reencrypted, 3u);
  EXPECT_NE(report->new_key_id, old_key);
  for (const char* user : {"alice", "bob", "carol"}) {
    auto record = connections.by_id(std::string("c-") + user)->value();
    EXPECT_EQ(record.key_id, report->new_key_id);
    auto opened = server_vault.open({"T1", user, "demo", record.id}, "connection", {record.key_id, {record.nonce.bytes, record.sealed.bytes}});
    ASSERT_TRUE(opened) << "the running server picks up the new key without a restart";
    EXPECT_EQ(*opened, std::string("{\"access_token\":\"at-") + user + "\"}");
  }
  auto reloaded = vault::Keyring::load(keys).value();
  EXPECT_NE(reloaded.find(old_key), nullptr) << "old keys stay for records in flight";
  vault::TokenVault fresh(reloaded, keys);
  EXPECT_TRUE(verify_keyring(fresh, reloaded, *db.database, clock).ok());
}

}  // namespace
}  // namespace deputy::server
