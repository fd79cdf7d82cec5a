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

// One app from the `apps:` section, as written; oauth/ applies the catalogue's defaults.
struct AppSettings {
  std::string id;
  std::string type = "oauth2";  // salesforce, servicenow, box, oauth2, api_key
  std::string display_name;
  std::string client_id;
  std::string client_secret;  // or DEPUTY_APP_<ID>_CLIENT_SECRET
  std::string issuer;         // OIDC discovery at {issuer}/.well-known/openid-configuration
  std::string authorize_url;
  std::string token_url;
  std::string revoke_url;
  std::string userinfo_url;
  std::string api_base_url;
  std::string login_host;  // Salesforce: login.salesforce.com, test.salesforce.com or a My Domain host
  std::string instance;    // ServiceNow: acme.service-now.com
  std::string token_auth;  // client_secret_basic or client_secret_post
  std::string identity_source;  // userinfo, id_token or api
  std::string identity_field;   // claim name, or JSON pointer for api
  std::string identity_url;     // api source: URL read with the new token
  std::string identity_check;   // email_match, none, one_time_code
  std::string api_key;          // api_key apps (shared only); or DEPUTY_APP_<ID>_API_KEY
  std::optional<bool> pkce;
  std::optional<std::vector<std::string>> scopes;
  unsigned timeout_seconds = 30;  // the deadline of one API call, waiting for a connection included
  int line = 0;
};

struct ServerSettings {
  unsigned io_threads = 0;  // 0: one per core
  // Job worker threads. 0: one per core (at least 2), twice that on PostgreSQL, where their
  // reads wait on round trips. They do CPU work only (jobs waiting on an app or Slack hold
  // none), so more than that only adds thread switches.
  unsigned workers = 0;
  int worker_nice = 10;     // workers' nice value above the rest of Deputy's (0: same priority)
  // Deliveries started and not finished at once (jobs waiting on an app hold no thread).
  unsigned jobs_in_flight = 2048;
  // App calls in flight for one app, and for one person, at most: a hanging app or one
  // person's burst takes no more than that. Past the app's limit a short line (a quarter of
  // it) waits in memory for a place; the rest wait in the queue.
  unsigned jobs_in_flight_per_app = 1024;
  unsigned jobs_in_flight_per_person = 16;
  // How long a command may wait out rate limits and busy apps before the person is told.
  unsigned job_max_wait_seconds = 900;
  // Several processes on one PostgreSQL: each heartbeats this often, and one silent for the
  // takeover time (by the database's clock) has its work taken over by the others.
  unsigned heartbeat_seconds = 2;
  unsigned takeover_seconds = 10;
  // Outbound HTTP: connections to one host at most (apps, token endpoints, Slack), and a CA
  // bundle to trust instead of the system's (a company's own CA); proxies come from the
  // environment (https_proxy, http_proxy, no_proxy).
  unsigned outbound_connections_per_host = 1024;
  std::string outbound_ca_file;
  uint64_t max_body_bytes = 1 << 20;
  unsigned header_limit_bytes = 16 * 1024;
  // Inbound: a request's headers within header_timeout_seconds of its first byte, its body
  // within read_timeout_seconds of its headers.
  unsigned header_timeout_seconds = 10;
  unsigned read_timeout_seconds = 30;
  unsigned idle_timeout_seconds = 60;
  // Inbound connections open at once. 0: the open-file limit less what the database,
  // outbound calls and files need.
  unsigned max_connections = 0;
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
  std::vector<AppSettings> apps;
  std::string keyring_json;  // DEPUTY_KEYRING: the keyring itself, instead of a file
  std::optional<std::string> source_file;

  std::string effective_public_url() const;
  // Host and port split out of `listen`.
  Result<std::pair<std::string, uint16_t>> listen_endpoint() const;
  // What a real deployment still needs, in words a person can act on.
  std::vector<std::string> missing_for_production() const;
};

using Environment = std::map<std::string, std::string>;
Environment process_environment();

// The start of an app's variables: DEPUTY_APP_<ID> with the id upper-cased and every other
// character than a letter or digit turned into `_` ("my-crm" -> DEPUTY_APP_MY_CRM).
std::string app_env_prefix(const std::string& app_id);

// path empty: defaults plus environment only.
Result<Config> load(const std::string& path, const Environment& env);
Result<Config> load_from_string(const std::string& yaml_text, const Environment& env, const std::string& source_name);

}  // namespace deputy::config
