// Tests for WalCheckpointer: checkpoints happen on its own thread once the WAL passes the
// threshold, the writer keeps committing meanwhile, and nothing is lost by it.
#include "store/wal_checkpointer.hpp"

#include <doctest/doctest.h>

#include <chrono>
#include <filesystem>
#include <thread>

#include "temp_dir.hpp"

using namespace clusterpin;
using store::Connection;
using store::testing::TempDir;

TEST_CASE(
    "the WAL is checkpointed in the background once it passes the threshold, and no row is lost") {
  TempDir dir;
  const std::string path = (dir.path() / "c.db").string();
  auto db = Connection::open(path, store::OpenMode::ReadWrite);
  REQUIRE(db.ok());
  REQUIRE(db->query_text("PRAGMA journal_mode=WAL").ok());
  REQUIRE(db->exec("CREATE TABLE t(k INTEGER PRIMARY KEY, v BLOB)").ok());
  auto checkpointer = store::WalCheckpointer::start(*db, path, "", 8);
  REQUIRE(checkpointer.ok());
  CHECK((*checkpointer)->checkpoints() == 0);
  auto insert = db->prepare("INSERT INTO t(v) VALUES(zeroblob(3000))");
  REQUIRE(insert.ok());
  for (int i = 0; i < 200; ++i) REQUIRE(insert->run().ok());  // ~200 frames: well past 8
  const auto give_up = std::chrono::steady_clock::now() + std::chrono::seconds(30);
  while ((*checkpointer)->checkpoints() == 0 && std::chrono::steady_clock::now() < give_up)
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  CHECK((*checkpointer)->checkpoints() > 0);
  checkpointer->reset();
  CHECK(*db->query_text("SELECT count(*) FROM t") == "200");
}

TEST_CASE("no checkpoint runs while the WAL stays below the threshold") {
  TempDir dir;
  const std::string path = (dir.path() / "c.db").string();
  auto db = Connection::open(path, store::OpenMode::ReadWrite);
  REQUIRE(db.ok());
  REQUIRE(db->query_text("PRAGMA journal_mode=WAL").ok());
  auto checkpointer = store::WalCheckpointer::start(*db, path, "", 1000);
  REQUIRE(checkpointer.ok());
  REQUIRE(db->exec("CREATE TABLE t(k INTEGER PRIMARY KEY)").ok());
  REQUIRE(db->exec("INSERT INTO t VALUES(1)").ok());
  std::this_thread::sleep_for(std::chrono::milliseconds(50));
  CHECK((*checkpointer)->checkpoints() == 0);
}

TEST_CASE("a writer committing back to back cannot grow the WAL without bound") {
  TempDir dir;
  const std::string path = (dir.path() / "c.db").string();
  auto db = Connection::open(path, store::OpenMode::ReadWrite);
  REQUIRE(db.ok());
  REQUIRE(db->query_text("PRAGMA journal_mode=WAL").ok());
  REQUIRE(db->exec("PRAGMA synchronous=OFF").ok());
  REQUIRE(db->exec("CREATE TABLE t(k INTEGER PRIMARY KEY, v BLOB)").ok());
  auto checkpointer = store::WalCheckpointer::start(*db, path, "", 16);
  REQUIRE(checkpointer.ok());
  auto insert = db->prepare("INSERT INTO t(v) VALUES(zeroblob(3000))");
  REQUIRE(insert.ok());
  // 20,000 one-page commits: 80 MB of frames if the WAL were never rewound.
  for (int i = 0; i < 20000; ++i) REQUIRE(insert->run().ok());
  const auto wal = std::filesystem::file_size(path + "-wal");
  CHECK(wal < 16u * 1024 * 1024);
  checkpointer->reset();
  CHECK(*db->query_text("SELECT count(*) FROM t") == "20000");
}
