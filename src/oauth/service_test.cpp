#include "oauth/service.h"
#include "oauth/token_source.h"

#include <gtest/gtest.h>

#include <functional>

#include <atomic>
#include <thread>

#include "common/encoding.h"
#include "testing/databases.h"
#include "testing/demo_app.h"
#include "testing/sealed_connection.h"

namespace deputy::oauth {
namespace {

// Answers the token and revocation endpoints like a rotating authorization server.
class FakeAuthServer final : public http::Client {
 public:
  void start(http::ClientRequest request, Done done) override {
    http::ClientOutcome outcome;
    outcome.reached = http::Reached::kAnswered;
    outcome.response = answer(request);
    done(std::move(outcome));
  }

  http::ClientResponse answer(const http::ClientRequest& request) {
    std::lock_guard lock(mutex_);
    auto form = parse_form(request.body).value_or(FormFields{});
    if (request.url.find("/revoke") != std::string::npos) {
      revoked.push_back(form_value(form, "token").value_or(""));
      if (revoke_down) return http::ClientResponse{503, {}, ""};
      return http::ClientResponse{200, {}, ""};
    }
    ++token_requests;
    if (while_answering) while_answering();
    std::this_thread::sleep_for(std::chrono::milliseconds(20));  // let concurrent callers pile up
    if (transient_failures > 0) {
      --transient_failures;
      return http::ClientResponse{503, {}, ""};
    }
    std::string presented = form_value(form, "refresh_token").value_or("");
    if (presented != current_refresh) return http::ClientResponse{400, {}, R"({"error":"invalid_grant"})"};
    ++generation;
    current_refresh = "rt-" + std::to_string(generation);
    nlohmann::json body = {{"access_token", "at-" + std::to_string(generation)}, {"refresh_token", current_refresh},
                           {"token_type", "Bearer"}, {"expires_in", expires_in}};
    return http::ClientResponse{200, {}, body.dump()};
  }

  std::mutex mutex_;
  int token_requests = 0;
  int generation = 0;
  int transient_failures = 0;
  bool revoke_down = false;
  nlohmann::json expires_in = 3600;
  std::string current_refresh = "rt-0";
  std::vector<std::string> revoked;
  std::function<void()> while_answering;  // runs during each token request
};

struct ServiceTest : ::testing::TestWithParam<std::string> {
  testing::TestDatabase db{GetParam(), 8};
  FixedClock clock{1700000000};
  FakeAuthServer auth;
  metrics::Registry metrics;
  Protocol protocol{auth};
  vault::TokenVault vault{vault::Keyring::generate(1), ""};
  std::unique_ptr<store::Connections> connections;
  std::unique_ptr<store::OAuthStates> states;
  std::unique_ptr<AppRegistry> apps;
  std::unique_ptr<TokenSource> tokens;
  std::unique_ptr<ConnectionService> service;

  // Renewals run where `renewals` puts them (empty: on the caller's thread), and never sleep.
  std::unique_ptr<TokenSource> token_source(TokenSource::Post renewals = {}) {
    return std::make_unique<TokenSource>(*apps, protocol, *connections, vault, clock, metrics, RenewalOptions{}, std::move(renewals),
                                         [](std::chrono::milliseconds) {});
  }

  void SetUp() override {
    DEPUTY_REQUIRE_DATABASE(db);
    connections = std::make_unique<store::Connections>(*db.database, clock);
    states = std::make_unique<store::OAuthStates>(*db.database, clock);
    apps = std::make_unique<AppRegistry>(std::map<std::string, App>{{"demo", testing::demo_app()}}, protocol);
    tokens = token_source();
    service = std::make_unique<ConnectionService>(*apps, protocol, *connections, *states, vault, metrics);
  }

