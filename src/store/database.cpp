#include "store/database.h"

#include <condition_variable>
#include <mutex>

#include "store/migrations.h"
#include "store/sqlite_database.h"
#include "store/postgres_database.h"

namespace deputy::store {

int64_t Row::integer(size_t i) const {
  const Value& v = values_.at(i);
  if (auto p = std::get_if<int64_t>(&v)) return *p;
  if (auto p = std::get_if<double>(&v)) return static_cast<int64_t>(*p);
  if (auto p = std::get_if<std::string>(&v)) return p->empty() ? 0 : std::stoll(*p);
  return 0;
}

std::string Row::text(size_t i) const {
  const Value& v = values_.at(i);
  if (auto p = std::get_if<std::string>(&v)) return *p;
  if (auto p = std::get_if<int64_t>(&v)) return std::to_string(*p);
  if (auto p = std::get_if<Blob>(&v)) return p->bytes;
  if (auto p = std::get_if<double>(&v)) return std::to_string(*p);
  return {};
}

std::string Row::blob(size_t i) const {
  const Value& v = values_.at(i);
  if (auto p = std::get_if<Blob>(&v)) return p->bytes;
  if (auto p = std::get_if<std::string>(&v)) return *p;
  return {};
}

Lease::Lease(Database* owner, std::unique_ptr<Connection> connection)
    : owner_(owner), connection_(std::move(connection)) {}

Lease::~Lease() {
  if (owner_ && connection_) owner_->release(std::move(connection_));
}

struct PooledDatabase::Pool {
  std::mutex mutex;
  std::condition_variable available;
  std::vector<std::unique_ptr<Connection>> idle;
};

Status PooledDatabase::fill(size_t pool_size) {
  pool_ = std::make_shared<Pool>();
  for (size_t i = 0; i < std::max<size_t>(pool_size, 1); ++i) {
    auto connection = connect();
    if (!connection) return connection.status();
    pool_->idle.push_back(std::move(connection).value());
  }
  return Status::Ok();
}

Result<Lease> PooledDatabase::acquire() {
  std::unique_lock lock(pool_->mutex);
  pool_->available.wait(lock, [&] { return !pool_->idle.empty(); });
  auto connection = std::move(pool_->idle.back());
  pool_->idle.pop_back();
  return Lease(this, std::move(connection));
}

void PooledDatabase::release(std::unique_ptr<Connection> connection) {
  {
    std::lock_guard lock(pool_->mutex);
    pool_->idle.push_back(std::move(connection));
  }
  pool_->available.notify_one();
}

Status PooledDatabase::ping(std::chrono::milliseconds wait) {
  std::unique_ptr<Connection> connection;
  {
    std::unique_lock lock(pool_->mutex);
    if (!pool_->available.wait_for(lock, wait, [&] { return !pool_->idle.empty(); }))
      return Unavailable("no database connection came free within " + std::to_string(wait.count()) + " ms");
    connection = std::move(pool_->idle.back());
    pool_->idle.pop_back();
  }
  Lease lease(this, std::move(connection));
  auto rows = lease->query("SELECT 1");
  return rows ? Status::Ok() : rows.status();
}

Status with_write_transaction(Connection& connection, const std::function<Status(Connection&)>& work,
                              Durability durability) {
  if (Status s = connection.begin_write(durability); !s.ok()) return s;
  Status result = work(connection);
  if (!result.ok()) {
    (void)connection.rollback();
    return result;
  }
  if (Status s = connection.commit(); !s.ok()) {
    (void)connection.rollback();
    return s;
  }
  return Status::Ok();
}

Result<std::unique_ptr<Database>> open(const std::string& url, size_t pool_size) {
  auto database = open_unmigrated(url, pool_size);
  if (!database) return database;
  if (Status s = migrate(**database); !s.ok()) return s;
  return database;
}

Result<std::unique_ptr<Database>> open_unmigrated(const std::string& url, size_t pool_size) {
  std::unique_ptr<Database> database;
  if (url.rfind("sqlite:", 0) == 0) {
    auto opened = open_sqlite(url.substr(7), pool_size);
    if (!opened) return opened.status();
    database = std::move(opened).value();
  } else if (url.rfind("postgresql://", 0) == 0 || url.rfind("postgres://", 0) == 0) {
    auto opened = open_postgres(url, pool_size);
    if (!opened) return opened.status();
    database = std::move(opened).value();
  } else {
    return InvalidArgument("database must be sqlite:PATH or postgresql://..., got '" + url.substr(0, url.find(':')) + ":...'");
  }
  return database;
}

}  // namespace deputy::store
