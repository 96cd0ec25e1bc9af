// The page-cache wrapper: installed by the first Connection::open, it answers the commit-time
// truncations that pcache1 would have made into a full scan, passes on the ones that must drop
// pages (a rolled-back transaction that grew the database), and SQLite's data stays intact
// either way (integrity_check, row counts, reads after the rollback).
#include <doctest/doctest.h>

#include <random>
#include <string>

#include "store/page_cache.hpp"
#include "store/sqlite_connection.hpp"
#include "random_rows.hpp"
#include "temp_dir.hpp"

using namespace clusterpin;
using namespace clusterpin::store;
using clusterpin::store::testing::insert_random_rows;
using clusterpin::store::testing::TempDir;

namespace {

Connection open_db(const TempDir& dir) {
  auto db = Connection::open((dir.path() / "cache.db").string(), OpenMode::ReadWrite);
  REQUIRE(db.ok());
  REQUIRE(db->query_text("PRAGMA journal_mode=WAL").value() == "wal");
  REQUIRE(db->exec("PRAGMA cache_size=-65536").ok());
  REQUIRE(db->exec("CREATE TABLE IF NOT EXISTS t(k BLOB PRIMARY KEY, v BLOB NOT NULL) "
                   "WITHOUT ROWID")
              .ok());
  return std::move(*db);
}

void insert_random(Connection& db, std::mt19937_64& rng, int rows, bool commit) {
  REQUIRE(insert_random_rows(db, rng, rows, commit, 120).ok());
}

std::string count(Connection& db) { return db.query_text("SELECT count(*) FROM t").value(); }

}  // namespace

TEST_CASE("commits after b-tree splits skip pcache1's scan and the data stays intact") {
  TempDir dir;
  Connection db = open_db(dir);
  std::mt19937_64 rng(7);
  PageCacheStats before = page_cache_stats();
  for (int i = 0; i < 200; ++i) insert_random(db, rng, 50, true);
  PageCacheStats after = page_cache_stats();
  // Every commit truncates at the end of the database; splits moved pages through a key past
  // it, which the wrapper knows are gone again.
  CHECK(after.skipped - before.skipped >= 190);
  CHECK(count(db) == "10000");
  CHECK(db.query_text("PRAGMA integrity_check").value() == "ok");
}

TEST_CASE("a rolled-back transaction that grew the database drops its pages") {
  TempDir dir;
  Connection db = open_db(dir);
  std::mt19937_64 rng(11);
  insert_random(db, rng, 2000, true);
  std::string pages = db.query_text("PRAGMA page_count").value();
  PageCacheStats before = page_cache_stats();
  insert_random(db, rng, 5000, false);  // grows the file's pages in the cache, then undone
  PageCacheStats after = page_cache_stats();
  CHECK(after.passed > before.passed);
  CHECK(db.query_text("PRAGMA page_count").value() == pages);
  CHECK(count(db) == "2000");
  CHECK(db.query_text("PRAGMA integrity_check").value() == "ok");
  // The pages past the end were dropped: growing again reads and writes fresh pages.
  insert_random(db, rng, 5000, true);
  CHECK(count(db) == "7000");
  CHECK(db.query_text("PRAGMA integrity_check").value() == "ok");
  db = open_db(dir);  // and a new connection reads the same from the file
  CHECK(count(db) == "7000");
}
