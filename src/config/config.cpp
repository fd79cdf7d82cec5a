#include "config/config.h"

#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <cctype>
#include <fstream>
#include <sstream>

extern char** environ;

namespace deputy::config {
namespace {

Status field_error(const std::string& source, const YAML::Node& node, const std::string& field, const std::string& what) {
  std::ostringstream out;
  out << source;
  if (node.IsDefined() && node.Mark().line >= 0) out << ":" << node.Mark().line + 1;
  out << ": " << field << ": " << what;
  return InvalidArgument(out.str());
}

template <typename T>
Status read_scalar(const std::string& source, const YAML::Node& parent, const char* key, const std::string& path, T& out) {
  YAML::Node node = parent[key];
  if (!node.IsDefined() || node.IsNull()) return Status::Ok();
  if (!node.IsScalar()) return field_error(source, node, path, "expected a single value");
  try {
    out = node.as<T>();
  } catch (const YAML::Exception&) {
    return field_error(source, node, path, "has the wrong type");
  }
  return Status::Ok();
}

}  // namespace

std::string app_env_prefix(const std::string& app_id) {
  std::string prefix = "DEPUTY_APP_";
  for (char c : app_id) prefix += std::isalnum(static_cast<unsigned char>(c)) ? char(std::toupper(static_cast<unsigned char>(c))) : '_';
  return prefix;
}

namespace {

void apply_env(Config& config, const Environment& env) {
  auto set = [&](const char* name, std::string& target) {
    if (auto it = env.find(name); it != env.end() && !it->second.empty()) target = it->second;
  };
  set("DEPUTY_LISTEN", config.listen);
  set("DEPUTY_DATABASE", config.database);
  set("DEPUTY_PUBLIC_URL", config.public_url);
  set("DEPUTY_SLACK_SIGNING_SECRET", config.slack.signing_secret);
  set("DEPUTY_SLACK_BOT_TOKEN", config.slack.bot_token);
  set("DEPUTY_SLACK_API_URL", config.slack.api_url);
  set("DEPUTY_RECIPES", config.recipes_dir);
  set("DEPUTY_KEYS", config.keys_file);
  set("DEPUTY_LOG_LEVEL", config.log_level);
  set("DEPUTY_KEYRING", config.keyring_json);
  for (auto& app : config.apps) {
    const std::string prefix = app_env_prefix(app.id);
    set((prefix + "_CLIENT_ID").c_str(), app.client_id);
    set((prefix + "_CLIENT_SECRET").c_str(), app.client_secret);
    set((prefix + "_API_KEY").c_str(), app.api_key);
  }
  if (auto it = env.find("DEPUTY_ADMINS"); it != env.end() && !it->second.empty()) {
    config.admins.clear();
    std::stringstream list(it->second);
    for (std::string id; std::getline(list, id, ',');) {
      if (!id.empty()) config.admins.push_back(id);
    }
  }
}

Status parse_yaml(const YAML::Node& root, const std::string& source, Config& config) {
  if (!root.IsDefined() || root.IsNull()) return Status::Ok();
  if (!root.IsMap()) return field_error(source, root, "(top level)", "expected a mapping of settings");
  static const std::vector<std::string> kKnown = {"listen", "public_url", "database", "recipes", "keys", "log_level",
                                                  "slack", "server", "admins", "apps"};
  for (const auto& entry : root) {
    auto key = entry.first.as<std::string>();
    if (std::find(kKnown.begin(), kKnown.end(), key) == kKnown.end()) {
      return field_error(source, entry.first, key, "unknown setting");
    }
  }
  for (Status s : {read_scalar(source, root, "listen", "listen", config.listen),
                   read_scalar(source, root, "public_url", "public_url", config.public_url),
                   read_scalar(source, root, "database", "database", config.database),
                   read_scalar(source, root, "recipes", "recipes", config.recipes_dir),
                   read_scalar(source, root, "keys", "keys", config.keys_file),
                   read_scalar(source, root, "log_level", "log_level", config.log_level)}) {
    if (!s.ok()) return s;
  }
  if (YAML::Node slack = root["slack"]; slack.IsDefined() && !slack.IsNull()) {
    if (!slack.IsMap()) return field_error(source, slack, "slack", "expected a mapping");
    for (Status s : {read_scalar(source, slack, "signing_secret", "slack.signing_secret", config.slack.signing_secret),
                     read_scalar(source, slack, "bot_token", "slack.bot_token", config.slack.bot_token),
                     read_scalar(source, slack, "api_url", "slack.api_url", config.slack.api_url)}) {
      if (!s.ok()) return s;
    }
  }
  if (YAML::Node server = root["server"]; server.IsDefined() && !server.IsNull()) {
    if (!server.IsMap()) return field_error(source, server, "server", "expected a mapping");
    auto& s = config.server;
    for (Status st : {read_scalar(source, server, "io_threads", "server.io_threads", s.io_threads),
                      read_scalar(source, server, "workers", "server.workers", s.workers),
                      read_scalar(source, server, "worker_nice", "server.worker_nice", s.worker_nice),
                      read_scalar(source, server, "jobs_in_flight", "server.jobs_in_flight", s.jobs_in_flight),
                      read_scalar(source, server, "jobs_in_flight_per_app", "server.jobs_in_flight_per_app", s.jobs_in_flight_per_app),
                      read_scalar(source, server, "jobs_in_flight_per_person", "server.jobs_in_flight_per_person",
                                  s.jobs_in_flight_per_person),
                      read_scalar(source, server, "job_max_wait_seconds", "server.job_max_wait_seconds", s.job_max_wait_seconds),
                      read_scalar(source, server, "heartbeat_seconds", "server.heartbeat_seconds", s.heartbeat_seconds),
                      read_scalar(source, server, "takeover_seconds", "server.takeover_seconds", s.takeover_seconds),
                      read_scalar(source, server, "outbound_connections_per_host", "server.outbound_connections_per_host",
                                  s.outbound_connections_per_host),
                      read_scalar(source, server, "outbound_ca_file", "server.outbound_ca_file", s.outbound_ca_file),
                      read_scalar(source, server, "max_body_bytes", "server.max_body_bytes", s.max_body_bytes),
                      read_scalar(source, server, "header_limit_bytes", "server.header_limit_bytes", s.header_limit_bytes),
                      read_scalar(source, server, "header_timeout_seconds", "server.header_timeout_seconds", s.header_timeout_seconds),
                      read_scalar(source, server, "read_timeout_seconds", "server.read_timeout_seconds", s.read_timeout_seconds),
                      read_scalar(source, server, "max_connections", "server.max_connections", s.max_connections),
                      read_scalar(source, server, "idle_timeout_seconds", "server.idle_timeout_seconds", s.idle_timeout_seconds)}) {
      if (!st.ok()) return st;
    }
    if (s.jobs_in_flight == 0) return field_error(source, server["jobs_in_flight"], "server.jobs_in_flight", "must be at least 1");
    for (auto [name, value] : {std::pair<const char*, unsigned>{"jobs_in_flight_per_app", s.jobs_in_flight_per_app},
                               {"jobs_in_flight_per_person", s.jobs_in_flight_per_person},
                               {"job_max_wait_seconds", s.job_max_wait_seconds},
                               {"heartbeat_seconds", s.heartbeat_seconds},
                               {"header_timeout_seconds", s.header_timeout_seconds},
                               {"read_timeout_seconds", s.read_timeout_seconds},
                               {"idle_timeout_seconds", s.idle_timeout_seconds}}) {
      if (value == 0) return field_error(source, server[name], std::string("server.") + name, "must be at least 1");
    }
    if (s.outbound_connections_per_host == 0) {
      return field_error(source, server["outbound_connections_per_host"], "server.outbound_connections_per_host", "must be at least 1");
    }
    if (s.takeover_seconds < 4 * s.heartbeat_seconds) {
      // A process stops starting work two heartbeats before it could be taken over; with less
      // than two more it would stop at every slightly late heartbeat.
      return field_error(source, server[server["takeover_seconds"] ? "takeover_seconds" : "heartbeat_seconds"], "server.takeover_seconds",
                         "must be at least four heartbeats (4 × server.heartbeat_seconds = " + std::to_string(4 * s.heartbeat_seconds) +
                             " s)");
    }
    if (s.worker_nice < 0 || s.worker_nice > 19) {
      return field_error(source, server["worker_nice"], "server.worker_nice", "must be from 0 (same as the ack path) to 19");
    }
  }
  if (YAML::Node apps = root["apps"]; apps.IsDefined() && !apps.IsNull()) {
    if (!apps.IsMap()) return field_error(source, apps, "apps", "expected a mapping of app ids to settings");
    for (const auto& entry : apps) {
      AppSettings app;
      app.id = entry.first.as<std::string>();
      app.line = entry.first.Mark().line + 1;
      const YAML::Node& a = entry.second;
      std::string path = "apps." + app.id;
      if (!a.IsMap()) return field_error(source, a, path, "expected a mapping");
      static const std::vector<std::string> kAppKeys = {
          "type", "display_name", "client_id", "client_secret", "issuer", "authorize_url", "token_url", "revoke_url",
          "userinfo_url", "api_base_url", "login_host", "instance", "token_auth", "identity", "identity_check", "api_key",
          "pkce", "scopes", "timeout_seconds"};
      for (const auto& field : a) {
        auto key = field.first.as<std::string>();
        if (std::find(kAppKeys.begin(), kAppKeys.end(), key) == kAppKeys.end())
          return field_error(source, field.first, path + "." + key, "unknown setting");
      }
      std::pair<const char*, std::string*> strings[] = {
          {"type", &app.type}, {"display_name", &app.display_name}, {"client_id", &app.client_id},
          {"client_secret", &app.client_secret}, {"issuer", &app.issuer}, {"authorize_url", &app.authorize_url},
          {"token_url", &app.token_url}, {"revoke_url", &app.revoke_url}, {"userinfo_url", &app.userinfo_url},
          {"api_base_url", &app.api_base_url}, {"login_host", &app.login_host}, {"instance", &app.instance},
          {"token_auth", &app.token_auth}, {"identity_check", &app.identity_check}, {"api_key", &app.api_key}};
      for (auto& [key, target] : strings) {
        if (Status s = read_scalar(source, a, key, path + "." + key, *target); !s.ok()) return s;
      }
      if (Status s = read_scalar(source, a, "timeout_seconds", path + ".timeout_seconds", app.timeout_seconds); !s.ok()) return s;
      if (app.timeout_seconds == 0 || app.timeout_seconds > 600)
        return field_error(source, a["timeout_seconds"], path + ".timeout_seconds", "must be from 1 to 600 seconds");
      if (a["pkce"].IsDefined()) {
        bool pkce = true;
        if (Status s = read_scalar(source, a, "pkce", path + ".pkce", pkce); !s.ok()) return s;
        app.pkce = pkce;
      }
      if (YAML::Node scopes = a["scopes"]; scopes.IsDefined()) {
        if (!scopes.IsSequence()) return field_error(source, scopes, path + ".scopes", "expected a list");
        app.scopes.emplace();
        for (const auto& scope : scopes) app.scopes->push_back(scope.as<std::string>());
      }
      if (YAML::Node identity = a["identity"]; identity.IsDefined()) {
        if (!identity.IsMap()) return field_error(source, identity, path + ".identity", "expected source, field and url");
        for (Status s : {read_scalar(source, identity, "source", path + ".identity.source", app.identity_source),
                         read_scalar(source, identity, "field", path + ".identity.field", app.identity_field),
                         read_scalar(source, identity, "url", path + ".identity.url", app.identity_url)}) {
          if (!s.ok()) return s;
        }
      }
      config.apps.push_back(std::move(app));
    }
  }
  if (YAML::Node admins = root["admins"]; admins.IsDefined() && !admins.IsNull()) {
    if (!admins.IsSequence()) return field_error(source, admins, "admins", "expected a list of Slack user ids");
    for (const auto& admin : admins) config.admins.push_back(admin.as<std::string>());
  }
  return Status::Ok();
}

}  // namespace

std::string Config::effective_public_url() const {
  std::string url = public_url.empty() ? "http://" + listen : public_url;
  while (!url.empty() && url.back() == '/') url.pop_back();
  return url;
}

Result<std::pair<std::string, uint16_t>> Config::listen_endpoint() const {
  size_t colon = listen.rfind(':');
  if (colon == std::string::npos) return InvalidArgument("listen address must be host:port, got '" + listen + "'");
  std::string host = listen.substr(0, colon);
  if (host.size() >= 2 && host.front() == '[' && host.back() == ']') host = host.substr(1, host.size() - 2);
  try {
    size_t used = 0;
    int port = std::stoi(listen.substr(colon + 1), &used);
    if (used != listen.size() - colon - 1 || port < 0 || port > 65535) throw std::out_of_range("port");
    return std::make_pair(host.empty() ? std::string("0.0.0.0") : host, static_cast<uint16_t>(port));
  } catch (const std::exception&) {
    return InvalidArgument("listen address has a bad port: '" + listen + "'");
  }
}

std::vector<std::string> Config::missing_for_production() const {
  std::vector<std::string> missing;
  if (slack.signing_secret.empty())
    missing.emplace_back("Slack signing secret: set DEPUTY_SLACK_SIGNING_SECRET or slack.signing_secret (until then Slack requests are refused)");
  if (slack.bot_token.empty())
    missing.emplace_back("Slack bot token (the one that starts with xoxb): set DEPUTY_SLACK_BOT_TOKEN or slack.bot_token (until then Deputy cannot answer)");
  if (public_url.empty())
    missing.emplace_back("Public URL that Slack and browsers reach: set DEPUTY_PUBLIC_URL or public_url (now " + effective_public_url() + ")");
  return missing;
}

Environment process_environment() {
  Environment env;
  for (char** e = environ; e && *e; ++e) {
    std::string_view entry(*e);
    size_t eq = entry.find('=');
    if (eq == std::string_view::npos) continue;
    std::string name(entry.substr(0, eq));
    if (name.rfind("DEPUTY_", 0) == 0) env.emplace(name, std::string(entry.substr(eq + 1)));
  }
  return env;
}

Result<Config> load_from_string(const std::string& yaml_text, const Environment& env, const std::string& source_name) {
  Config config;
  try {
    YAML::Node root = YAML::Load(yaml_text);
    if (Status s = parse_yaml(root, source_name, config); !s.ok()) return s;
  } catch (const YAML::ParserException& e) {
    return InvalidArgument(source_name + ":" + std::to_string(e.mark.line + 1) + ": not valid YAML: " + e.msg);
  }
  apply_env(config, env);
  if (auto endpoint = config.listen_endpoint(); !endpoint) return endpoint.status();
  return config;
}

Result<Config> load(const std::string& path, const Environment& env) {
  if (path.empty()) return load_from_string("", env, "(defaults)");
  std::ifstream in(path);
  if (!in) return NotFound("cannot read config file " + path);
  std::stringstream text;
  text << in.rdbuf();
  auto config = load_from_string(text.str(), env, path);
  if (config) config->source_file = path;
  return config;
}

}  // namespace deputy::config
