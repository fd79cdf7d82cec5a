#include "store/sqlite_database.h"

#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>

#include "testing/databases.h"
#include "testing/temp_dir.h"

namespace deputy::store {
namespace {

// One page per commit, in an unbroken stream from one writer, as the ingest writer does
// under load: the checkpointer's passive copies never catch up with the end of the log on
// their own, so it has to start the log over between two commits.
void write_pages(Database& database, int commits) {
  auto lease = database.acquire();
  ASSERT_TRUE(lease);
  Connection& db = **lease;
  ASSERT_TRUE(db.execute("CREATE TABLE IF NOT EXISTS scratch (b BLOB)"));
  const std::string page(3900, 'x');
  for (int i = 0; i < commits; ++i) {
    ASSERT_TRUE(with_write_transaction(db, [&](Connection& tx) -> Status {
      auto r = tx.execute("INSERT INTO scratch (b) VALUES (?)", {Blob{page}});
      return r ? Status::Ok() : r.status();
    }).ok());
  }
  auto rows = db.query("SELECT count(*) FROM scratch");
  ASSERT_TRUE(rows);
  EXPECT_EQ(rows->front().integer(0), commits);
}

// The WAL header's checkpoint sequence number (big-endian, bytes 12–15), which SQLite
// increments each time the log starts over (https://www.sqlite.org/fileformat.html#wal_file_format).
uint32_t wal_restarts(const std::string& database_path) {
  std::ifstream wal(database_path + "-wal", std::ios::binary);
  unsigned char header[16] = {};
  wal.read(reinterpret_cast<char*>(header), sizeof header);
  return (uint32_t{header[12]} << 24) | (uint32_t{header[13]} << 16) | (uint32_t{header[14]} << 8) | header[15];
}

TEST(SqliteDatabase, TheWalIsCheckpointedAndDoesNotGrowWithoutBound) {
  testing::TempDir dir;
  const std::string path = dir.file("deputy.db");
  auto opened = open_sqlite(path, 2, SqliteOptions{.checkpoint_pages = 100, .restart_pages = 500});
  ASSERT_TRUE(opened) << opened.status().message();
  // 4,000 commits of a page or more: a log of over 4,000 pages if nothing started it over.
  write_pages(**opened, 4000);
  EXPECT_GE(wal_restarts(path), 2u) << "the WAL was not started over";
  auto database_pages = std::filesystem::file_size(path) / 4096;
  EXPECT_GT(database_pages, 500u) << "the rows were not copied into the database file";
}

TEST(SqliteDatabase, CommitsLeaveCheckpointsToTheCheckpointer) {
  testing::TempDir dir;
  const std::string path = dir.file("deputy.db");
  // A threshold no test reaches: had a commit checkpointed as SQLite does by default (every
  // 1,000 pages), the database file would hold the rows and the log would have started over.
  auto opened = open_sqlite(path, 2, SqliteOptions{.checkpoint_pages = 1'000'000, .restart_pages = 1'000'000});
  ASSERT_TRUE(opened) << opened.status().message();
  write_pages(**opened, 1500);
  EXPECT_EQ(wal_restarts(path), 0u);
  EXPECT_GT(std::filesystem::file_size(path + "-wal") / 4096, 1500u);
  EXPECT_LT(std::filesystem::file_size(path) / 4096, 100u);
}

}  // namespace
}  // namespace deputy::store
