#include "common/log.h"

#include <spdlog/sinks/base_sink.h>
#include <spdlog/sinks/stdout_color_sinks.h>
#include <spdlog/spdlog.h>

#include <pthread.h>
#include <signal.h>

#include <array>
#include <cctype>
#include <chrono>
#include <mutex>

#include "common/log_limiter.h"

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

// Every line passes the limiter, then the redaction: a flood is held back before any work
// is spent on it, and nothing reaches the inner sink unredacted, summaries included.
class GuardedSink final : public spdlog::sinks::base_sink<std::mutex> {
 public:
  explicit GuardedSink(spdlog::sink_ptr inner) : inner_(std::move(inner)) {}

 protected:
  void sink_it_(const spdlog::details::log_msg& msg) override {
    const auto now = std::chrono::steady_clock::now();
    write_summaries(msg, now);
    const std::string_view text(msg.payload.data(), msg.payload.size());
    // The written line also has a timestamp and a level, about 30 bytes.
    if (!limiter_.admit(static_cast<int>(msg.level), text, text.size() + 30, now)) return;
    write(msg, text);
  }
  void flush_() override {
    write_summaries(spdlog::details::log_msg("deputy", spdlog::level::warn, ""), std::chrono::steady_clock::now());
    inner_->flush();
  }

 private:
  void write(const spdlog::details::log_msg& msg, std::string_view text) {
    std::string clean = redact(text);
    spdlog::details::log_msg copy(msg);
    copy.payload = clean;
    inner_->log(copy);
  }
  void write_summaries(const spdlog::details::log_msg& like, std::chrono::steady_clock::time_point now) {
    for (const auto& summary : limiter_.summaries(now)) {
      spdlog::details::log_msg line(like);
      line.level = static_cast<spdlog::level::level_enum>(summary.level);
      line.time = spdlog::log_clock::now();
      write(line, summary.text);
    }
  }

  spdlog::sink_ptr inner_;
  Limiter limiter_;
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
  auto sink = std::make_shared<GuardedSink>(console);
  auto logger = std::make_shared<spdlog::logger>("deputy", sink);
  // The inner sink does the formatting; the redacting wrapper only rewrites the text.
  console->set_pattern("%Y-%m-%d %H:%M:%S.%e %^%-5l%$ %v");
  logger->set_level(spdlog::level::from_str(std::string(level)));
  logger->flush_on(spdlog::level::trace);
  spdlog::set_default_logger(logger);
  // Summaries of what the limiter held back are due even when nothing else is logged. The
  // flushing thread takes no signals: the server waits for SIGTERM on a thread of its own,
  // and a thread started before it blocked them would take the signal's default action.
  sigset_t all, before;
  sigfillset(&all);
  pthread_sigmask(SIG_BLOCK, &all, &before);
  spdlog::flush_every(std::chrono::seconds(1));
  pthread_sigmask(SIG_SETMASK, &before, nullptr);
}

}  // namespace deputy::log
