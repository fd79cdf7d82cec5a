// Vault reads with 100,000 stored connections: look up a person's connection in SQLite and
// decrypt its tokens (AES-256-GCM), the work every personal action starts with.
#include <benchmark/benchmark.h>
#include <spdlog/spdlog.h>

#include <random>

#include "oauth/token_source.h"
#include "testing/databases.h"
#include "testing/fake_http_client.h"

namespace deputy::oauth {
namespace {

constexpr int kConnections = 100000;

struct Fixture {
  testing::TestDatabase db{"sqlite", 4};
  FixedClock clock{1700000000};
  testing::FakeHttpClient http;
  metrics::Registry metrics;
  Protocol protocol{http};
  vault::TokenVault vault{vault::Keyring::generate(1), ""};
  store::Connections connections{*db.database, clock};
  std::unique_ptr<AppRegistry> apps;
  std::unique_ptr<TokenSource> service;

  Fixture() {
    spdlog::set_level(spdlog::level::warn);
    App app;
    app.id = "salesforce";
    app.display_name = "Salesforce";
    app.client_id = "x";
    apps = std::make_unique<AppRegistry>(std::map<std::string, App>{{"salesforce", app}}, protocol);
    service = std::make_unique<TokenSource>(*apps, protocol, connections, vault, clock, metrics);
    auto lease = db.database->acquire();
    (void)store::with_write_transaction(**lease, [&](store::Connection& tx) -> Status {
      for (int i = 0; i < kConnections; ++i) {
        std::string user = "U" + std::to_string(i);
        std::string id = "c" + std::to_string(i);
        std::string bundle = R"({"access_token":"00D5g000004abc!AQ0AQ)" + std::to_string(i) +
                             R"(","refresh_token":"5Aep861TSESvWeug_xvFHRBTTbf_YrTWgEyjBJo7)" + std::to_string(i) + R"(","token_type":"Bearer"})";
        auto sealed = vault.seal({"T1", user, "salesforce", id}, "connection", bundle).value();
        auto r = tx.execute(
            "INSERT INTO connections (id, team_id, user_id, app, mode, status, account, subject, key_id, nonce, sealed, "
            "access_expires_at, created_at, updated_at, last_used_at) VALUES (?, 'T1', ?, 'salesforce', 'personal', 'active', ?, ?, ?, ?, ?, ?, 1, 1, 1700000000)",
            {id, user, user + "@acme.com", user, sealed.key_id, store::Blob{sealed.sealed.nonce}, store::Blob{sealed.sealed.ciphertext},
             int64_t{1700000000 + 86400}});
        if (!r) return r.status();
      }
      return Status::Ok();
    });
  }
};

Fixture& fixture() {
  static Fixture f;
  return f;
}

void BM_VaultRead(benchmark::State& state) {
  Fixture& f = fixture();
  std::mt19937 random(static_cast<unsigned>(state.thread_index()) + 1);
  std::uniform_int_distribution<int> pick(0, kConnections - 1);
  for (auto _ : state) {
    auto grant = f.service->access("T1", "U" + std::to_string(pick(random)), "salesforce", store::ConnectionMode::kPersonal);
    if (!grant) state.SkipWithError(grant.status().message().c_str());
    benchmark::DoNotOptimize(grant);
  }
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_VaultRead)->Threads(1)->Threads(2)->UseRealTime()->MinTime(3);

void BM_DecryptOnly(benchmark::State& state) {
  std::string key(32, 'k');
  auto sealed = vault::seal(key, std::string(180, 't'), "deputy/v1 10:connection 2:T1 5:U1234 10:salesforce 5:c1234").value();
  for (auto _ : state) benchmark::DoNotOptimize(vault::open(key, sealed, "deputy/v1 10:connection 2:T1 5:U1234 10:salesforce 5:c1234"));
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_DecryptOnly);

}  // namespace
}  // namespace deputy::oauth
