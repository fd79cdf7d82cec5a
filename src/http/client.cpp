#include "http/client.h"

#include <algorithm>
#include <charconv>
#include <ctime>
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

namespace {

// IMF-fixdate ("Sun, 06 Nov 1994 08:49:37 GMT"), the form RFC 9110 says senders use; the two
// obsolete forms are read too, since recipients must accept them.
std::optional<std::time_t> parse_http_date(const std::string& text) {
  for (const char* format : {"%a, %d %b %Y %H:%M:%S GMT", "%A, %d-%b-%y %H:%M:%S GMT", "%a %b %e %H:%M:%S %Y"}) {
    std::tm tm{};
    const char* end = strptime(text.c_str(), format, &tm);
    if (end != nullptr && *end == '\0') return timegm(&tm);
  }
  return std::nullopt;
}

}  // namespace

std::optional<std::chrono::seconds> ClientResponse::retry_after(std::chrono::system_clock::time_point now,
                                                                std::chrono::seconds cap) const {
  std::string value = header("Retry-After");
  while (!value.empty() && (value.back() == ' ' || value.back() == '\t')) value.pop_back();
  size_t start = value.find_first_not_of(" \t");
  if (start == std::string::npos) return std::nullopt;
  value.erase(0, start);
  if (std::all_of(value.begin(), value.end(), [](char c) { return c >= '0' && c <= '9'; })) {
    int64_t seconds = 0;
    auto [end, error] = std::from_chars(value.data(), value.data() + value.size(), seconds);
    // Too many digits to read is longer than any cap.
    if (error == std::errc::result_out_of_range) return cap;
    if (error != std::errc() || end != value.data() + value.size()) return std::nullopt;
    return std::min(std::chrono::seconds(seconds), cap);
  }
  auto at = parse_http_date(value);
  if (!at) return std::nullopt;
  auto wait = std::chrono::duration_cast<std::chrono::seconds>(std::chrono::system_clock::from_time_t(*at) - now);
  return std::clamp(wait, std::chrono::seconds(0), cap);
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
