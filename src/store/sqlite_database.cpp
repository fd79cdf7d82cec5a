#include "store/sqlite_database.h"

#include <spdlog/spdlog.h>
#include <sqlite3.h>

#include <atomic>
#include <condition_variable>
#include <mutex>
#include <thread>
#include <unordered_map>

#include "common/threads.h"

namespace deputy::store {
namespace {

// The process's one turn to write. A std::mutex lets a thread that unlocks take it straight
// back, so a writer that never pauses could keep the checkpointer waiting indefinitely; in
// front of it, the turnstile admits one taker at a time, and whoever waits there is next.
class WriteTurn {
 public:
  std::unique_lock<std::mutex> take() {
    std::lock_guard in_line(turnstile_);
    return std::unique_lock(mutex_);
  }

 private:
  std::mutex turnstile_;
  std::mutex mutex_;
};

class SqliteConnection final : public Connection {
 public:
  // SQLite allows one writer at a time. Writers of this process queue for `write_turn`
  // instead of SQLite's busy handler, whose sleeps (up to 100 ms) would stall the ack path.
  SqliteConnection(sqlite3* db, WriteTurn& write_turn) : db_(db), write_turn_(write_turn) {}
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
    write_lock_ = write_turn_.take();
    durable_ = durability == Durability::kDurable;
    if (durable_) {
      if (Status s = exec_plain("PRAGMA synchronous=FULL"); !s.ok()) return s;
    }
    // IMMEDIATE takes the write lock up front, so two writers never deadlock on an upgrade.
    // Run as a cached statement: sqlite3_exec would parse it again on every transaction.
    Status s = run("BEGIN IMMEDIATE", {}, nullptr);
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
    Status s = sqlite3_get_autocommit(db_) ? Status::Ok() : run(sql, {}, nullptr);
    if (durable_) {
      durable_ = false;
      (void)exec_plain("PRAGMA synchronous=NORMAL");
    }
    write_lock_ = {};
    return s;
  }

  Result<sqlite3_stmt*> prepare(std::string_view sql) {
    if (auto it = statements_.find(sql); it != statements_.end()) return it->second;
    std::string key(sql);
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
    if (!write_lock_.owns_lock() && !sqlite3_stmt_readonly(stmt)) single_write = write_turn_.take();
    // Parameters are bound without a copy (SQLITE_STATIC): `params` outlives every step
    // below, and the bindings are cleared before this returns.
    struct Unbind {
      sqlite3_stmt* stmt;
      ~Unbind() {
        sqlite3_reset(stmt);
        sqlite3_clear_bindings(stmt);
      }
    } unbind{stmt};
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
        rc = sqlite3_bind_text(stmt, index, p->data(), static_cast<int>(p->size()), SQLITE_STATIC);
      } else if (auto p = std::get_if<Blob>(&v)) {
        rc = sqlite3_bind_blob(stmt, index, p->bytes.data(), static_cast<int>(p->bytes.size()), SQLITE_STATIC);
      }
      if (rc != SQLITE_OK) return Internal(std::string("sqlite bind: ") + sqlite3_errmsg(db_));
    }
    while (true) {
      int rc = sqlite3_step(stmt);
      if (rc == SQLITE_DONE) break;
      if (rc != SQLITE_ROW) {
        std::string message = sqlite3_errmsg(db_);
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
    return Status::Ok();
  }

  sqlite3* db_;
  WriteTurn& write_turn_;
  std::unique_lock<std::mutex> write_lock_;
  bool durable_ = false;
  // Looked up by the caller's string_view, without building a std::string each time.
  struct SqlHash {
    using is_transparent = void;
    size_t operator()(std::string_view sql) const { return std::hash<std::string_view>{}(sql); }
  };
  std::unordered_map<std::string, sqlite3_stmt*, SqlHash, std::equal_to<>> statements_;
};


// Copies the write-ahead log back into the database file, on a thread of its own. SQLite's
// automatic checkpoint runs inside whichever commit crosses its threshold and ends with two
// fsyncs; on the ingest writer those took 70–150 ms now and then, and every Slack ack
// waiting on that commit waited with them. Here the copying and the fsyncs happen beside
// the writer (a PASSIVE checkpoint takes no write lock). Under a long unbroken stream of
// writes a passive checkpoint never catches up with the end of the log, so the log would
// only grow; past restart_pages the checkpointer copies once more, then takes the writers'
// turn and starts the log over: a pause as long as copying what was logged meanwhile and
// two fsyncs, once per 64 MB of log by default (SQLite's own checkpoint paused every 4 MB).
class Checkpointer {
 public:
  Checkpointer(sqlite3* db, WriteTurn& write_turn, SqliteOptions options)
      : db_(db), write_turn_(write_turn), options_(options), thread_([this] { loop(); }) {}
  ~Checkpointer() {
    {
      std::lock_guard lock(mutex_);
      stopping_ = true;
    }
    wake_.notify_one();
    thread_.join();
    sqlite3_close_v2(db_);
  }

