#include "vault/token_vault.h"

#include <gtest/gtest.h>

namespace deputy::vault {
namespace {

const RecordIdentity kAlices{"T1", "U0ALICE", "salesforce", "conn-1"};

class TokenVaultTest : public ::testing::Test {
 protected:
  TokenVault vault{Keyring::generate(1700000000), ""};
  SealedRecord sealed = vault.seal(kAlices, "connection", R"({"access_token":"at-alice"})").value();
};

TEST_F(TokenVaultTest, OpensForTheIdentityItWasSealedFor) {
  auto opened = vault.open(kAlices, "connection", sealed);
  ASSERT_TRUE(opened) << opened.status().message();
  EXPECT_EQ(*opened, R"({"access_token":"at-alice"})");
}

// An attacker with write access to the database who rewrites one field of Alice's row, to
// make her tokens act for someone else, gets nothing: every field is bound to the seal.
TEST_F(TokenVaultTest, ARowWithAnyOfItsIdentityRewrittenDoesNotOpen) {
  RecordIdentity other_user = kAlices;
  other_user.user_id = "U0MALLORY";
  EXPECT_FALSE(vault.open(other_user, "connection", sealed)) << "the same row, its user rewritten";
  RecordIdentity shared = kAlices;
  shared.user_id = "";
  EXPECT_FALSE(vault.open(shared, "connection", sealed)) << "turned into a shared connection";
  RecordIdentity other_team = kAlices;
  other_team.team_id = "T2";
  EXPECT_FALSE(vault.open(other_team, "connection", sealed));
  RecordIdentity other_app = kAlices;
  other_app.app = "box";
  EXPECT_FALSE(vault.open(other_app, "connection", sealed));
  RecordIdentity other_row = kAlices;
  other_row.record_id = "conn-2";
  EXPECT_FALSE(vault.open(other_row, "connection", sealed)) << "copied to another row";
  EXPECT_FALSE(vault.open(kAlices, "oauth_state", sealed)) << "read for another purpose";
}

TEST(RecordIdentity, FieldsCannotBeShiftedIntoOneAnother) {
  EXPECT_NE((RecordIdentity{"T1", "U1", "ab", "c"}.associated_data("connection")),
            (RecordIdentity{"T1", "U1", "a", "bc"}.associated_data("connection")));
  EXPECT_NE((RecordIdentity{"T1", "U1x", "app", "id"}.associated_data("connection")),
            (RecordIdentity{"T1", "U1", "xapp", "id"}.associated_data("connection")));
}

}  // namespace
}  // namespace deputy::vault
