#include "server/core.h"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <optional>

#include "common/limits.h"

#include "oauth/apps.h"
#include "server/keys.h"

namespace deputy::server {

OutboundConnections outbound_connections(unsigned per_host_asked, size_t open_files) {
  const long budget = std::max<long>(16, static_cast<long>(open_files / 2));
  // Room for the app's connections and as many again for Slack and the token endpoints.
  const long total = std::min<long>(budget, std::max<long>(1024, 2L * per_host_asked));
  return {std::min<long>(static_cast<long>(per_host_asked), total), total};
}

size_t inbound_connections(const config::Config& cfg, size_t open_files, size_t database_connections) {
  if (cfg.server.max_connections) return cfg.server.max_connections;
  const auto outbound = outbound_connections(cfg.server.outbound_connections_per_host, open_files);
  const size_t reserved = static_cast<size_t>(outbound.total) + database_connections + 64;
  return open_files > reserved + 16 ? open_files - reserved : 16;
}

bool on_postgres(const config::Config& cfg) { return cfg.database.rfind("postgres", 0) == 0; }

unsigned worker_threads(const config::Config& cfg, unsigned cores) {
  if (cfg.server.workers) return cfg.server.workers;
  const unsigned per_core = std::max(2u, cores);
  return on_postgres(cfg) ? 2 * per_core : per_core;
}

Result<std::unique_ptr<Core>> open_core(const config::Config& cfg, size_t pool_size, bool create_keyring,
                                        oauth::TokenSource::Post renewals) {
  auto core = std::make_unique<Core>();
  http::ClientOptions outbound;
  const size_t open_files = open_file_limit();
  const auto connections = outbound_connections(cfg.server.outbound_connections_per_host, open_files);
  if (connections.per_host < static_cast<long>(cfg.server.outbound_connections_per_host))
    spdlog::warn("outbound connections to one host are capped at {} (server.outbound_connections_per_host asks for {}) by the "
                 "limit of {} open files; raise the limit (ulimit -n, or LimitNOFILE= in the service unit) for more",
                 connections.per_host, cfg.server.outbound_connections_per_host, open_files);
  outbound.max_connections_per_host = connections.per_host;
  outbound.max_connections = connections.total;
  outbound.ca_file = cfg.server.outbound_ca_file;
  outbound.nice = cfg.server.worker_nice;
  core->http_client = std::make_unique<http::BeastClient>(outbound);
  auto apps = oauth::build_catalogue(cfg.apps);
  if (!apps) return apps.status();
  auto database = store::open(cfg.database, pool_size);
  if (!database) return database.status();
  core->database = std::move(database).value();

  // The keyring: from DEPUTY_KEYRING, or the key file (created on the server's first start).
  // Anything wrong with an existing one stops the start: better down than handing out garbage.
  std::optional<vault::Keyring> keyring;
  if (!cfg.keyring_json.empty()) {
    auto parsed = vault::Keyring::parse(cfg.keyring_json, "DEPUTY_KEYRING");
    if (!parsed) return parsed.status();
    keyring = std::move(parsed).value();
    core->vault = std::make_unique<vault::TokenVault>(*keyring, "");
  } else if (create_keyring) {
    auto loaded = vault::load_or_create(cfg.keys_file, SystemClock::instance().unix_seconds());
    if (!loaded) return loaded.status();
    if (loaded->created)
      spdlog::warn("created a new encryption keyring at {} (mode 0600). Back it up: without it the stored logins cannot be read.",
                   cfg.keys_file);
    keyring = loaded->keyring;
    core->vault = std::make_unique<vault::TokenVault>(*keyring, cfg.keys_file);
  } else {
    auto loaded = vault::Keyring::load(cfg.keys_file);
    if (!loaded) return loaded.status();
    keyring = std::move(loaded).value();
    core->vault = std::make_unique<vault::TokenVault>(*keyring, cfg.keys_file);
  }
  if (Status s = verify_keyring(*core->vault, *keyring, *core->database, SystemClock::instance()); !s.ok()) return s;

  core->slack = std::make_unique<slack::WebApi>(*core->http_client, slack::WebApiSettings{cfg.slack.api_url, cfg.slack.bot_token},
                                                &core->metrics);
  core->connections = std::make_unique<store::Connections>(*core->database, SystemClock::instance());
  core->oauth_states = std::make_unique<store::OAuthStates>(*core->database, SystemClock::instance());
  core->protocol = std::make_unique<oauth::Protocol>(*core->http_client);
  core->apps = std::make_unique<oauth::AppRegistry>(std::move(apps).value(), *core->protocol);
  core->tokens = std::make_unique<oauth::TokenSource>(*core->apps, *core->protocol, *core->connections, *core->vault,
                                                      SystemClock::instance(), core->metrics, oauth::RenewalOptions{}, std::move(renewals));
  core->login_links = std::make_unique<oauth::LoginLinks>(*core->apps, *core->oauth_states, *core->vault, SystemClock::instance(),
                                                          core->metrics, oauth::LoginOptions{cfg.effective_public_url()});
  core->connection_service = std::make_unique<oauth::ConnectionService>(*core->apps, *core->protocol, *core->connections,
                                                                        *core->oauth_states, *core->vault, core->metrics);
  return core;
}

}  // namespace deputy::server
