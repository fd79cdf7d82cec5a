// Logging setup. Every sink goes through a redacting filter so a token that slips
// into a message (an upstream error body, say) is masked before it is written, and through a
// limiter (log_limiter.h) so that no input can flood the log.
#pragma once

#include <string>
#include <string_view>

namespace deputy::log {

// level: trace, debug, info, warn, error.
void init(std::string_view level);

// Masks bearer tokens, Slack tokens and obvious secret-looking values in free text.
std::string redact(std::string_view text);

}  // namespace deputy::log
