#include "store/sqlite_database.h"

#include <sqlite3.h>

#include <atomic>
#include <condition_variable>
#include <mutex>
#include <thread>
#include <unordered_map>

namespace deputy::store {
namespace {

class SqliteConnection final : public Connection {
 public:
  // SQLite allows one writer at a time. Writers of this process queue on `write_mutex`
  // instead of SQLite's busy handler, whose sleeps (up to 100 ms) would stall the ack path.
  SqliteConnection(sqlite3* db, std::mutex& write_mutex) : db_(db), write_mutex_(write_mutex) {}
  ~SqliteConnection() override {
    for (auto& [sql, stmt] : statements_) sqlite3_finalize(stmt);
    sqlite3_close_v2(db_);
  }

  Result<Rows> query(std::string_view sql, const Params& params) override {
    Rows rows;
    Status s = run(sql, params, &rows);
    if (!s.ok()) return s;
    return rows;
  }

  Result<int64_t> execute(std::string_view sql, const Params& params) override {
    Status s = run(sql, params, nullptr);
    if (!s.ok()) return s;
    return static_cast<int64_t>(sqlite3_changes(db_));
  }

  Status begin_write(Durability durability) override {
    write_lock_ = std::unique_lock(write_mutex_);
    durable_ = durability == Durability::kDurable;
    if (durable_) {
      if (Status s = exec_plain("PRAGMA synchronous=FULL"); !s.ok()) return s;
    }
    // IMMEDIATE takes the write lock up front, so two writers never deadlock on an upgrade.
    Status s = exec_plain("BEGIN IMMEDIATE");
    if (!s.ok()) write_lock_ = {};
    return s;
  }
  Status commit() override { return finish("COMMIT"); }
  Status rollback() override { return finish("ROLLBACK"); }
  Dialect dialect() const override { return Dialect::kSqlite; }

  Status exec_plain(const char* sql) {
    char* error = nullptr;
    if (sqlite3_exec(db_, sql, nullptr, nullptr, &error) != SQLITE_OK) {
      std::string message = error ? error : "unknown error";
      sqlite3_free(error);
      return Unavailable(std::string("sqlite: ") + message);
    }
    return Status::Ok();
  }

 private:
  Status finish(const char* sql) {
    Status s = sqlite3_get_autocommit(db_) ? Status::Ok() : exec_plain(sql);
    if (durable_) {
      durable_ = false;
      (void)exec_plain("PRAGMA synchronous=NORMAL");
    }
    write_lock_ = {};
    return s;
  }

  Result<sqlite3_stmt*> prepare(std::string_view sql) {
    std::string key(sql);
    if (auto it = statements_.find(key); it != statements_.end()) return it->second;
    sqlite3_stmt* stmt = nullptr;
    if (sqlite3_prepare_v3(db_, key.c_str(), static_cast<int>(key.size()), SQLITE_PREPARE_PERSISTENT, &stmt, nullptr) !=
        SQLITE_OK) {
      return Internal(std::string("sqlite prepare: ") + sqlite3_errmsg(db_));
    }
    statements_.emplace(std::move(key), stmt);
    return stmt;
  }

  Status run(std::string_view sql, const Params& params, Rows* rows) {
    auto prepared = prepare(sql);
    if (!prepared) return prepared.status();
    sqlite3_stmt* stmt = *prepared;
    // A single write outside a transaction still needs the process's writer turn.
    std::unique_lock<std::mutex> single_write;
    if (!write_lock_.owns_lock() && !sqlite3_stmt_readonly(stmt)) single_write = std::unique_lock(write_mutex_);
    sqlite3_reset(stmt);
    sqlite3_clear_bindings(stmt);
    for (size_t i = 0; i < params.size(); ++i) {
      int index = static_cast<int>(i + 1);
      const Value& v = params[i];
      int rc = SQLITE_OK;
      if (std::holds_alternative<std::monostate>(v)) {
        rc = sqlite3_bind_null(stmt, index);
      } else if (auto p = std::get_if<int64_t>(&v)) {
        rc = sqlite3_bind_int64(stmt, index, *p);
      } else if (auto p = std::get_if<double>(&v)) {
        rc = sqlite3_bind_double(stmt, index, *p);
      } else if (auto p = std::get_if<std::string>(&v)) {
        rc = sqlite3_bind_text(stmt, index, p->data(), static_cast<int>(p->size()), SQLITE_TRANSIENT);
      } else if (auto p = std::get_if<Blob>(&v)) {
        rc = sqlite3_bind_blob(stmt, index, p->bytes.data(), static_cast<int>(p->bytes.size()), SQLITE_TRANSIENT);
      }
      if (rc != SQLITE_OK) return Internal(std::string("sqlite bind: ") + sqlite3_errmsg(db_));
    }
    while (true) {
      int rc = sqlite3_step(stmt);
      if (rc == SQLITE_DONE) break;
      if (rc != SQLITE_ROW) {
        std::string message = sqlite3_errmsg(db_);
        sqlite3_reset(stmt);
        if (rc == SQLITE_CONSTRAINT || (rc & 0xFF) == SQLITE_CONSTRAINT) return {ErrorCode::kAlreadyExists, "sqlite: " + message};
        return Unavailable("sqlite: " + message);
      }
      if (!rows) continue;
      int columns = sqlite3_column_count(stmt);
      std::vector<Value> values;
      values.reserve(columns);
      for (int c = 0; c < columns; ++c) {
        switch (sqlite3_column_type(stmt, c)) {
          case SQLITE_INTEGER: values.emplace_back(static_cast<int64_t>(sqlite3_column_int64(stmt, c))); break;
          case SQLITE_FLOAT: values.emplace_back(sqlite3_column_double(stmt, c)); break;
          case SQLITE_TEXT:
            values.emplace_back(std::string(reinterpret_cast<const char*>(sqlite3_column_text(stmt, c)),
                                            static_cast<size_t>(sqlite3_column_bytes(stmt, c))));
            break;
          case SQLITE_BLOB: {
            const void* data = sqlite3_column_blob(stmt, c);
            values.emplace_back(Blob{std::string(static_cast<const char*>(data), static_cast<size_t>(sqlite3_column_bytes(stmt, c)))});
            break;
          }
          default: values.emplace_back(std::monostate{}); break;
        }
      }
      rows->emplace_back(std::move(values));
    }
    sqlite3_reset(stmt);
    return Status::Ok();
  }