  // SQLite's commit hook for WAL databases; `pages` is the log's length after the commit.
  // Asks for a checkpoint each time checkpoint_pages more have been logged, as SQLite's own
  // does. A log that was not started over stays long, and asking on every commit past the
  // threshold would run checkpoints back to back, whose fsyncs then slow the commits that
  // wait for their own (a job's steps).
  static int on_commit(void* self, sqlite3*, const char*, int pages) {
    auto* checkpointer = static_cast<Checkpointer*>(self);
    int previous = checkpointer->log_pages_.exchange(pages, std::memory_order_relaxed);
    if (pages < previous) {  // the log started over
      checkpointer->next_at_.store(checkpointer->options_.checkpoint_pages, std::memory_order_relaxed);
    }
    if (pages >= checkpointer->next_at_.load(std::memory_order_relaxed)) checkpointer->request();
    return SQLITE_OK;
  }

 private:
  void request() {
    if (due_.exchange(true, std::memory_order_acq_rel)) return;  // already asked for
    std::lock_guard lock(mutex_);
    wake_.notify_one();
  }

  void loop() {
    name_this_thread("deputy-wal");
    int restart_at = options_.restart_pages;
    while (true) {
      {
        std::unique_lock lock(mutex_);
        wake_.wait(lock, [&] { return stopping_ || due_.load(std::memory_order_acquire); });
        if (stopping_) return;
      }
      due_.store(false, std::memory_order_release);
      // Commits during this pass count towards the next one, not this one.
      next_at_.store(log_pages_.load(std::memory_order_relaxed) + options_.checkpoint_pages, std::memory_order_relaxed);
      int log_pages = 0;
      int copied = 0;
      int rc = sqlite3_wal_checkpoint_v2(db_, nullptr, SQLITE_CHECKPOINT_PASSIVE, &log_pages, &copied);
      if (rc == SQLITE_OK && log_pages >= restart_at) {
        // Once more without blocking anyone, so that little is left to copy in the pause.
        rc = sqlite3_wal_checkpoint_v2(db_, nullptr, SQLITE_CHECKPOINT_PASSIVE, &log_pages, &copied);
        if (rc == SQLITE_OK) {
          auto writers_wait = write_turn_.take();
          rc = sqlite3_wal_checkpoint_v2(db_, nullptr, SQLITE_CHECKPOINT_RESTART, &log_pages, &copied);
        }
        // A reader that kept its snapshot past the busy timeout makes the restart give up;
        // the next try waits for another quarter of restart_pages rather than pausing the
        // writers at every pass while that reader lasts.
        restart_at = rc == SQLITE_BUSY ? log_pages + options_.restart_pages / 4 : options_.restart_pages;
      }
      if (rc != SQLITE_OK && rc != SQLITE_BUSY) {
        spdlog::warn("sqlite checkpoint: {}", sqlite3_errmsg(db_));
      }
    }
  }

