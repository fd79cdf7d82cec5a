// Opens each storage backend for tests: SQLite in a temp folder, and PostgreSQL when
// DEPUTY_TEST_POSTGRES_URL names a server (scripts/test starts one), in a fresh schema.
#pragma once

#include <cstdlib>
#include <memory>
#include <random>
#include <string>

#include "store/database.h"
#include "testing/temp_dir.h"

namespace deputy::testing {

class TestDatabase {
 public:
  // backend: "sqlite" or "postgres". ok() is false when the backend is not available.
  explicit TestDatabase(const std::string& backend, size_t pool_size = 4) {
    if (backend == "sqlite") {
      url_ = "sqlite:" + dir_.file("deputy.db");
    } else {
      const char* base = std::getenv("DEPUTY_TEST_POSTGRES_URL");
      if (!base || !*base) return;
      std::random_device rd;
      schema_ = "t" + std::to_string(rd()) + std::to_string(rd());
      auto admin = store::open_unmigrated(base);
      if (!admin) return;
      auto lease = (*admin)->acquire();
      if (!(*lease)->execute("CREATE SCHEMA " + schema_)) return;
      admin_ = std::move(admin).value();
      std::string separator = std::string(base).find('?') == std::string::npos ? "?" : "&";
      url_ = std::string(base) + separator + "options=-csearch_path%3D" + schema_;
    }
    auto opened = store::open(url_, pool_size);
    if (opened) database = std::move(opened).value();
    else error_ = opened.status().message();
  }
  ~TestDatabase() {
    database.reset();
    if (admin_ && !schema_.empty()) {
      auto lease = admin_->acquire();
      (void)(*lease)->execute("DROP SCHEMA " + schema_ + " CASCADE");
    }
  }
  bool ok() const { return database != nullptr; }
  const std::string& url() const { return url_; }
  const std::string& error() const { return error_; }
  std::unique_ptr<store::Database> reopen(size_t pool_size = 2) const { return std::move(store::open(url_, pool_size)).value(); }

  std::unique_ptr<store::Database> database;

 private:
  TempDir dir_;
  std::string url_;
  std::string schema_;
  std::string error_;
  std::unique_ptr<store::Database> admin_;
};

#define DEPUTY_REQUIRE_DATABASE(db)                                                          \
  do {                                                                                       \
    if (!(db).ok()) {                                                                        \
      if ((db).url().empty()) GTEST_SKIP() << "DEPUTY_TEST_POSTGRES_URL not set";            \
      FAIL() << "cannot open " << (db).url() << ": " << (db).error();                        \
    }                                                                                        \
  } while (0)

}  // namespace deputy::testing
