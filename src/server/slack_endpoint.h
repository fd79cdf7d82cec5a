// POST /slack/events: verify, classify, enqueue durably, ack.
#pragma once

#include "common/clock.h"
#include "engine/ingest.h"
#include "http/server.h"
#include "metrics/metrics.h"
#include "slack/signature.h"

namespace deputy::server {

class SlackEndpoint {
 public:
  SlackEndpoint(std::string signing_secret, engine::Ingest& ingest, const Clock& clock, metrics::Registry& metrics);
  void handle(http::Request&& request, http::Reply reply);

 private:
  void count(const char* kind, const char* outcome);

  slack::RequestVerifier verifier_;
  engine::Ingest& ingest_;
  const Clock& clock_;
  metrics::Registry& metrics_;
};

}  // namespace deputy::server
