// Storage boundary: a small SQL interface that both SQLite (embedded default) and
// PostgreSQL implement, so repositories are written once with `?` placeholders.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "common/result.h"

namespace deputy::store {

struct Blob {
  std::string bytes;
};

using Value = std::variant<std::monostate, int64_t, double, std::string, Blob>;
using Params = std::vector<Value>;

class Row {
 public:
  explicit Row(std::vector<Value> values) : values_(std::move(values)) {}
  size_t size() const { return values_.size(); }
  bool is_null(size_t i) const { return std::holds_alternative<std::monostate>(values_.at(i)); }
  int64_t integer(size_t i) const;
  std::string text(size_t i) const;
  std::string blob(size_t i) const;

 private:
  std::vector<Value> values_;
};

using Rows = std::vector<Row>;

enum class Dialect { kSqlite, kPostgres };

// Durability a write asks for. SQLite in WAL mode with synchronous=NORMAL may lose the
// last commits on power loss; token writes ask for kDurable (synchronous=FULL).
enum class Durability { kNormal, kDurable };

class Connection {
 public:
  virtual ~Connection() = default;
  virtual Result<Rows> query(std::string_view sql, const Params& params = {}) = 0;
  // Returns the number of rows changed.
  virtual Result<int64_t> execute(std::string_view sql, const Params& params = {}) = 0;
  virtual Status begin_write(Durability durability = Durability::kNormal) = 0;
  virtual Status commit() = 0;
  virtual Status rollback() = 0;
  virtual Dialect dialect() const = 0;
};

class Database;

// A connection borrowed from the pool; returned when the lease is destroyed.
class Lease {
 public:
  Lease(Database* owner, std::unique_ptr<Connection> connection);
  Lease(Lease&&) noexcept = default;
  Lease& operator=(Lease&&) noexcept = default;
  ~Lease();
  Connection& operator*() { return *connection_; }
  Connection* operator->() { return connection_.get(); }

 private:
  Database* owner_;
  std::unique_ptr<Connection> connection_;
};

class Database {
 public:
  virtual ~Database() = default;
  virtual Result<Lease> acquire() = 0;
  virtual Dialect dialect() const = 0;
  // A round trip to the database, waiting at most `wait` for a free connection (readiness
  // checks must answer even when every connection is busy).
  virtual Status ping(std::chrono::milliseconds wait = std::chrono::seconds(2)) = 0;

 protected:
  friend class Lease;
  virtual void release(std::unique_ptr<Connection> connection) = 0;
};

// Keeps a fixed set of open connections; acquire() waits for a free one.
class PooledDatabase : public Database {
 public:
  Result<Lease> acquire() override;
  Status ping(std::chrono::milliseconds wait) override;

 protected:
  Status fill(size_t pool_size);
  virtual Result<std::unique_ptr<Connection>> connect() = 0;
  void release(std::unique_ptr<Connection> connection) override;

 private:
  struct Pool;
  std::shared_ptr<Pool> pool_;
};

// Opens `sqlite:PATH` or `postgresql://...` and runs migrations.
Result<std::unique_ptr<Database>> open(const std::string& url, size_t pool_size);

// Opens without running migrations (tests and tools that manage schemas themselves).
Result<std::unique_ptr<Database>> open_unmigrated(const std::string& url, size_t pool_size = 1);

// Runs `work` inside a write transaction; commits when it returns Ok, rolls back otherwise.
Status with_write_transaction(Connection& connection, const std::function<Status(Connection&)>& work,
                              Durability durability = Durability::kNormal);

}  // namespace deputy::store
