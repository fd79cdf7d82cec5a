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
#include "admin/report.h"
#include "server/app.h"
#include "server/core.h"
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

struct AdminOptions {
  std::string team;
  std::string user;
  std::string app;
  size_t limit = 50;
};

// `deputy admin …` works on the same database and keyring as the servers, while they run.
int admin(const std::string& config_path, const std::string& verb, const AdminOptions& options) {
  auto config = deputy::config::load(config_path, deputy::config::process_environment());
  if (!config) {
    std::cerr << "deputy: " << config.status().message() << "\n";
    return 2;
  }
  deputy::log::init(config->log_level == "info" ? "warn" : config->log_level);
  auto core = deputy::server::open_core(*config, 2, /*create_keyring=*/false);
  if (!core) {
    std::cerr << "deputy: " << core.status().message() << "\n";
    return 1;
  }
  auto& service = *(*core)->connection_service;
  auto app_name = [&](const std::string& id) { return (*core)->apps->display_name(id); };
  using deputy::admin::Style;
  if (verb == "connections") {
    auto found = service.list_connections({options.team, options.user, options.app});
    if (!found) {
      std::cerr << "deputy: " << found.status().message() << "\n";
      return 1;
    }
    for (const auto& c : *found) std::cout << deputy::admin::describe_connection(c, app_name(c.app), Style::kPlain) << "\n";
    std::cout << found->size() << " connection(s)\n";
    return 0;
  }
  if (verb == "offboard") {
    auto removed = service.offboard(options.team, options.user, "cli:" + std::string(std::getenv("USER") ? std::getenv("USER") : "admin"));
    if (!removed) {
      std::cerr << "deputy: offboarding failed: " << removed.status().message() << "\n";
      return 1;
    }
    for (const auto& c : *removed) std::cout << "revoked " << deputy::admin::describe_connection(c, app_name(c.app), Style::kPlain) << "\n";
    std::cout << "revoked " << removed->size() << " connection(s) of " << options.user << "\n";
    return 0;
  }
  auto records = service.read_audit(options.team, options.user, options.limit);
  if (!records) {
    std::cerr << "deputy: " << records.status().message() << "\n";
    return 1;
  }
  for (const auto& r : *records) std::cout << deputy::admin::describe_audit(r, Style::kPlain) << "\n";
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
  auto* admin_cmd = cli.add_subcommand("admin", "Connections and the audit log, for admins (never shows tokens)");
  admin_cmd->require_subcommand(1);
  AdminOptions admin_options;
  auto* list_cmd = admin_cmd->add_subcommand("connections", "List connections, by person and/or app");
  auto* offboard_cmd = admin_cmd->add_subcommand("offboard", "Revoke and delete every personal connection of one person");
  auto* audit_cmd = admin_cmd->add_subcommand("audit", "Read the audit log, newest first");
  for (auto* sub : {list_cmd, offboard_cmd, audit_cmd}) {
    sub->add_option("--config,-c", config_path, "YAML config file");
    sub->add_option("--team", admin_options.team, "Slack workspace id (default: all)");
  }
  list_cmd->add_option("--user", admin_options.user, "Slack user id");
  list_cmd->add_option("--app", admin_options.app, "App id, e.g. salesforce");
  offboard_cmd->add_option("--user", admin_options.user, "Slack user id")->required();
  // In chat an admin confirms with a button; on the server the command never asks, so scripts
  // can run it. --yes is accepted for scripts that say so explicitly.
  bool yes = false;  // read by nobody: there is nothing to confirm here
  offboard_cmd->add_flag("--yes,-y", yes, "Do not ask (the command never asks; accepted for scripts)");
  audit_cmd->add_option("--user", admin_options.user, "Only events this Slack user asked for or acted in");
  audit_cmd->add_option("--limit", admin_options.limit, "How many events (default 50)");
  CLI11_PARSE(cli, argc, argv);
  if (version_cmd->parsed()) {
    std::cout << "deputy 0.1.0\n";
    return 0;
  }
  if (serve_cmd->parsed()) return serve(config_path);
  if (rotate_cmd->parsed()) return rotate_keys(config_path);
  if (list_cmd->parsed()) return admin(config_path, "connections", admin_options);
  if (offboard_cmd->parsed()) return admin(config_path, "offboard", admin_options);
  if (audit_cmd->parsed()) return admin(config_path, "audit", admin_options);
  return 0;
}
