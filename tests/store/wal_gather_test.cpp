// The WAL-gathering VFS: a commit's frames reach the wrapped VFS in one write, other
// connections see every commit as soon as it returns, a transaction that spills pages and
// rewrites them in place commits intact (also after the log is recovered from the file by a
// new process), a process that exits right after its commits loses none of them, and a failed
// write fails the commit and leaves the previous state.
//
// The gathering VFS is tested over a counting VFS (below) that wraps SQLite's "unix" VFS,
// counts the writes that reach WAL files and can make the next one fail.
#include <doctest/doctest.h>

#include <sqlite3.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstring>
#include <filesystem>
#include <random>
#include <string>

#include <fmt/format.h>

#include "store/sqlite_connection.hpp"
#include "store/wal_gather_vfs.hpp"
#include "random_rows.hpp"
#include "temp_dir.hpp"

using namespace clusterpin;
using namespace clusterpin::store;
using clusterpin::store::testing::insert_random_rows;
using clusterpin::store::testing::TempDir;

namespace {

// ---- a counting VFS over "unix" --------------------------------------------------------------

struct CountingFile {
  sqlite3_file base;
  sqlite3_file* inner;
  bool wal;
};

int g_wal_writes = 0;         // writes that reached a WAL file
bool g_fail_next_write = false;

sqlite3_vfs* unix_vfs() { return sqlite3_vfs_find("unix"); }
CountingFile* of(sqlite3_file* f) { return reinterpret_cast<CountingFile*>(f); }
const sqlite3_io_methods* im(sqlite3_file* f) { return of(f)->inner->pMethods; }

int c_close(sqlite3_file* f) { return im(f)->xClose(of(f)->inner); }
int c_read(sqlite3_file* f, void* b, int n, sqlite3_int64 o) { return im(f)->xRead(of(f)->inner, b, n, o); }
int c_write(sqlite3_file* f, const void* b, int n, sqlite3_int64 o) {
  if (of(f)->wal) {
    if (g_fail_next_write) {
      g_fail_next_write = false;
      return SQLITE_IOERR_WRITE;
    }
    ++g_wal_writes;
  }
  return im(f)->xWrite(of(f)->inner, b, n, o);
}
int c_truncate(sqlite3_file* f, sqlite3_int64 s) { return im(f)->xTruncate(of(f)->inner, s); }
int c_sync(sqlite3_file* f, int fl) { return im(f)->xSync(of(f)->inner, fl); }
int c_size(sqlite3_file* f, sqlite3_int64* s) { return im(f)->xFileSize(of(f)->inner, s); }
int c_lock(sqlite3_file* f, int l) { return im(f)->xLock(of(f)->inner, l); }
int c_unlock(sqlite3_file* f, int l) { return im(f)->xUnlock(of(f)->inner, l); }
int c_reserved(sqlite3_file* f, int* o) { return im(f)->xCheckReservedLock(of(f)->inner, o); }
int c_fcntl(sqlite3_file* f, int op, void* a) { return im(f)->xFileControl(of(f)->inner, op, a); }
int c_sector(sqlite3_file* f) { return im(f)->xSectorSize(of(f)->inner); }
int c_device(sqlite3_file* f) { return im(f)->xDeviceCharacteristics(of(f)->inner); }
int c_shm_map(sqlite3_file* f, int r, int s, int e, void volatile** o) {
  return im(f)->xShmMap(of(f)->inner, r, s, e, o);
}
int c_shm_lock(sqlite3_file* f, int o, int n, int fl) { return im(f)->xShmLock(of(f)->inner, o, n, fl); }
void c_shm_barrier(sqlite3_file* f) { im(f)->xShmBarrier(of(f)->inner); }
int c_shm_unmap(sqlite3_file* f, int d) { return im(f)->xShmUnmap(of(f)->inner, d); }

const sqlite3_io_methods kCountingMethods = {
    2,       c_close,  c_read,   c_write,    c_truncate,   c_sync,        c_size,
    c_lock,  c_unlock, c_reserved, c_fcntl,  c_sector,     c_device,      c_shm_map,
    c_shm_lock, c_shm_barrier, c_shm_unmap, nullptr, nullptr,
};

int c_open(sqlite3_vfs*, sqlite3_filename name, sqlite3_file* f, int flags, int* out) {
  CountingFile* c = of(f);
  std::memset(c, 0, sizeof(*c));
  c->inner = reinterpret_cast<sqlite3_file*>(c + 1);
  c->wal = (flags & SQLITE_OPEN_WAL) != 0;
  int rc = unix_vfs()->xOpen(unix_vfs(), name, c->inner, flags, out);
  c->base.pMethods = c->inner->pMethods != nullptr ? &kCountingMethods : nullptr;
  return rc;
}

const char* counting_vfs() {
  static sqlite3_vfs vfs = [] {
    sqlite3_vfs v = *unix_vfs();
    v.iVersion = 1;  // the system-call hooks stay with "unix"
    v.zName = "counting-test";
    v.szOsFile = static_cast<int>(sizeof(CountingFile)) + unix_vfs()->szOsFile;
    v.pNext = nullptr;
    v.xOpen = c_open;
    return v;
  }();
  static const bool registered = sqlite3_vfs_register(&vfs, 0) == SQLITE_OK;
  REQUIRE(registered);
  return vfs.zName;
}

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

  g_wal_writes = 0;
  REQUIRE(insert_random_rows(direct, rng_a, 400).ok());
  int direct_writes = g_wal_writes;
  auto frames = static_cast<int>(wal_frames(direct_dir) - frames_before);
  g_wal_writes = 0;
  REQUIRE(insert_random_rows(gathered, rng_b, 400).ok());
  int gathered_writes = g_wal_writes;

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
  g_fail_next_write = true;
  Status failed = insert_random_rows(db, rng, 300);
  CHECK_FALSE(failed.ok());
  g_fail_next_write = false;
  CHECK(count(db) == "300");
  REQUIRE(insert_random_rows(db, rng, 300).ok());
  CHECK(count(db) == "600");
  auto other = Connection::open((dir.path() / "g.db").string(), OpenMode::ReadOnly, "unix");
  REQUIRE(other.ok());
  CHECK(count(*other) == "600");
  CHECK(db.query_text("PRAGMA integrity_check").value() == "ok");
}
