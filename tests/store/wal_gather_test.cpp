// The WAL-gathering VFS: a commit's frames reach the wrapped VFS in one write, other
// connections see every commit as soon as it returns, a transaction that spills pages and
// rewrites them in place commits intact (also after the log is recovered from the file by a
// new process), a process that exits right after its commits loses none of them, and a failed
// write fails the commit and leaves the previous state.
//
// The gathering VFS is tested over the tests' fault-injecting VFS (failing_vfs.hpp), which
// counts the writes that reach WAL files and can make the next one fail.
#include <doctest/doctest.h>

#include <sqlite3.h>
#include <sys/wait.h>
#include <unistd.h>

#include <filesystem>
#include <random>
#include <string>

#include <fmt/format.h>

#include "store/sqlite_connection.hpp"
#include "store/wal_gather_vfs.hpp"
#include "failing_vfs.hpp"
#include "random_rows.hpp"
#include "temp_dir.hpp"

using namespace clusterpin;
using namespace clusterpin::store;
using clusterpin::store::testing::fail_next_wal_write;
using clusterpin::store::testing::insert_random_rows;
using clusterpin::store::testing::register_failing_sync_vfs;
using clusterpin::store::testing::wal_writes;
using clusterpin::store::testing::TempDir;

namespace {

const char* counting_vfs() { return register_failing_sync_vfs(); }

const char* gather_vfs() {
  const char* inner = counting_vfs();
  REQUIRE(register_wal_gather_vfs("gather-test", inner));
  return "gather-test";
}

// ---- helpers ---------------------------------------------------------------------------------

Connection open_db(const TempDir& dir, const char* vfs) {
  auto db = Connection::open((dir.path() / "g.db").string(), OpenMode::ReadWrite, vfs);
  REQUIRE(db.ok());
  REQUIRE(db->query_text("PRAGMA journal_mode=WAL").value() == "wal");
  REQUIRE(db->exec("PRAGMA synchronous=NORMAL").ok());
  REQUIRE(db->exec("PRAGMA wal_autocheckpoint=0").ok());  // frames stay in the log
  REQUIRE(db->exec("CREATE TABLE IF NOT EXISTS t(k BLOB PRIMARY KEY, v BLOB NOT NULL) "
                   "WITHOUT ROWID")
              .ok());
  return std::move(*db);
}

std::string count(Connection& db) { return db.query_text("SELECT count(*) FROM t").value(); }

// Frames in the log so far (autocheckpoint is off, so it only grows).
std::uintmax_t wal_frames(const TempDir& dir) {
  std::uintmax_t bytes = std::filesystem::file_size(dir.path() / "g.db-wal");
  return bytes < 32 ? 0 : (bytes - 32) / (4096 + 24);
}

}  // namespace

TEST_CASE("a commit's WAL frames reach the file in one write, not two per frame") {
  TempDir direct_dir, gathered_dir;
  Connection direct = open_db(direct_dir, counting_vfs());
  Connection gathered = open_db(gathered_dir, gather_vfs());
  std::mt19937_64 rng_a(11), rng_b(11);
  // A first commit creates the tables' pages; the one measured then touches many pages.
  REQUIRE(insert_random_rows(direct, rng_a, 400).ok());
  REQUIRE(insert_random_rows(gathered, rng_b, 400).ok());
  auto frames_before = wal_frames(direct_dir);

  int writes_before = wal_writes();
  REQUIRE(insert_random_rows(direct, rng_a, 400).ok());
  int direct_writes = wal_writes() - writes_before;
  auto frames = static_cast<int>(wal_frames(direct_dir) - frames_before);
  writes_before = wal_writes();
  REQUIRE(insert_random_rows(gathered, rng_b, 400).ok());
  int gathered_writes = wal_writes() - writes_before;

  CHECK(frames >= 10);
  CHECK(direct_writes == 2 * frames);  // SQLite's own way: header, then page
  // As few writes as whole frames (4,120 bytes each) fill, at most kWalGatherBytes each.
  int per_write = kWalGatherBytes / 4120;
  CHECK(gathered_writes == (frames + per_write - 1) / per_write);
  CHECK(count(gathered) == "800");
  CHECK(gathered.query_text("PRAGMA integrity_check").value() == "ok");
}

TEST_CASE("another connection sees every commit as soon as it returned") {
  TempDir dir;
  Connection writer = open_db(dir, gather_vfs());
  auto reader = Connection::open((dir.path() / "g.db").string(), OpenMode::ReadOnly, "unix");
  REQUIRE(reader.ok());
  std::mt19937_64 rng(5);
  for (int i = 1; i <= 300; ++i) {
    REQUIRE(insert_random_rows(writer, rng, 1 + i % 7).ok());
    std::string expected = writer.query_text("SELECT count(*) FROM t").value();
    REQUIRE(count(*reader) == expected);
  }
}

