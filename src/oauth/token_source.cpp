#include "oauth/token_source.h"

#include <spdlog/spdlog.h>

#include <thread>

#include "oauth/events.h"
#include "oauth/sealed_tokens.h"

namespace deputy::oauth {

TokenSource::TokenSource(AppRegistry& apps, Protocol& protocol, store::Connections& connections, vault::TokenVault& vault,
                         const Clock& clock, metrics::Registry& metrics, RenewalOptions options, Post renewals, Sleeper sleeper)
    : apps_(apps),
      protocol_(protocol),
      connections_(connections),
      vault_(vault),
      clock_(clock),
      metrics_(metrics),
      options_(options),
      renewals_(std::move(renewals)),
      sleep_(std::move(sleeper)) {
  if (!sleep_) sleep_ = [](std::chrono::milliseconds d) { std::this_thread::sleep_for(d); };
  describe_events(metrics_);
}

std::shared_ptr<TokenSource::RefreshTurn> TokenSource::refresh_turn(const std::string& connection_id) {
  std::lock_guard lock(locks_mutex_);
  auto& weak = locks_[connection_id];
  auto strong = weak.lock();
  if (!strong) {
    strong = std::make_shared<RefreshTurn>();
    weak = strong;
  }
  if (locks_.size() > 1024) {
    for (auto it = locks_.begin(); it != locks_.end();) it = it->second.expired() ? locks_.erase(it) : std::next(it);
  }
  return strong;
}

Result<AccessGrant> TokenSource::grant_of(const store::ConnectionRecord& record) {
  auto bundle = open_tokens(vault_, record);
  if (!bundle) return bundle.status();
  return AccessGrant{record.id, bundle->access_token, record.api_base_url, record.account, record.version};
}

Result<store::ConnectionRecord> TokenSource::usable_record(const std::string& team_id, const std::string& user_id,
                                                                const std::string& app_id, store::ConnectionMode mode) {
  auto found = connections_.find(team_id, mode == store::ConnectionMode::kShared ? "" : user_id, app_id, mode);
  if (!found) return found.status();
  if (!found->has_value()) return NotFound("no " + std::string(store::mode_name(mode)) + " connection to " + app_id);
  const store::ConnectionRecord& record = **found;
  if (record.status == "needs_reauth") return Unauthenticated("the " + app_id + " connection needs a new login");
  if (record.status != "active") return NotFound("the " + app_id + " connection is not finished");
  // "Last used" is shown to people by the minute; writing it on every read would turn each
  // read into a database write.
  if (clock_.unix_seconds() - record.last_used_at >= 60) (void)connections_.touch(record.id);
  return std::move(**found);
}

Result<AccessGrant> TokenSource::access(const std::string& team_id, const std::string& user_id, const std::string& app_id,
                                              store::ConnectionMode mode) {
  auto record = usable_record(team_id, user_id, app_id, mode);
  if (!record) return record.status();
  if (!expiring(*record)) return grant_of(*record);
  return refresh_locked(record->id, "", record->version);
}

bool TokenSource::expiring(const store::ConnectionRecord& record) const {
  if (record.access_expires_at == 0) return false;  // lifetime unknown: renewed after a 401 instead
  // Renew a minute early, or a quarter of the lifetime early for short-lived tokens.
  int64_t lifetime = std::max<int64_t>(1, record.access_expires_at - record.updated_at);
  int64_t skew = std::min<int64_t>(options_.refresh_skew.count(), lifetime / 4);
  return clock_.unix_seconds() >= record.access_expires_at - skew;
}

Result<AccessGrant> TokenSource::refresh_after_rejection(const AccessGrant& rejected) {
  return refresh_locked(rejected.connection_id, rejected.access_token, rejected.version);
}

void TokenSource::start_access(const std::string& team_id, const std::string& user_id, const std::string& app_id,
                                     store::ConnectionMode mode, Granted granted) {
  auto record = usable_record(team_id, user_id, app_id, mode);
  if (!record) return granted(record.status());
  if (!expiring(*record)) return granted(grant_of(*record));
  renew_once(record->id, "", record->version, std::move(granted));
}

void TokenSource::start_refresh_after_rejection(const AccessGrant& rejected, Granted granted) {
  renew_once(rejected.connection_id, rejected.access_token, rejected.version, std::move(granted));
}

void TokenSource::renew_once(const std::string& connection_id, const std::string& rejected_token, int64_t seen_version,
                                   Granted granted) {
  {
    std::lock_guard lock(renewing_mutex_);
    auto [waiting, first] = renewing_.try_emplace(connection_id);
    waiting->second.push_back(std::move(granted));
    if (!first) return;  // a renewal is under way: its answer is this caller's too
  }
  auto renew = [this, connection_id, rejected_token, seen_version] {
    auto renewed = refresh_locked(connection_id, rejected_token, seen_version);
    std::vector<Granted> waiting;
    {
      std::lock_guard lock(renewing_mutex_);
      auto it = renewing_.find(connection_id);
      if (it != renewing_.end()) {
        waiting = std::move(it->second);
        renewing_.erase(it);
      }
    }
    for (auto& g : waiting) g(renewed);
  };
  if (renewals_) renewals_(std::move(renew));
  else renew();
}

size_t TokenSource::renewals_in_flight() {
  std::lock_guard lock(renewing_mutex_);
  return renewing_.size();
}

Result<AccessGrant> TokenSource::refresh_locked(const std::string& connection_id, const std::string& rejected_token,
                                                      int64_t seen_version) {
  // One refresh at a time per connection: in this process by mutex, across processes by the
  // database lock. Whoever waited re-reads the record and uses the token the winner stored.
  auto turn = refresh_turn(connection_id);
  const auto asked_at = std::chrono::steady_clock::now();
  std::lock_guard in_process(turn->mutex);
  if (!turn->failure.ok() && turn->failed_at >= asked_at) return turn->failure;
  std::optional<Result<AccessGrant>> outcome;
  Status locked = connections_.with_refresh_lock(connection_id, [&]() -> Status {
    auto current = connections_.by_id(connection_id);
    if (!current) return current.status();
    if (!current->has_value()) {
      outcome = Result<AccessGrant>(NotFound("the connection was removed"));
      return Status::Ok();
    }
    store::ConnectionRecord record = **current;
    if (record.status == "needs_reauth") {
      outcome = Result<AccessGrant>(Unauthenticated("the " + record.app + " connection needs a new login"));
      return Status::Ok();
    }
    auto bundle = open_tokens(vault_, record);
    if (!bundle) return bundle.status();
    // Whoever held the lock before us may have renewed the tokens already: then use theirs.
    bool someone_refreshed = record.version != seen_version || (!rejected_token.empty() && bundle->access_token != rejected_token);
    if (someone_refreshed) {
      outcome = AccessGrant{record.id, bundle->access_token, record.api_base_url, record.account, record.version};
      return Status::Ok();
    }
    auto found = apps_.find(record.app);
    if (!found) return found.status();
    const App& a = **found;
    if (bundle->refresh_token.empty()) {
      (void)connections_.set_status(record.id, "needs_reauth",
                                    store::AuditEvent{record.team_id, "refresh_failed", "system", record.user_id, record.app, record.id, "", "no refresh token"});
      outcome = Result<AccessGrant>(Unauthenticated("the " + a.display_name + " login has expired and cannot be renewed"));
      return Status::Ok();
    }
    std::chrono::milliseconds backoff = options_.refresh_backoff;
    for (int attempt = 1; attempt <= options_.refresh_attempts; ++attempt) {
      TokenResult result = protocol_.refresh(a, bundle->refresh_token);
      if (auto* tokens = std::get_if<TokenSet>(&result)) {
        TokenBundle next{tokens->access_token, tokens->refresh_token.empty() ? bundle->refresh_token : tokens->refresh_token,
                    tokens->token_type.empty() ? bundle->token_type : tokens->token_type, tokens->scope.empty() ? bundle->scope : tokens->scope};
        store::ConnectionRecord updated = record;
        updated.access_expires_at = tokens->expires_in ? clock_.unix_seconds() + *tokens->expires_in : 0;
        if (!tokens->instance_url.empty()) updated.api_base_url = AppRegistry::api_base(a, tokens->instance_url);
        auto sealed = seal_tokens(vault_, updated, next);
        if (!sealed) return sealed.status();
        auto replaced = connections_.replace_tokens(*sealed, record.version,
                                                    store::AuditEvent{record.team_id, "refreshed", "system", record.user_id, record.app, record.id, "", ""});
        if (!replaced) return replaced.status();
        if (!*replaced) return Internal("the connection changed during a locked refresh");
        count_event(metrics_, "refreshed", record.app);
        outcome = AccessGrant{record.id, next.access_token, updated.api_base_url, record.account, record.version + 1};
        return Status::Ok();
      }
      const TokenError& error = std::get<TokenError>(result);
      if (error.failure == TokenFailure::kTerminal) {
        count_event(metrics_, "refresh_refused", record.app);
        (void)connections_.set_status(record.id, "needs_reauth",
                                      store::AuditEvent{record.team_id, "refresh_failed", "system", record.user_id, record.app, record.id, "", error.describe()});
        outcome = Result<AccessGrant>(Unauthenticated(a.display_name + " refused to renew the login (" + error.describe() + ")"));
        return Status::Ok();
      }
      if (error.failure == TokenFailure::kRejected) {
        count_event(metrics_, "refresh_rejected", record.app);
        outcome = Result<AccessGrant>(Internal(a.display_name + " rejected the refresh request (" + error.describe() + "); check the app settings"));
        return Status::Ok();
      }
      count_event(metrics_, "refresh_transient_failure", record.app);
      spdlog::warn("refreshing {} connection {} failed ({}), attempt {}/{}", record.app, record.id, error.describe(), attempt,
                   options_.refresh_attempts);
      if (attempt < options_.refresh_attempts) sleep_(backoff);
      backoff *= 2;
    }
    outcome = Result<AccessGrant>(Unavailable(a.display_name + " could not renew the login: its login service did not answer"));
    return Status::Ok();
  });
  if (!locked.ok()) return locked;
  const bool passing_failure = !outcome->ok() && outcome->status().code() == ErrorCode::kUnavailable;
  turn->failure = passing_failure ? outcome->status() : Status::Ok();
  turn->failed_at = std::chrono::steady_clock::now();
  return std::move(*outcome);
}

Result<std::string> TokenSource::whoami(const std::string& team_id, const std::string& user_id, const std::string& app_id) {
  auto found = apps_.find(app_id);
  if (!found) return found.status();
  const App& a = **found;
  std::string url = a.identity_source == IdentitySource::kApi ? a.identity_url : a.userinfo_url;
  if (url.empty()) return FailedPrecondition(a.display_name + " has no endpoint that says who is logged in");
  auto grant = access(team_id, user_id, app_id, store::ConnectionMode::kPersonal);
  if (!grant) return grant.status();
  auto answer = protocol_.get_json(url, grant->access_token);
  if (!answer && answer.status().code() == ErrorCode::kUnauthenticated) {
    auto renewed = refresh_after_rejection(*grant);
    if (!renewed) return renewed.status();
    answer = protocol_.get_json(url, renewed->access_token);
  }
  if (!answer) return answer.status();
  std::string field = a.identity_source == IdentitySource::kApi ? a.identity_field : "/" + a.identity_field;
  std::string account = json_pointer_string(*answer, field);
  if (account.empty()) account = json_pointer_string(*answer, "/email");
  if (account.empty()) account = json_pointer_string(*answer, "/sub");
  return account;
}

}  // namespace deputy::oauth