  // Stores a connection whose access token expired a minute ago.
  std::string seed(const std::string& user, int64_t expires_at) {
    nlohmann::json bundle = {{"access_token", "at-0"}, {"refresh_token", "rt-0"}, {"token_type", "Bearer"}};
    auto r = testing::sealed_connection(vault, "conn-" + user, user, "demo", bundle.dump(), expires_at, "http://api.test");
    EXPECT_TRUE(connections->upsert(r, std::nullopt).ok());
    return r.id;
  }
};

TEST_P(ServiceTest, FreshTokensAreUsedWithoutRefreshing) {
  seed("alice", clock.unix_seconds() + 3600);
  auto grant = tokens->access("T1", "alice", "demo", store::ConnectionMode::kPersonal);
  ASSERT_TRUE(grant) << grant.status().message();
  EXPECT_EQ(grant->access_token, "at-0");
  EXPECT_EQ(auth.token_requests, 0);
}

TEST_P(ServiceTest, TwentyConcurrentJobsMakeExactlyOneRefresh) {
  seed("alice", clock.unix_seconds() - 60);
  std::vector<std::thread> jobs;
  std::atomic<int> ok{0};
  std::mutex seen_mutex;
  std::set<std::string> seen;
  for (int i = 0; i < 20; ++i) {
    jobs.emplace_back([&] {
      auto grant = tokens->access("T1", "alice", "demo", store::ConnectionMode::kPersonal);
      if (grant) {
        ++ok;
        std::lock_guard lock(seen_mutex);
        seen.insert(grant->access_token);
      }
    });
  }
  for (auto& t : jobs) t.join();
  EXPECT_EQ(ok.load(), 20) << "no job fails";
  EXPECT_EQ(auth.token_requests, 1) << "one refresh for all twenty";
  EXPECT_EQ(seen, std::set<std::string>{"at-1"});
  // The rotated refresh token was stored: the next refresh presents rt-1 and succeeds.
  clock.advance(std::chrono::seconds(3600));
  auto later = tokens->access("T1", "alice", "demo", store::ConnectionMode::kPersonal);
  ASSERT_TRUE(later) << later.status().message();
  EXPECT_EQ(later->access_token, "at-2");
}

TEST_P(ServiceTest, A401RefreshesOnceEvenWhenSeveralCallersSawIt) {
  seed("alice", clock.unix_seconds() + 3600);
  auto grant = tokens->access("T1", "alice", "demo", store::ConnectionMode::kPersonal).value();
  auto first = tokens->refresh_after_rejection(grant);
  auto second = tokens->refresh_after_rejection(grant);
  ASSERT_TRUE(first && second);
  EXPECT_EQ(first->access_token, "at-1");
  EXPECT_EQ(second->access_token, "at-1");
  EXPECT_EQ(auth.token_requests, 1);
}

TEST_P(ServiceTest, InvalidGrantMarksNeedsReauth) {
  std::string id = seed("bob", clock.unix_seconds() - 1);
  auth.current_refresh = "revoked-elsewhere";
  auto grant = tokens->access("T1", "bob", "demo", store::ConnectionMode::kPersonal);
  ASSERT_FALSE(grant);
  EXPECT_EQ(grant.status().code(), ErrorCode::kUnauthenticated);
  EXPECT_EQ(connections->by_id(id)->value().status, "needs_reauth");
  auto again = tokens->access("T1", "bob", "demo", store::ConnectionMode::kPersonal);
  EXPECT_EQ(again.status().code(), ErrorCode::kUnauthenticated);
  EXPECT_EQ(auth.token_requests, 1) << "a dead grant is not retried";
}

TEST_P(ServiceTest, TransientFailuresAreRetriedAndNeverDropTheConnection) {
  std::string id = seed("carol", clock.unix_seconds() - 1);
  auth.transient_failures = 2;
  auto grant = tokens->access("T1", "carol", "demo", store::ConnectionMode::kPersonal);
  ASSERT_TRUE(grant) << grant.status().message();
  EXPECT_EQ(auth.token_requests, 3);
  auth.transient_failures = 100;
  clock.advance(std::chrono::seconds(7200));
  auto down = tokens->access("T1", "carol", "demo", store::ConnectionMode::kPersonal);
  EXPECT_EQ(down.status().code(), ErrorCode::kUnavailable);
  EXPECT_EQ(connections->by_id(id)->value().status, "active");
}

TEST_P(ServiceTest, JobsWaitingOnARenewalThatFailedTakeItsAnswerInsteadOfEachTryingAgain) {
  seed("dave", clock.unix_seconds() - 1);
  auth.transient_failures = 1000;  // the token endpoint is down
  std::vector<std::thread> jobs;
  std::atomic<int> unavailable{0};
  for (int i = 0; i < 8; ++i) {
    jobs.emplace_back([&] {
      auto grant = tokens->access("T1", "dave", "demo", store::ConnectionMode::kPersonal);
      if (!grant && grant.status().code() == ErrorCode::kUnavailable) ++unavailable;
    });
  }
  for (auto& t : jobs) t.join();
  EXPECT_EQ(unavailable.load(), 8);
  // One renewal's three tries, not three for each of the eight waiting jobs (a straggler
  // that came after it may make its own).
  EXPECT_LE(auth.token_requests, 6);
  auth.transient_failures = 0;
  auto later = tokens->access("T1", "dave", "demo", store::ConnectionMode::kPersonal);
  ASSERT_TRUE(later) << "a failure is not remembered for those who ask afterwards: " << later.status().message();
}

TEST_P(ServiceTest, JobsWaitingOnOneRenewalSubscribeToItInsteadOfHoldingAThreadEach) {
  seed("erin", clock.unix_seconds() - 1);
  std::vector<std::function<void()>> posted;
  tokens = token_source([&](std::function<void()> renew) { posted.push_back(std::move(renew)); });
  std::vector<Result<AccessGrant>> answers;
  auto keep = [&](Result<AccessGrant> grant) { answers.push_back(std::move(grant)); };
  for (int i = 0; i < 5; ++i) tokens->start_access("T1", "erin", "demo", store::ConnectionMode::kPersonal, keep);
  ASSERT_EQ(posted.size(), 1u) << "one renewal for the five jobs";
  EXPECT_TRUE(answers.empty()) << "none of them waits in the caller's thread";
  EXPECT_EQ(tokens->renewals_in_flight(), 1u);
  EXPECT_EQ(auth.token_requests, 0);
  posted[0]();
  ASSERT_EQ(answers.size(), 5u);
  EXPECT_EQ(auth.token_requests, 1);
  for (const auto& a : answers) {
    ASSERT_TRUE(a) << a.status().message();
    EXPECT_EQ(a->access_token, answers[0]->access_token);
  }
  EXPECT_EQ(tokens->renewals_in_flight(), 0u);

  // The renewed token is fresh: handed over at once, with no renewal.
  tokens->start_access("T1", "erin", "demo", store::ConnectionMode::kPersonal, keep);
  EXPECT_EQ(posted.size(), 1u);
  ASSERT_EQ(answers.size(), 6u);
  EXPECT_EQ(answers[5]->access_token, answers[0]->access_token);

  // After a 401, those who were refused the same token share one renewal too.
  tokens->start_refresh_after_rejection(*answers[5], keep);
  tokens->start_refresh_after_rejection(*answers[5], keep);
  ASSERT_EQ(posted.size(), 2u);
  posted[1]();
  ASSERT_EQ(answers.size(), 8u);
  EXPECT_EQ(auth.token_requests, 2);
  ASSERT_TRUE(answers[6] && answers[7]);
  EXPECT_NE(answers[6]->access_token, answers[5]->access_token);
  EXPECT_EQ(answers[7]->access_token, answers[6]->access_token);
}

TEST_P(ServiceTest, NonsenseExpiresInIsHandled) {
  seed("alice", clock.unix_seconds() - 1);
  auth.expires_in = "soon";
  auto grant = tokens->access("T1", "alice", "demo", store::ConnectionMode::kPersonal);
  ASSERT_TRUE(grant);
  EXPECT_EQ(connections->by_id("conn-alice")->value().access_expires_at, 0) << "unknown lifetime: refresh on 401 only";
}

TEST_P(ServiceTest, DisconnectRevokesThenDeletesEvenIfRevocationFails) {
  std::string id = seed("alice", clock.unix_seconds() + 3600);
  ASSERT_TRUE(service->disconnect(id, "alice", "disconnected").ok());
  EXPECT_EQ(auth.revoked, (std::vector<std::string>{"rt-0", "at-0"}));
  EXPECT_FALSE(connections->by_id(id)->has_value());
  std::string other = seed("bob", clock.unix_seconds() + 3600);
  auth.revoke_down = true;
  ASSERT_TRUE(service->disconnect(other, "bob", "disconnected").ok());
  EXPECT_FALSE(connections->by_id(other)->has_value()) << "tokens are deleted even when the app cannot revoke";
}

TEST_P(ServiceTest, ARecordMovedToAnotherUserCannotBeRead) {
  seed("alice", clock.unix_seconds() + 3600);
  seed("bob", clock.unix_seconds() + 3600);
  {
    auto lease = db.database->acquire();
    // Copy Alice's sealed tokens into Bob's row.
    ASSERT_TRUE((*lease)->execute(
        "UPDATE connections SET nonce = (SELECT nonce FROM connections WHERE id = 'conn-alice'), "
        "sealed = (SELECT sealed FROM connections WHERE id = 'conn-alice') WHERE id = 'conn-bob'"));
  }
  EXPECT_FALSE(tokens->access("T1", "bob", "demo", store::ConnectionMode::kPersonal));
  EXPECT_TRUE(tokens->access("T1", "alice", "demo", store::ConnectionMode::kPersonal));
}

TEST_P(ServiceTest, AFlippedCiphertextByteCannotBeRead) {
  seed("alice", clock.unix_seconds() + 3600);
  auto record = connections->by_id("conn-alice")->value();
  for (size_t i = 0; i < record.sealed.bytes.size(); i += 7) {
    std::string flipped = record.sealed.bytes;
    flipped[i] ^= 0x01;
    auto lease = db.database->acquire();
    ASSERT_TRUE((*lease)->execute("UPDATE connections SET sealed = ? WHERE id = 'conn-alice'", {store::Blob{flipped}}));
    EXPECT_FALSE(tokens->access("T1", "alice", "demo", store::ConnectionMode::kPersonal)) << "byte " << i;
  }
}

TEST_P(ServiceTest, TwoProcessesSharingPostgresRefreshOnce) {
  if (GetParam() != "postgres") GTEST_SKIP() << "several processes share a database only with PostgreSQL";
  seed("alice", clock.unix_seconds() - 60);
  // A second "process": its own service, store objects and connection pool, same database.
  auto other_db = db.reopen(8);
  store::Connections other_connections(*other_db, clock);
  AppRegistry other_apps(apps->all(), protocol);
  TokenSource other(other_apps, protocol, other_connections, vault, clock, metrics, RenewalOptions{}, {}, [](std::chrono::milliseconds) {});
  std::vector<std::thread> jobs;
  std::atomic<int> ok{0};
  for (int i = 0; i < 20; ++i) {
    TokenSource* which = i % 2 ? tokens.get() : &other;
    jobs.emplace_back([&, which] {
      if (which->access("T1", "alice", "demo", store::ConnectionMode::kPersonal)) ++ok;
    });
  }
  for (auto& t : jobs) t.join();
  EXPECT_EQ(ok.load(), 20);
  EXPECT_EQ(auth.token_requests, 1);
}

TEST_P(ServiceTest, ARenewalHoldsALeaseRowAndNoDatabaseLockWhileTheTokenEndpointAnswers) {
  if (GetParam() != "postgres") GTEST_SKIP() << "only PostgreSQL is shared by several processes";
  seed("alice", clock.unix_seconds() - 60);
  int64_t session_locks = -1;
  int64_t leases = -1;
  auth.while_answering = [&] {
    auto lease = db.database->acquire();
    auto locks = (*lease)->query(
        "SELECT COUNT(*) FROM pg_locks WHERE locktype = 'advisory' AND database = (SELECT oid FROM pg_database WHERE datname = current_database())");
    auto held = (*lease)->query("SELECT COUNT(*) FROM refresh_leases WHERE connection_id = 'conn-alice' AND expires_at > now()");
    session_locks = locks ? locks->front().integer(0) : -1;
    leases = held ? held->front().integer(0) : -1;
  };
  ASSERT_TRUE(tokens->access("T1", "alice", "demo", store::ConnectionMode::kPersonal));
  EXPECT_EQ(session_locks, 0) << "no session lock is held across the token call";
  EXPECT_EQ(leases, 1) << "the lease row says who renews";
  auto lease = db.database->acquire();
  EXPECT_EQ((*lease)->query("SELECT COUNT(*) FROM refresh_leases")->front().integer(0), 0) << "let go once renewed";
}

TEST_P(ServiceTest, ARenewalLeaseLeftByAProcessThatDiedRunsOut) {
  if (GetParam() != "postgres") GTEST_SKIP() << "only PostgreSQL is shared by several processes";
  seed("alice", clock.unix_seconds() - 60);
  {
    auto lease = db.database->acquire();
    ASSERT_TRUE((*lease)->execute(
        "INSERT INTO refresh_leases (connection_id, holder, expires_at) VALUES ('conn-alice', 'gone', now() - interval '1 second')"));
  }
  auto grant = tokens->access("T1", "alice", "demo", store::ConnectionMode::kPersonal);
  ASSERT_TRUE(grant) << grant.status().message();
  EXPECT_EQ(grant->access_token, "at-1");
  EXPECT_EQ(auth.token_requests, 1);
}

INSTANTIATE_TEST_SUITE_P(Backends, ServiceTest, ::testing::Values("sqlite", "postgres"), [](const auto& info) { return info.param; });

}  // namespace
}  // namespace deputy::oauth
