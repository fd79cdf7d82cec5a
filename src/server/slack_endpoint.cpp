#include "server/slack_endpoint.h"

#include <nlohmann/json.hpp>
#include <spdlog/spdlog.h>

#include "slack/ingress.h"
#include "slack/signature.h"

namespace deputy::server {

SlackEndpoint::SlackEndpoint(std::string signing_secret, engine::Ingest& ingest, const Clock& clock, metrics::Registry& metrics)
    : verifier_(std::move(signing_secret)), ingest_(ingest), clock_(clock), metrics_(metrics) {
  metrics_.describe("deputy_slack_requests_total", "counter", "Slack requests at /slack/events by kind and outcome.");
}

void SlackEndpoint::count(const char* kind, const char* outcome) {
  metrics_.increment("deputy_slack_requests_total", {{"kind", kind}, {"outcome", outcome}});
}

void SlackEndpoint::handle(http::Request&& request, http::Reply reply) {
  if (slack::is_ssl_check(request.header("Content-Type"), request.body)) {
    count("ssl_check", "answered");
    return reply(http::Response::text(200, ""));
  }
  auto verdict = verifier_.verify(request.header("X-Slack-Request-Timestamp"), request.header("X-Slack-Signature"),
                                  request.body, clock_.unix_seconds());
  if (verdict != slack::SignatureVerdict::kValid) {
    count("unknown", "refused");
    spdlog::warn("refused Slack request: {}", slack::describe(verdict));
    return reply(http::Response::text(401, std::string("invalid Slack request: ") + slack::describe(verdict) + "\n"));
  }
  auto inbound = slack::classify(request.header("Content-Type"), request.body);
  switch (inbound.kind) {
    case slack::Inbound::Kind::kChallenge:
      count("url_verification", "answered");
      return reply(http::Response::json(200, nlohmann::json{{"challenge", inbound.challenge}}.dump()));
    case slack::Inbound::Kind::kIgnored:
      count("other", "ignored");
      spdlog::debug("ignored Slack request: {}", inbound.reason);
      return reply(http::Response::text(200, ""));
    case slack::Inbound::Kind::kMalformed:
      count("unknown", "malformed");
      spdlog::warn("malformed Slack request: {}", inbound.reason);
      return reply(http::Response::text(400, "malformed Slack request: " + inbound.reason + "\n"));
    case slack::Inbound::Kind::kWork: break;
  }
  std::string retry = request.header("X-Slack-Retry-Num");
  if (!retry.empty()) spdlog::debug("Slack retry {} ({})", retry, request.header("X-Slack-Retry-Reason"));
  store::Delivery delivery{std::move(inbound.team_id), std::move(inbound.delivery_kind), std::move(inbound.payload),
                           std::move(inbound.dedupe_key)};
  std::string kind = delivery.kind;
  ingest_.submit(std::move(delivery), [this, kind, reply = std::move(reply)](Result<store::Admission> admitted) {
    if (!admitted) {
      count(kind.c_str(), "store_failed");
      // A 5xx makes Slack retry the event later; nothing is lost.
      return reply(http::Response::text(503, "temporarily unable to accept the request\n"));
    }
    count(kind.c_str(), *admitted == store::Admission::kAccepted ? "accepted" : "duplicate");
    reply(http::Response::text(200, ""));
  });
}

}  // namespace deputy::server
