#include "store/sqlite_database.h"

#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <functional>

#include "testing/databases.h"
#include "testing/temp_dir.h"

namespace deputy::store {
namespace {

// The WAL header's checkpoint sequence number (big-endian, bytes 12–15), which SQLite
// increments each time the log starts over (https://www.sqlite.org/fileformat.html#wal_file_format).
uint32_t wal_restarts(const std::string& database_path) {
  std::ifstream wal(database_path + "-wal", std::ios::binary);
  unsigned char header[16] = {};
  wal.read(reinterpret_cast<char*>(header), sizeof header);
  return (uint32_t{header[12]} << 24) | (uint32_t{header[13]} << 16) | (uint32_t{header[14]} << 8) | header[15];
}

// A page or more per commit, in an unbroken stream from one writer, as the ingest writer
// does under load: the checkpointer's passive copies never catch up with the end of the
// log on their own, so it has to start the log over between two commits. Stops early once
// `enough` says so; returns the number of commits.
int write_pages(Database& database, int most, const std::function<bool()>& enough = [] { return false; }) {
  auto lease = database.acquire();
  EXPECT_TRUE(lease);
  if (!lease) return 0;
  Connection& db = **lease;
  EXPECT_TRUE(db.execute("CREATE TABLE IF NOT EXISTS scratch (b BLOB)"));
  const std::string page(3900, 'x');
  int commits = 0;
  while (commits < most && !(commits % 100 == 0 && enough())) {
    Status s = with_write_transaction(db, [&](Connection& tx) -> Status {
      auto r = tx.execute("INSERT INTO scratch (b) VALUES (?)", {Blob{page}});
      return r ? Status::Ok() : r.status();
    });
    EXPECT_TRUE(s.ok()) << s.message();
    if (!s.ok()) break;
    ++commits;
  }
  auto rows = db.query("SELECT count(*) FROM scratch");
  EXPECT_TRUE(rows && rows->front().integer(0) == commits);
  return commits;
}

TEST(SqliteDatabase, TheWalIsCheckpointedAndDoesNotGrowWithoutBound) {
  testing::TempDir dir;
  const std::string path = dir.file("deputy.db");
  auto opened = open_sqlite(path, 2, SqliteOptions{.checkpoint_pages = 100, .restart_pages = 500});
  ASSERT_TRUE(opened) << opened.status().message();
  // Up to 40,000 commits (a log of over 150 MB if nothing started it over), until it has
  // started over twice: on a loaded machine the checkpointer may take a while to get a turn.
  int commits = write_pages(**opened, 40000, [&] { return wal_restarts(path) >= 2; });
  EXPECT_GE(wal_restarts(path), 2u) << "the WAL was not started over in " << commits << " commits";
  auto database_pages = std::filesystem::file_size(path) / 4096;
  // Without checkpoints the file keeps its first few pages (see the next test).
  EXPECT_GT(database_pages, 100u) << "the rows were not copied into the database file";
}

TEST(SqliteDatabase, CommitsLeaveCheckpointsToTheCheckpointer) {
  testing::TempDir dir;
  const std::string path = dir.file("deputy.db");
  // A threshold no test reaches: had a commit checkpointed as SQLite does by default (every
  // 1,000 pages), the database file would hold the rows and the log would have started over.
  auto opened = open_sqlite(path, 2, SqliteOptions{.checkpoint_pages = 1'000'000, .restart_pages = 1'000'000});
  ASSERT_TRUE(opened) << opened.status().message();
  EXPECT_EQ(write_pages(**opened, 1500), 1500);
  EXPECT_EQ(wal_restarts(path), 0u);
  EXPECT_GT(std::filesystem::file_size(path + "-wal") / 4096, 1500u);
  EXPECT_LT(std::filesystem::file_size(path) / 4096, 100u);
}

TEST(SqliteDatabase, APingWhileEveryConnectionIsBusyAnswersWithinItsWait) {
  testing::TestDatabase test_db{"sqlite", 2};
  DEPUTY_REQUIRE_DATABASE(test_db);
  auto first = test_db.database->acquire();
  auto second = test_db.database->acquire();
  ASSERT_TRUE(first && second);
  const auto started = std::chrono::steady_clock::now();
  Status busy = test_db.database->ping(std::chrono::milliseconds(50));
  EXPECT_EQ(busy.code(), ErrorCode::kUnavailable) << busy.message();
  EXPECT_LT(std::chrono::steady_clock::now() - started, std::chrono::seconds(5)) << "did not wait for a connection without limit";
  { auto freed = std::move(first); }
  EXPECT_TRUE(test_db.database->ping(std::chrono::milliseconds(50)).ok());
}

}  // namespace
}  // namespace deputy::store
