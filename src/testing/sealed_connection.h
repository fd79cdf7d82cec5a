// A stored connection as the vault would seal it, for tests that need one in the database.
#pragma once

#include <string>

#include "store/connections.h"
#include "vault/token_vault.h"

namespace deputy::testing {

// `tokens` is the sealed bundle's JSON ({"access_token": …, "refresh_token": …}).
inline store::ConnectionRecord sealed_connection(vault::TokenVault& vault, const std::string& id, const std::string& user,
                                                 const std::string& app, const std::string& tokens, int64_t expires_at,
                                                 const std::string& api_base_url, const std::string& team = "T1") {
  store::ConnectionRecord r;
  r.id = id;
  r.team_id = team;
  r.user_id = user;
  r.app = app;
  r.status = "active";
  r.account = user + "@example.com";
  r.subject = user;
  r.api_base_url = api_base_url;
  r.access_expires_at = expires_at;
  auto sealed = vault.seal({team, user, app, r.id}, "connection", tokens).value();
  r.key_id = sealed.key_id;
  r.nonce = store::Blob{sealed.sealed.nonce};
  r.sealed = store::Blob{sealed.sealed.ciphertext};
  return r;
}

}  // namespace deputy::testing
