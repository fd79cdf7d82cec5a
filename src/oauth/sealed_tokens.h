// A connection's tokens as the vault keeps them: sealed to the connection's identity (team,
// person, app, id), so a record moved to another row cannot be opened.
#pragma once

#include <string>

#include "common/result.h"
#include "store/connections.h"
#include "vault/token_vault.h"

namespace deputy::oauth {

struct TokenBundle {
  std::string access_token;
  std::string refresh_token;
  std::string token_type;
  std::string scope;
};

Result<store::ConnectionRecord> seal_tokens(vault::TokenVault& vault, store::ConnectionRecord record, const TokenBundle& bundle);
Result<TokenBundle> open_tokens(vault::TokenVault& vault, const store::ConnectionRecord& record);

}  // namespace deputy::oauth
