// The Slack-facing hot spots of the ack path and of every answer: signature verification,
// payload parsing (classification), and Block Kit rendering.
#include <benchmark/benchmark.h>

#include <string>

#include "common/encoding.h"
#include "slack/blocks.h"
#include "slack/ingress.h"
#include "slack/signature.h"
#include "slack/web_api.h"

namespace deputy::slack {
namespace {

const std::string kSecret = "8f742231b10e8888abcd99yyyzzz85a5";
const std::string kTimestamp = "1700000000";

std::string slash_body() {
  return "token=gIkuvaNzQIHg97ATvDxqgjtO&team_id=T0001&team_domain=example&enterprise_id=E0001&enterprise_name=Globular%20Construct%20Inc"
         "&channel_id=C2147483705&channel_name=test&user_id=U2147483697&user_name=Steve&command=%2Fdeputy"
         "&text=create%20opportunity%20%22Acme%20renewal%22%205000%202026-12-31"
         "&response_url=https%3A%2F%2Fhooks.slack.com%2Fcommands%2F1234%2F5678&trigger_id=13345224609.738474920.8088930838d88f008e0"
         "&api_app_id=A123456";
}

std::string block_actions_body() {
  std::string payload = R"({"type":"block_actions","user":{"id":"U0ALICE","username":"alice","team_id":"T0001"},"api_app_id":"A0001",)"
                        R"("container":{"type":"message","message_ts":"1700000000.000100","channel_id":"D0ALICE","is_ephemeral":false},)"
                        R"("trigger_id":"123.456.abc","team":{"id":"T0001","domain":"example"},"channel":{"id":"D0ALICE","name":"directmessage"},)"
                        R"("response_url":"https://hooks.slack.com/actions/T0001/1/abc","message":{"type":"message","ts":"1700000000.000100"},)"
                        R"("actions":[{"action_id":"job.approve","block_id":"job.decision","value":"J0123456789abcdef:0","type":"button","action_ts":"1700000001.1"}]})";
  return "payload=" + url_encode(payload);
}

void BM_VerifySignature(benchmark::State& state) {
  std::string body = slash_body();
  RequestVerifier verifier(kSecret);
  std::string signature = verifier.sign(kTimestamp, body);
  for (auto _ : state) {
    auto verdict = verifier.verify(kTimestamp, signature, body, 1700000010);
    benchmark::DoNotOptimize(verdict);
  }
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_VerifySignature);

void BM_ParseSlashCommand(benchmark::State& state) {
  std::string body = slash_body();
  for (auto _ : state) {
    auto inbound = classify("application/x-www-form-urlencoded", body);
    benchmark::DoNotOptimize(inbound);
  }
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_ParseSlashCommand);

void BM_ParseBlockActions(benchmark::State& state) {
  std::string body = block_actions_body();
  for (auto _ : state) {
    auto inbound = classify("application/x-www-form-urlencoded", body);
    benchmark::DoNotOptimize(inbound);
  }
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_ParseBlockActions);

// A connections list as people see it: header, ten rows with Disconnect (confirm) buttons,
// a context line and a row of Connect buttons, serialized to the JSON Slack receives.
void BM_RenderBlockKit(benchmark::State& state) {
  for (auto _ : state) {
    Message m;
    m.text = "Your personal accounts";
    m.blocks.header("Personal accounts");
    for (int i = 0; i < 10; ++i) {
      m.blocks.section("*Salesforce* — alice@example.com\nConnected <!date^1700000000^{date_short_pretty} {time}|1700000000> · last used never · active",
                       Button{"Disconnect", "connection.disconnect", "c" + std::to_string(i), "", "danger",
                              Confirm{"Disconnect Salesforce?", "Deputy will no longer act as *alice@example.com*.", "Disconnect", "Cancel"}});
    }
    m.blocks.context({"Page 1 of 1 · 10 accounts"});
    m.blocks.actions({Button{"Connect Box", "link.open.box", "box", "https://deputy.example.com/oauth/start?s=abc", "primary", std::nullopt}});
    std::string json = message_json(m, {{"channel", "D0BENCH"}});
    benchmark::DoNotOptimize(json);
  }
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_RenderBlockKit);

}  // namespace
}  // namespace deputy::slack