  sqlite3* db_;
  std::mutex& write_mutex_;
  std::unique_lock<std::mutex> write_lock_;
  bool durable_ = false;
  std::unordered_map<std::string, sqlite3_stmt*> statements_;
};

// Copies the WAL back into the database file on its own thread and connection, so the
// commit that crosses the threshold (usually the ingest writer's, with requests waiting on
// it) does not also pay for the copy and its fsync. PASSIVE: never blocks writers or readers.
class Checkpointer {
 public:
  static constexpr int kThresholdPages = 1000;  // SQLite's own autocheckpoint default
  // The WAL can only start over once a checkpoint has caught up with it; under a steady
  // stream of commits the thread may never catch up, so past this size the committing
  // connection checkpoints itself, as SQLite would by default.
  static constexpr int kInlinePages = 8 * kThresholdPages;

  Status start(const std::string& path) {
    if (sqlite3_open_v2(path.c_str(), &db_, SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOMUTEX, nullptr) != SQLITE_OK) {
      return Unavailable(std::string("cannot open SQLite database for checkpoints: ") + sqlite3_errmsg(db_));
    }
    sqlite3_busy_timeout(db_, 1000);
    // A connection only knows the file is in WAL mode once it has looked; until then a
    // checkpoint is a no-op.
    if (sqlite3_exec(db_, "PRAGMA journal_mode=WAL", nullptr, nullptr, nullptr) != SQLITE_OK) {
      return Unavailable(std::string("cannot prepare SQLite checkpoints: ") + sqlite3_errmsg(db_));
    }
    thread_ = std::thread([this] { loop(); });
    return Status::Ok();
  }
  ~Checkpointer() {
    {
      std::lock_guard lock(mutex_);
      stopping_ = true;
    }
    wake_.notify_one();
    if (thread_.joinable()) thread_.join();
    sqlite3_close_v2(db_);
  }

  // Installed on every pooled connection in place of SQLite's automatic checkpoint.
  static int on_commit(void* self, sqlite3* db, const char* schema, int wal_pages) {
    if (wal_pages >= kInlinePages) {
      (void)sqlite3_wal_checkpoint_v2(db, schema, SQLITE_CHECKPOINT_PASSIVE, nullptr, nullptr);
    } else if (wal_pages >= kThresholdPages) {
      static_cast<Checkpointer*>(self)->request();
    }
    return SQLITE_OK;
  }

 private:
  void request() {
    if (wanted_.exchange(true)) return;
    wake_.notify_one();
  }
  void loop() {
    std::unique_lock lock(mutex_);
    while (true) {
      wake_.wait(lock, [&] { return stopping_ || wanted_.load(); });
      if (stopping_) return;
      lock.unlock();
      wanted_ = false;
      (void)sqlite3_wal_checkpoint_v2(db_, nullptr, SQLITE_CHECKPOINT_PASSIVE, nullptr, nullptr);
      lock.lock();
    }
  }

  sqlite3* db_ = nullptr;
  std::mutex mutex_;
  std::condition_variable wake_;
  std::atomic<bool> wanted_{false};
  bool stopping_ = false;
  std::thread thread_;
};

class SqliteDatabase final : public PooledDatabase {
 public:
  Status init(const std::string& path, size_t pool_size) {
    path_ = path;
    // The first connection creates the file and switches it to WAL before the checkpointer opens it.
    if (Status s = fill(pool_size); !s.ok()) return s;
    return checkpointer_.start(path);
  }
  Dialect dialect() const override { return Dialect::kSqlite; }

 protected:
  Result<std::unique_ptr<Connection>> connect() override {
    sqlite3* db = nullptr;
    int flags = SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX;
    if (sqlite3_open_v2(path_.c_str(), &db, flags, nullptr) != SQLITE_OK) {
      std::string message = db ? sqlite3_errmsg(db) : "out of memory";
      sqlite3_close_v2(db);
      return Unavailable("cannot open SQLite database " + path_ + ": " + message);
    }
    sqlite3_busy_timeout(db, 10000);
    auto connection = std::make_unique<SqliteConnection>(db, write_mutex_);
    for (const char* pragma : {"PRAGMA journal_mode=WAL", "PRAGMA synchronous=NORMAL", "PRAGMA foreign_keys=ON",
                               "PRAGMA temp_store=MEMORY", "PRAGMA cache_size=-16384"}) {
      if (Status s = connection->exec_plain(pragma); !s.ok()) return s;
    }
    sqlite3_wal_hook(db, &Checkpointer::on_commit, &checkpointer_);
    return std::unique_ptr<Connection>(std::move(connection));
  }

 private:
  std::string path_;
  std::mutex write_mutex_;
  Checkpointer checkpointer_;
};

}  // namespace

Result<std::unique_ptr<Database>> open_sqlite(const std::string& path, size_t pool_size) {
  auto database = std::make_unique<SqliteDatabase>();
  if (Status s = database->init(path, pool_size); !s.ok()) return s;
  return std::unique_ptr<Database>(std::move(database));
}

}  // namespace deputy::store
