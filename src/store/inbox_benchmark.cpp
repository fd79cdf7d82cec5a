// The ingest writer's transactions on SQLite, without HTTP around them: what one acked
// Slack delivery costs the single writer. Deliveries are the size of a stored slash command.
#include <benchmark/benchmark.h>

#include <string>
#include <vector>

#include "store/inbox.h"
#include "testing/databases.h"

namespace deputy::store {
namespace {

constexpr size_t kBatch = 32;

std::string payload_like_a_slash_command(uint64_t n) {
  return R"({"api_app_id":"A0BENCH","channel_id":"C0BENCH","channel_name":"general","command":"/deputy",)"
         R"("is_enterprise_install":"false","response_url":"https://hooks.slack.com/commands/T0BENCH/1234567890/abcdefABCDEF",)"
         R"("team_domain":"bench","team_id":"T0BENCH","text":"help","token":"bench","trigger_id":")" +
         std::to_string(n) + R"(.738474920.8088930838d88f008e0","user_id":"U0BENCH","user_name":"bench"})";
}

std::vector<Delivery> next_batch(uint64_t& counter) {
  std::vector<Delivery> batch;
  batch.reserve(kBatch);
  for (size_t i = 0; i < kBatch; ++i) {
    uint64_t n = ++counter;
    batch.push_back(Delivery{"T0BENCH", "slash_command", payload_like_a_slash_command(n),
                             "slash:T0BENCH:" + std::to_string(n) + ".738474920.8088930838d88f008e0"});
  }
  return batch;
}

// New deliveries only, admitted into the queue: the ack path while the workers keep up.
void BM_InboxAdmit(benchmark::State& state) {
  testing::TestDatabase db("sqlite", 4);
  FixedClock clock{1700000000};
  Inbox inbox(*db.database, clock, std::chrono::hours(1));
  uint64_t counter = 0;
  for (auto _ : state) {
    InboxBatch batch;
    batch.deliveries = next_batch(counter);
    auto written = inbox.write(batch);
    if (!written) state.SkipWithError(written.status().message().c_str());
  }
  state.SetItemsProcessed(state.iterations() * kBatch);
}
BENCHMARK(BM_InboxAdmit)->Unit(benchmark::kMicrosecond);

// Under a backlog, as during bench/run: each transaction admits a batch, claims half as many
// queued deliveries for the workers and deletes those the workers finished.
void BM_InboxBacklogCycle(benchmark::State& state) {
  testing::TestDatabase db("sqlite", 4);
  FixedClock clock{1700000000};
  Inbox inbox(*db.database, clock, std::chrono::hours(1));
  uint64_t counter = 0;
  std::vector<int64_t> finished;
  for (auto _ : state) {
    InboxBatch batch;
    batch.deliveries = next_batch(counter);
    batch.claim_queued = kBatch / 2;
    batch.completed.swap(finished);
    auto written = inbox.write(batch);
    if (!written) {
      state.SkipWithError(written.status().message().c_str());
      break;
    }
    for (const auto& claimed : written->backlog) finished.push_back(claimed.id);
  }
  state.SetItemsProcessed(state.iterations() * kBatch);
}
BENCHMARK(BM_InboxBacklogCycle)->Unit(benchmark::kMicrosecond);

}  // namespace
}  // namespace deputy::store
