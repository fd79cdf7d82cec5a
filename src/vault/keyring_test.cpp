#include "vault/keyring.h"

#include <sys/stat.h>

#include <gtest/gtest.h>

#include <fstream>

#include "testing/temp_dir.h"

namespace deputy::vault {
namespace {

TEST(Keyring, CreatesAPrivateFileOnFirstStart) {
  testing::TempDir dir;
  auto first = load_or_create(dir.file("deputy.keys"), 1700000000);
  ASSERT_TRUE(first) << first.status().message();
  EXPECT_TRUE(first->created);
  struct stat info {};
  ASSERT_EQ(stat(dir.file("deputy.keys").c_str(), &info), 0);
  EXPECT_EQ(info.st_mode & 0777, 0600);
  auto second = load_or_create(dir.file("deputy.keys"), 1700000001);
  ASSERT_TRUE(second);
  EXPECT_FALSE(second->created);
  EXPECT_EQ(second->keyring.active().material, first->keyring.active().material);
}

TEST(Keyring, AFileThatIsWrongStopsTheStart) {
  testing::TempDir dir;
  for (const char* text : {"", "not json", R"({"version":1,"active":"a","keys":[]})",
                           R"({"version":1,"active":"a","keys":[{"id":"a","key":"c2hvcnQ="}]})",
                           R"({"version":1,"active":"b","keys":[{"id":"a","key":"QUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUE="}]})",
                           R"({"version":2,"active":"a","keys":[{"id":"a","key":"QUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUE="}]})"}) {
    std::ofstream(dir.file("deputy.keys")) << text;
    EXPECT_FALSE(load_or_create(dir.file("deputy.keys"), 1)) << text;
  }
}

TEST(Keyring, AnUnreadableFileStopsTheStart) {
  testing::TempDir dir;
  std::filesystem::create_directory(dir.file("deputy.keys"));  // exists, cannot be read as a file
  EXPECT_FALSE(load_or_create(dir.file("deputy.keys"), 1));
}

TEST(Keyring, RotationKeepsOldKeysAndActivatesTheNewOne) {
  Keyring ring = Keyring::generate(1);
  std::string old_id = ring.active().id;
  std::string new_id = ring.rotate(2);
  EXPECT_NE(old_id, new_id);
  EXPECT_EQ(ring.active().id, new_id);
  ASSERT_NE(ring.find(old_id), nullptr);
  auto reparsed = Keyring::parse(ring.serialize(), "test");
  ASSERT_TRUE(reparsed);
  EXPECT_EQ(reparsed->keys().size(), 2u);
  EXPECT_EQ(reparsed->active().id, new_id);
}

}  // namespace
}  // namespace deputy::vault
