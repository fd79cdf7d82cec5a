#include "store/sqlite_database.h"

#include <gtest/gtest.h>

#include <filesystem>

#include "testing/databases.h"

namespace deputy::store {
namespace {

TEST(SqliteDatabase, TheWalIsCheckpointedAndDoesNotGrowWithoutBound) {
  testing::TestDatabase test_db("sqlite");
  DEPUTY_REQUIRE_DATABASE(test_db);
  const std::string wal = test_db.url().substr(std::string("sqlite:").size()) + "-wal";
  auto lease = test_db.database->acquire();
  ASSERT_TRUE(lease);
  Connection& db = **lease;
  ASSERT_TRUE(db.execute("CREATE TABLE scratch (b BLOB)"));
  // A few pages per commit: 4,000 commits would leave a WAL of some 50 MB if nothing
  // copied it back into the database file (SQLite's automatic checkpoint, every 1,000 pages).
  const std::string page(3900, 'x');
  for (int i = 0; i < 4000; ++i) {
    ASSERT_TRUE(with_write_transaction(db, [&](Connection& tx) -> Status {
      auto r = tx.execute("INSERT INTO scratch (b) VALUES (?)", {Blob{page}});
      return r ? Status::Ok() : r.status();
    }).ok());
  }
  auto wal_bytes = std::filesystem::file_size(wal);
  EXPECT_LT(wal_bytes, 2500u * 4096u) << "the WAL kept every frame: no checkpoint ran";
  auto rows = db.query("SELECT count(*) FROM scratch");
  ASSERT_TRUE(rows);
  EXPECT_EQ(rows->front().integer(0), 4000);
}

}  // namespace
}  // namespace deputy::store
