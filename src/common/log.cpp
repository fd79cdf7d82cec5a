#include "common/log.h"

#include <spdlog/sinks/base_sink.h>
#include <spdlog/sinks/stdout_color_sinks.h>
#include <spdlog/spdlog.h>

#include <array>
#include <cctype>
#include <mutex>

namespace deputy::log {
namespace {

bool is_token_char(char c) {
  return std::isalnum(static_cast<unsigned char>(c)) || c == '-' || c == '_' || c == '.' || c == '~' || c == '+' ||
         c == '/' || c == '=' || c == '%';
}

// Replaces the run of token characters after each marker with "[redacted]".
void mask_after(std::string& text, std::string_view marker, bool case_insensitive) {
  size_t from = 0;
  while (true) {
    size_t at;
    if (case_insensitive) {
      std::string lower = text;
      for (auto& c : lower) c = char(std::tolower(static_cast<unsigned char>(c)));
      at = lower.find(marker, from);
    } else {
      at = text.find(marker, from);
    }
    if (at == std::string::npos) return;
    size_t start = at + marker.size();
    size_t end = start;
    while (end < text.size() && is_token_char(text[end])) ++end;
    if (end > start) text.replace(start, end - start, "[redacted]");
    from = start + 1;
  }
}

class RedactingSink final : public spdlog::sinks::base_sink<std::mutex> {
 public:
  explicit RedactingSink(spdlog::sink_ptr inner) : inner_(std::move(inner)) {}

 protected:
  void sink_it_(const spdlog::details::log_msg& msg) override {
    std::string text(msg.payload.data(), msg.payload.size());
    std::string clean = redact(text);
    spdlog::details::log_msg copy(msg);
    copy.payload = clean;
    inner_->log(copy);
  }
  void flush_() override { inner_->flush(); }

 private:
  spdlog::sink_ptr inner_;
};

}  // namespace

std::string redact(std::string_view input) {
  std::string text(input);
  static constexpr std::array<std::string_view, 6> kSlackPrefixes = {"xoxb-", "xoxp-", "xoxa-", "xoxr-", "xoxs-", "xoxe-"};
  for (auto prefix : kSlackPrefixes) mask_after(text, prefix, false);
  static constexpr std::array<std::string_view, 9> kMarkers = {
      "bearer ",         "access_token=", "refresh_token=", "code=",         "code_verifier=",
      "client_secret=", "\"access_token\":\"", "\"refresh_token\":\"", "\"id_token\":\""};
  for (auto marker : kMarkers) mask_after(text, marker, true);
  return text;
}

void init(std::string_view level) {
  auto console = std::make_shared<spdlog::sinks::stderr_color_sink_mt>();
  auto sink = std::make_shared<RedactingSink>(console);
  auto logger = std::make_shared<spdlog::logger>("deputy", sink);
  // The inner sink does the formatting; the redacting wrapper only rewrites the text.
  console->set_pattern("%Y-%m-%d %H:%M:%S.%e %^%-5l%$ %v");
  logger->set_level(spdlog::level::from_str(std::string(level)));
  logger->flush_on(spdlog::level::trace);
  spdlog::set_default_logger(logger);
}

}  // namespace deputy::log
