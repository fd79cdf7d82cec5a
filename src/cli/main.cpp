// deputy: the command line. `deputy serve --config FILE` runs the server.
#include <CLI/CLI.hpp>
#include <spdlog/spdlog.h>

#include <atomic>
#include <csignal>
#include <unistd.h>
#include <iostream>
#include <thread>

#include "common/log.h"
#include "config/config.h"
#include "server/app.h"
#include "server/keys.h"
#include "store/database.h"

namespace {

int serve(const std::string& config_path) {
  auto config = deputy::config::load(config_path, deputy::config::process_environment());
  if (!config) {
    std::cerr << "deputy: " << config.status().message() << "\n";
    return 2;
  }
  deputy::log::init(config->log_level);
  if (!config->source_file) spdlog::info("no --config file given: using defaults and DEPUTY_* environment variables");
  auto missing = config->missing_for_production();
  if (!missing.empty()) {
    std::string text = "before Slack can use this server it still needs:";
    for (const auto& m : missing) text += "\n  - " + m;
    spdlog::warn("{}", text);
  }

  // Signals are taken on a dedicated thread so the stop runs as ordinary code.
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGINT);
  sigaddset(&signals, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);

  deputy::server::App app(*config);
  if (auto s = app.start(); !s.ok()) {
    spdlog::error("cannot start: {}", s.message());
    return 1;
  }
  std::atomic<bool> signalled{false};
  std::thread signal_waiter([&] {
    int received = 0;
    sigwait(&signals, &received);
    signalled = true;
    if (received == SIGINT || received == SIGTERM) {
      spdlog::info("received {}, finishing requests in flight", received == SIGINT ? "SIGINT" : "SIGTERM");
      app.stop();
    }
  });
  app.run();
  // run() can also end without a signal; wake the waiter (the signal stays blocked and pending for it).
  if (!signalled) kill(getpid(), SIGTERM);
  signal_waiter.join();
  return 0;
}

int rotate_keys(const std::string& config_path) {
  auto config = deputy::config::load(config_path, deputy::config::process_environment());
  if (!config) {
    std::cerr << "deputy: " << config.status().message() << "\n";
    return 2;
  }
  deputy::log::init(config->log_level);
  if (!config->keyring_json.empty()) {
    std::cerr << "deputy: the keyring comes from DEPUTY_KEYRING; rotate it where that value is kept\n";
    return 2;
  }
  auto database = deputy::store::open(config->database, 2);
  if (!database) {
    std::cerr << "deputy: " << database.status().message() << "\n";
    return 1;
  }
  auto report = deputy::server::rotate_keys(config->keys_file, **database, deputy::SystemClock::instance());
  if (!report) {
    std::cerr << "deputy: key rotation failed: " << report.status().message() << "\n";
    return 1;
  }
  std::cout << "new active key " << report->new_key_id << "; re-encrypted " << report->reencrypted
            << " connections. Old keys stay in " << config->keys_file << " for records still in flight.\n";
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App cli{"Deputy: Slack automation that acts as the person who asked"};
  cli.require_subcommand(1);
  std::string config_path;
  auto* serve_cmd = cli.add_subcommand("serve", "Run the server");
  serve_cmd->add_option("--config,-c", config_path, "YAML config file (optional; DEPUTY_* variables override it)");
  auto* version_cmd = cli.add_subcommand("version", "Print the version");
  auto* keys_cmd = cli.add_subcommand("keys", "Manage the encryption keyring");
  keys_cmd->require_subcommand(1);
  auto* rotate_cmd = keys_cmd->add_subcommand("rotate", "Add a new key and re-encrypt every stored token under it (safe while servers run)");
  rotate_cmd->add_option("--config,-c", config_path, "YAML config file");
  CLI11_PARSE(cli, argc, argv);
  if (version_cmd->parsed()) {
    std::cout << "deputy 0.1.0\n";
    return 0;
  }
  if (serve_cmd->parsed()) return serve(config_path);
  if (rotate_cmd->parsed()) return rotate_keys(config_path);
  return 0;
}
