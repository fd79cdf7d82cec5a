#include "oauth/sealed_tokens.h"

#include <nlohmann/json.hpp>

namespace deputy::oauth {

Result<store::ConnectionRecord> seal_tokens(vault::TokenVault& vault, store::ConnectionRecord record, const TokenBundle& bundle) {
  nlohmann::json json = {{"access_token", bundle.access_token}, {"refresh_token", bundle.refresh_token},
                         {"token_type", bundle.token_type}, {"scope", bundle.scope}};
  auto sealed = vault.seal({record.team_id, record.user_id, record.app, record.id}, "connection", json.dump());
  if (!sealed) return sealed.status();
  record.key_id = sealed->key_id;
  record.nonce = store::Blob{sealed->sealed.nonce};
  record.sealed = store::Blob{sealed->sealed.ciphertext};
  return record;
}

Result<TokenBundle> open_tokens(vault::TokenVault& vault, const store::ConnectionRecord& record) {
  auto text = vault.open({record.team_id, record.user_id, record.app, record.id}, "connection",
                         {record.key_id, {record.nonce.bytes, record.sealed.bytes}});
  if (!text) return text.status();
  auto json = nlohmann::json::parse(*text, nullptr, false);
  if (json.is_discarded()) return Internal("sealed connection holds no JSON");
  return TokenBundle{json.value("access_token", ""), json.value("refresh_token", ""), json.value("token_type", ""), json.value("scope", "")};
}

}  // namespace deputy::oauth
