// What both the server and the admin command line need: the database, the vault (checked
// fail-closed), the app catalogue, and the token source, connect links and connection
// service built on them.
#pragma once

#include <memory>

#include "common/result.h"
#include "config/config.h"
#include "http/client_beast.h"
#include "metrics/metrics.h"
#include "oauth/protocol.h"
#include "oauth/app_registry.h"
#include "oauth/login_links.h"
#include "oauth/service.h"
#include "oauth/token_source.h"
#include "slack/web_api.h"
#include "store/connections.h"
#include "store/database.h"
#include "store/oauth_states.h"
#include "vault/token_vault.h"

namespace deputy::server {

struct Core {
  metrics::Registry metrics;
  std::unique_ptr<http::BeastClient> http_client;
  std::unique_ptr<store::Database> database;
  std::unique_ptr<vault::TokenVault> vault;
  std::unique_ptr<slack::WebApi> slack;
  std::unique_ptr<store::Connections> connections;
  std::unique_ptr<store::OAuthStates> oauth_states;
  std::unique_ptr<oauth::Protocol> protocol;
  std::unique_ptr<oauth::AppRegistry> apps;
  std::unique_ptr<oauth::TokenSource> tokens;
  std::unique_ptr<oauth::LoginLinks> login_links;
  std::unique_ptr<oauth::ConnectionService> connection_service;
};

// Outbound connections within the open-file limit: at most half of it, the rest left for
// Slack's requests, the database and files. Returns {per host, all hosts}.
struct OutboundConnections {
  long per_host;
  long total;
};
OutboundConnections outbound_connections(unsigned per_host_asked, size_t open_files);

// Inbound connections within the open-file limit: server.max_connections when set, else what
// is left of the limit after outbound calls, the database's connections and a reserve of 64
// for files, logs and the event loops (at least 16).
size_t inbound_connections(const config::Config& config, size_t open_files, size_t database_connections);

bool on_postgres(const config::Config& config);
// How many job workers `config` asks for, on a machine with `cores`: server.workers, or one
// per core (at least 2), twice that on PostgreSQL, whose reads keep a worker waiting.
unsigned worker_threads(const config::Config& config, unsigned cores);

// `create_keyring`: the server creates a missing key file on first start; tools never do.
// `renewals`: where token renewals run (the server's renewal pool); empty, on the caller's thread.
Result<std::unique_ptr<Core>> open_core(const config::Config& config, size_t pool_size, bool create_keyring,
                                        oauth::TokenSource::Post renewals = {});

}  // namespace deputy::server
