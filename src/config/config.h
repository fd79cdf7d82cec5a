// Server configuration: YAML file first, then DEPUTY_* environment variables on top.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "common/result.h"

namespace deputy::config {

struct SlackSettings {
  std::string signing_secret;  // empty: Slack requests are refused
  std::string bot_token;
  std::string api_url = "https://slack.com/api";
};

struct ServerSettings {
  unsigned io_threads = 0;  // 0: one per core
  unsigned workers = 4;     // job worker threads
  uint64_t max_body_bytes = 1 << 20;
  unsigned header_limit_bytes = 16 * 1024;
  unsigned read_timeout_seconds = 30;
  unsigned idle_timeout_seconds = 60;
};

struct Config {
  std::string listen = "127.0.0.1:3000";
  std::string public_url;  // empty: derived from listen
  std::string database = "sqlite:./deputy.db";
  std::string recipes_dir = "./recipes";
  std::string keys_file = "./deputy.keys";
  std::string log_level = "info";
  SlackSettings slack;
  ServerSettings server;
  std::vector<std::string> admins;  // Slack user ids
  std::optional<std::string> source_file;

  std::string effective_public_url() const;
  // Host and port split out of `listen`.
  Result<std::pair<std::string, uint16_t>> listen_endpoint() const;
  // What a real deployment still needs, in words a person can act on.
  std::vector<std::string> missing_for_production() const;
};

using Environment = std::map<std::string, std::string>;
Environment process_environment();

// path empty: defaults plus environment only.
Result<Config> load(const std::string& path, const Environment& env);
Result<Config> load_from_string(const std::string& yaml_text, const Environment& env, const std::string& source_name);

}  // namespace deputy::config