TEST_CASE("two writers taking turns on one log: each commit is seen by the other at once") {
  // Each handle appends where the other stopped: its first frame is not where its own writes
  // ended, and its commit must still reach the file before the commit returns.
  TempDir dir;
  Connection a = open_db(dir, gather_vfs());
  Connection b = open_db(dir, gather_vfs());
  std::mt19937_64 rng(13);
  for (int i = 1; i <= 100; ++i) {
    Connection& writer = i % 2 == 0 ? a : b;
    Connection& other = i % 2 == 0 ? b : a;
    REQUIRE(insert_random_rows(writer, rng, 1 + i % 5).ok());
    REQUIRE(count(other) == count(writer));
  }
  CHECK(a.query_text("PRAGMA integrity_check").value() == "ok");
}

TEST_CASE("a transaction larger than the buffer, spilling and rewriting its pages, commits intact") {
  // A small page cache makes SQLite write frames before the commit, then overwrite some of them
  // in place (a page changed again after it was spilled, often while its first frame still
  // waits in the buffer) and rewrite their checksums: writes that must not be gathered.
  for (int cache_pages : {20, 60, 200}) {
    CAPTURE(cache_pages);
    TempDir dir;
    {
      Connection db = open_db(dir, gather_vfs());
      REQUIRE(db.exec(fmt::format("PRAGMA cache_size={}", cache_pages)).ok());
      std::mt19937_64 rng(9);
      REQUIRE(db.exec("BEGIN").ok());
      auto put = db.prepare("INSERT OR REPLACE INTO t(k, v) VALUES(?1, ?2)");
      REQUIRE(put.ok());
      for (int i = 0; i < 20000; ++i) {
        // Keys 0..9999 twice: the second round rewrites pages that were spilled already.
        std::string key = "key-" + std::to_string((i * 7919) % 10000);
        std::string value(100 + static_cast<int>(rng() % 200), static_cast<char>('a' + i / 10000));
        put->bind_blob(1, key);
        put->bind_blob(2, value);
        REQUIRE(put->run().ok());
      }
      REQUIRE(db.exec("COMMIT").ok());
      CHECK(count(db) == "10000");
      CHECK(db.query_text("SELECT count(*) FROM t WHERE substr(v, 1, 1) = x'62'").value() ==
            "10000");
      CHECK(wal_frames(dir) * 4120 > 10 * kWalGatherBytes);  // many buffers' worth
    }
    // Closing the last connection checkpointed the log; the rows are in the database file.
    Connection db = open_db(dir, "unix");
    CHECK(count(db) == "10000");
    CHECK(db.query_text("SELECT count(*) FROM t WHERE substr(v, 1, 1) = x'62'").value() ==
          "10000");
    CHECK(db.query_text("PRAGMA integrity_check").value() == "ok");
  }
}

TEST_CASE("a process that exits right after its commits loses none of them") {
  TempDir dir;
  const char* vfs = gather_vfs();
  pid_t child = fork();
  REQUIRE(child >= 0);
  if (child == 0) {
    // No destructors, no close: the log is left as a killed process leaves it, and its frames
    // (spilled, rewritten, gathered) must be valid for the recovery the next opener runs.
    auto db = Connection::open((dir.path() / "g.db").string(), OpenMode::ReadWrite, vfs);
    bool ok = db.ok() && db->query_text("PRAGMA journal_mode=WAL").ok() &&
              db->exec("PRAGMA synchronous=NORMAL").ok() &&
              db->exec("PRAGMA wal_autocheckpoint=0").ok() && db->exec("PRAGMA cache_size=20").ok() &&
              db->exec("CREATE TABLE t(k BLOB PRIMARY KEY, v BLOB NOT NULL) WITHOUT ROWID").ok();
    std::mt19937_64 rng(3);
    for (int i = 0; ok && i < 50; ++i) ok = insert_random_rows(*db, rng, 200).ok();
    _exit(ok ? 0 : 1);
  }
  int status = 0;
  REQUIRE(waitpid(child, &status, 0) == child);
  REQUIRE(WIFEXITED(status));
  REQUIRE(WEXITSTATUS(status) == 0);
  Connection db = open_db(dir, "unix");
  CHECK(count(db) == "10000");
  CHECK(db.query_text("PRAGMA integrity_check").value() == "ok");
}

TEST_CASE("a failed WAL write fails the commit and keeps the state before it") {
  TempDir dir;
  Connection db = open_db(dir, gather_vfs());
  std::mt19937_64 rng(21);
  REQUIRE(insert_random_rows(db, rng, 300).ok());
  fail_next_wal_write(true);
  Status failed = insert_random_rows(db, rng, 300);
  CHECK_FALSE(failed.ok());
  fail_next_wal_write(false);
  CHECK(count(db) == "300");
  REQUIRE(insert_random_rows(db, rng, 300).ok());
  CHECK(count(db) == "600");
  auto other = Connection::open((dir.path() / "g.db").string(), OpenMode::ReadOnly, "unix");
  REQUIRE(other.ok());
  CHECK(count(*other) == "600");
  CHECK(db.query_text("PRAGMA integrity_check").value() == "ok");
}
