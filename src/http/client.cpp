#include "http/client.h"

#include <future>

#include "common/encoding.h"

namespace deputy::http {

bool ClientRequest::is_idempotent() const {
  if (idempotent) return *idempotent;
  for (const char* safe : {"GET", "HEAD", "OPTIONS", "PUT", "DELETE", "TRACE"})
    if (method == safe) return true;
  return false;
}

std::string ClientResponse::header(std::string_view name) const {
  for (const auto& [key, value] : headers)
    if (equal_ignoring_ascii_case(key, name)) return value;
  return {};
}

ClientOutcome Client::call(ClientRequest request) {
  std::promise<ClientOutcome> answered;
  auto outcome = answered.get_future();
  start(std::move(request), [&answered](ClientOutcome o) { answered.set_value(std::move(o)); });
  return outcome.get();
}

Result<ClientResponse> Client::send(ClientRequest request) {
  ClientOutcome outcome = call(std::move(request));
  if (outcome.reached != Reached::kAnswered) return outcome.error;
  return std::move(outcome.response);
}

}  // namespace deputy::http
