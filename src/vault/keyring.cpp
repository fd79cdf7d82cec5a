#include "vault/keyring.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <nlohmann/json.hpp>

#include <cerrno>
#include <cstring>
#include <fstream>
#include <sstream>

#include "common/clock.h"
#include "common/encoding.h"
#include "vault/aead.h"

namespace deputy::vault {
namespace {

std::string new_key_id(int64_t now) {
  return "k" + std::to_string(now) + "-" + to_hex(SecureRandom::instance().bytes(4));
}

}  // namespace

Result<Keyring> Keyring::parse(const std::string& text, const std::string& source) {
  auto json = nlohmann::json::parse(text, nullptr, false);
  if (json.is_discarded() || !json.is_object()) return InvalidArgument(source + ": keyring is not valid JSON");
  if (json.value("version", 0) != 1) return InvalidArgument(source + ": unsupported keyring version");
  Keyring ring;
  ring.active_id_ = json.value("active", std::string());
  const auto& keys = json["keys"];
  if (!keys.is_array() || keys.empty()) return InvalidArgument(source + ": keyring has no keys");
  for (const auto& entry : keys) {
    if (!entry.is_object() || !entry.contains("id") || !entry.contains("key") || !entry["id"].is_string() ||
        !entry["key"].is_string()) {
      return InvalidArgument(source + ": every key needs a string id and key");
    }
    auto material = base64_decode(entry["key"].get<std::string>());
    if (!material || material->size() != kKeyBytes) {
      return InvalidArgument(source + ": key '" + entry["id"].get<std::string>() + "' is not 32 bytes of base64");
    }
    if (ring.find(entry["id"].get<std::string>())) return InvalidArgument(source + ": duplicate key id");
    ring.keys_.push_back(Key{entry["id"].get<std::string>(), std::move(*material), entry.value("created", int64_t{0})});
  }
  if (!ring.find(ring.active_id_)) return InvalidArgument(source + ": active key '" + ring.active_id_ + "' is not in the keyring");
  return ring;
}

Result<Keyring> Keyring::load(const std::string& path) {
  std::ifstream in(path);
  if (!in) return Unavailable("cannot read keyring " + path + ": " + std::strerror(errno));
  std::stringstream text;
  text << in.rdbuf();
  if (in.bad()) return Unavailable("cannot read keyring " + path);
  return parse(text.str(), path);
}

Keyring Keyring::generate(int64_t now) {
  Keyring ring;
  ring.rotate(now);
  return ring;
}

std::string Keyring::rotate(int64_t now) {
  Key key{new_key_id(now), SecureRandom::instance().bytes(kKeyBytes), now};
  active_id_ = key.id;
  keys_.push_back(std::move(key));
  return active_id_;
}

const Key& Keyring::active() const { return *find(active_id_); }

const Key* Keyring::find(const std::string& id) const {
  for (const Key& key : keys_) {
    if (key.id == id) return &key;
  }
  return nullptr;
}

std::string Keyring::serialize() const {
  nlohmann::json keys = nlohmann::json::array();
  for (const Key& key : keys_) keys.push_back({{"id", key.id}, {"key", base64_encode(key.material)}, {"created", key.created}});
  return nlohmann::json{{"version", 1}, {"active", active_id_}, {"keys", keys}}.dump(2) + "\n";
}

Status Keyring::save(const std::string& path) const {
  std::string temp = path + ".tmp";
  int fd = ::open(temp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  if (fd < 0) return Unavailable("cannot write keyring " + temp + ": " + std::strerror(errno));
  std::string text = serialize();
  bool ok = ::fchmod(fd, 0600) == 0 && ::write(fd, text.data(), text.size()) == static_cast<ssize_t>(text.size()) && ::fsync(fd) == 0;
  ::close(fd);
  if (!ok || ::rename(temp.c_str(), path.c_str()) != 0) {
    ::unlink(temp.c_str());
    return Unavailable("cannot write keyring " + path + ": " + std::strerror(errno));
  }
  return Status::Ok();
}

std::string base64_key_text(const Key& key) { return base64_encode(key.material); }

Result<LoadedKeyring> load_or_create(const std::string& path, int64_t now) {
  struct stat info {};
  if (::stat(path.c_str(), &info) != 0) {
    if (errno != ENOENT) return Unavailable("cannot access keyring " + path + ": " + std::strerror(errno));
    Keyring ring = Keyring::generate(now);
    if (Status s = ring.save(path); !s.ok()) return s;
    return LoadedKeyring{std::move(ring), true};
  }
  auto ring = Keyring::load(path);
  if (!ring) return ring.status();
  return LoadedKeyring{std::move(ring).value(), false};
}

}  // namespace deputy::vault
