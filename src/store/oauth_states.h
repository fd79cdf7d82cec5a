// Pending OAuth logins. Only a hash of each `state` is stored, so reading the database
// does not let anyone finish someone else's login; the PKCE verifier is stored sealed.
#pragma once

#include <optional>
#include <string>

#include "common/clock.h"
#include "store/database.h"

namespace deputy::store {

struct PendingLogin {
  std::string state_hash;
  std::string team_id;
  std::string user_id;
  std::string app;
  std::string mode;  // personal or shared
  std::string job_id;
  std::string key_id;
  Blob nonce;
  Blob sealed;  // the PKCE verifier and OIDC nonce, sealed by the vault
  std::string browser_hash;  // hash of the cookie set when the login started in a browser
  int64_t created_at = 0;
  int64_t expires_at = 0;
};

enum class StateOutcome { kConsumed, kUnknown, kAlreadyUsed, kExpired };

class OAuthStates {
 public:
  OAuthStates(Database& database, const Clock& clock);
  Status create(const PendingLogin& login);
  // The /oauth/start link works once: it binds the login to the browser that opened it.
  Result<std::pair<StateOutcome, std::optional<PendingLogin>>> start(const std::string& state_hash,
                                                                     const std::string& browser_hash);
  // Marks the state used, atomically, and returns it; a state can be consumed only once.
  Result<std::pair<StateOutcome, std::optional<PendingLogin>>> consume(const std::string& state_hash);
  // Ends the logins one person has in flight (offboarding): they count as used, so their
  // links and callbacks are refused as already finished or cancelled.
  Result<int64_t> cancel_pending(const std::string& team_id, const std::string& user_id);
  Status purge_expired();

 private:
  Database& database_;
  const Clock& clock_;
};

}  // namespace deputy::store