  sqlite3* db_;
  WriteTurn& write_turn_;
  const SqliteOptions options_;
  std::mutex mutex_;
  std::condition_variable wake_;
  bool stopping_ = false;
  std::atomic<bool> due_{false};
  std::atomic<int> log_pages_{0};  // the log's length after the latest commit
  std::atomic<int> next_at_{options_.checkpoint_pages};
  std::thread thread_;
};

// A handle for this process's use from one thread at a time, waiting up to 10 s for a lock
// another process holds.
Result<sqlite3*> open_handle(const std::string& path) {
  sqlite3* db = nullptr;
  if (sqlite3_open_v2(path.c_str(), &db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX, nullptr) !=
      SQLITE_OK) {
    std::string message = db ? sqlite3_errmsg(db) : "out of memory";
    sqlite3_close_v2(db);
    return Unavailable("cannot open SQLite database " + path + ": " + message);
  }
  sqlite3_busy_timeout(db, 10000);
  return db;
}

class SqliteDatabase final : public PooledDatabase {
 public:
  Status init(const std::string& path, size_t pool_size, SqliteOptions options) {
    path_ = path;
    if (path != ":memory:") {
      auto opened = open_handle(path);
      if (!opened) return opened.status();
      sqlite3* db = *opened;
      // Without it this connection would not look for a log to checkpoint.
      if (sqlite3_exec(db, "PRAGMA journal_mode=WAL", nullptr, nullptr, nullptr) != SQLITE_OK) {
        std::string message = sqlite3_errmsg(db);
        sqlite3_close_v2(db);
        return Unavailable("cannot use a write-ahead log for " + path + ": " + message);
      }
      // A restart waits this long for readers on older snapshots (e.g. a metrics scrape
      // counting the inbox) while holding the writers' turn; if they are not done by then it
      // gives up and tries again later.
      sqlite3_busy_timeout(db, 20);
      checkpointer_ = std::make_unique<Checkpointer>(db, write_turn_, options);
    }
    return fill(pool_size);
  }
  ~SqliteDatabase() override {
    // The checkpointer goes first; the pool's connections close after it, and the last to
    // close checkpoints whatever is left.
    checkpointer_.reset();
  }
  Dialect dialect() const override { return Dialect::kSqlite; }

 protected:
  Result<std::unique_ptr<Connection>> connect() override {
    auto opened = open_handle(path_);
    if (!opened) return opened.status();
    sqlite3* db = *opened;
    auto connection = std::make_unique<SqliteConnection>(db, write_turn_);
    for (const char* pragma : {"PRAGMA journal_mode=WAL", "PRAGMA synchronous=NORMAL", "PRAGMA foreign_keys=ON",
                               "PRAGMA temp_store=MEMORY", "PRAGMA cache_size=-16384"}) {
      if (Status s = connection->exec_plain(pragma); !s.ok()) return s;
    }
    // Replaces SQLite's automatic checkpoint on this connection with the checkpointer's.
    if (checkpointer_) sqlite3_wal_hook(db, &Checkpointer::on_commit, checkpointer_.get());
    return std::unique_ptr<Connection>(std::move(connection));
  }

 private:
  std::string path_;
  WriteTurn write_turn_;
  std::unique_ptr<Checkpointer> checkpointer_;
};

}  // namespace

Result<std::unique_ptr<Database>> open_sqlite(const std::string& path, size_t pool_size, SqliteOptions options) {
  static std::once_flag configured;
  std::call_once(configured, [] {
    // SQLite counts every allocation under one process-wide mutex unless told not to; nothing
    // here reads those counts, and every thread that touches the database paid for them.
    sqlite3_config(SQLITE_CONFIG_MEMSTATUS, 0);
  });
  auto database = std::make_unique<SqliteDatabase>();
  if (Status s = database->init(path, pool_size, options); !s.ok()) return s;
  return std::unique_ptr<Database>(std::move(database));
}

}  // namespace deputy::store
