// Tests for RaftLog: what is written is what a restart loads, Raft truncation and compaction,
// snapshot installation, refusal of impossible appends, atomic batches and the cluster id.
#include "store/raft_log.hpp"

#include <doctest/doctest.h>
#include <sqlite3.h>

#include "temp_dir.hpp"

using namespace clusterpin;
using store::LogBatch;
using store::RaftLog;
using store::testing::TempDir;

namespace {

raft::Entry entry(raft::Index index, raft::Term term, std::string data = {}) {
  if (data.empty()) data = "cmd-" + std::to_string(index) + "-" + std::to_string(term);
  return raft::Entry{term, index, raft::EntryType::Normal, std::move(data)};
}

LogBatch append(raft::Index first, raft::Index last, raft::Term term) {
  LogBatch b;
  for (raft::Index i = first; i <= last; ++i) b.entries.push_back(entry(i, term));
  return b;
}

RaftLog open_log(const TempDir& dir, const store::LogOpenOptions& opts = {}) {
  auto log = RaftLog::open(dir.path(), opts);
  REQUIRE_MESSAGE(log.ok(), (log.ok() ? "" : log.error().message));
  return std::move(*log);
}

raft::DurableState load(RaftLog& log) {
  auto s = log.load();
  REQUIRE_MESSAGE(s.ok(), (s.ok() ? "" : s.error().message));
  return std::move(*s);
}

store::LogOpenOptions for_cluster(std::string id) {
  store::LogOpenOptions opts;
  opts.expected_cluster_id = std::move(id);
  return opts;
}

std::vector<raft::Index> indexes(const std::vector<raft::Entry>& es) {
  std::vector<raft::Index> out;
  for (const auto& e : es) out.push_back(e.index);
  return out;
}

}  // namespace

TEST_CASE("a fresh log loads as empty: zero hard state, no snapshot, no entries") {
  TempDir dir;
  auto log = open_log(dir);
  auto s = load(log);
  CHECK(s.hard == raft::HardState{});
  CHECK(s.snapshot == raft::SnapshotMeta{});
  CHECK(s.entries.empty());
  CHECK(std::filesystem::exists(dir.path() / "raft.db"));
}

TEST_CASE("load after reopen returns the hard state, snapshot and entries that were written") {
  TempDir dir;
  raft::HardState hs{7, "12D3KooWvoter", 3};
  std::vector<raft::Entry> written{entry(1, 1),
                                   {2, 2, raft::EntryType::Noop, ""},
                                   {2, 3, raft::EntryType::ConfChange, "add n2"},
                                   entry(4, 7, std::string("\0\x01\xff binary", 10))};
  {
    auto log = open_log(dir);
    LogBatch b;
    b.hard_state = hs;
    b.entries = written;
    REQUIRE(log.apply(b).ok());
  }
  auto log = open_log(dir);
  auto s = load(log);
  CHECK(s.hard == hs);
  CHECK(s.entries == written);
  auto last = log.last_index();
  REQUIRE(last.ok());
  CHECK(*last == 4);
  auto t = log.term_at(3);
  REQUIRE(t.ok());
  CHECK(*t == std::optional<raft::Term>(2));
  auto none = log.term_at(9);
  REQUIRE(none.ok());
  CHECK(!none->has_value());
}

TEST_CASE("an entry at an already stored index truncates the stored suffix (Raft conflict)") {
  TempDir dir;
  auto log = open_log(dir);
  REQUIRE(log.apply(append(1, 10, 1)).ok());
  // A new leader of term 2 overwrites from index 6: entries 6..10 of term 1 must be gone,
  // not just 6 and 7.
  REQUIRE(log.apply(append(6, 7, 2)).ok());
  auto s = load(log);
  REQUIRE(indexes(s.entries) == std::vector<raft::Index>{1, 2, 3, 4, 5, 6, 7});
  CHECK(s.entries[4].term == 1);
  CHECK(s.entries[5] == entry(6, 2));
  CHECK(s.entries[6] == entry(7, 2));
}

TEST_CASE("compact_through deletes entries up to and including the index and keeps the rest") {
  TempDir dir;
  auto log = open_log(dir);
  REQUIRE(log.apply(append(1, 10, 1)).ok());
  LogBatch b;
  b.snapshot = raft::SnapshotMeta{8, 1, {{"a", "b"}, {"c"}}};
  b.compact_through = 5;  // trailing entries 6..8 kept for slow followers
  REQUIRE(log.apply(b).ok());
  auto s = load(log);
  CHECK(indexes(s.entries) == std::vector<raft::Index>{6, 7, 8, 9, 10});
  CHECK(s.snapshot == *b.snapshot);
  CHECK(s.applied == 8);  // at least the snapshot; the caller raises it to StateDb's position
  auto range = log.entries(7, 9);
  REQUIRE(range.ok());
  CHECK(indexes(*range) == std::vector<raft::Index>{7, 8});
}

TEST_CASE("a snapshot that does not match a stored entry supersedes the whole log") {
  TempDir dir;
  auto log = open_log(dir);
  REQUIRE(log.apply(append(1, 5, 1)).ok());
  LogBatch install;
  install.snapshot = raft::SnapshotMeta{20, 3, {{"a"}, {}}};
  install.hard_state = raft::HardState{3, "", 20};
  REQUIRE(log.apply(install).ok());
  auto s = load(log);
  CHECK(s.entries.empty());
  CHECK(s.snapshot.index == 20);
  auto last = log.last_index();
  REQUIRE(last.ok());
  CHECK(*last == 20);
  // The log continues right after the snapshot.
  REQUIRE(log.apply(append(21, 22, 3)).ok());
  CHECK(indexes(load(log).entries) == std::vector<raft::Index>{21, 22});
}

TEST_CASE("a snapshot that matches a stored entry keeps the entries after it") {
  TempDir dir;
  auto log = open_log(dir);
  REQUIRE(log.apply(append(1, 5, 2)).ok());
  LogBatch b;
  b.snapshot = raft::SnapshotMeta{3, 2, {{"a"}, {}}};
  REQUIRE(log.apply(b).ok());
  CHECK(indexes(load(log).entries) == std::vector<raft::Index>{1, 2, 3, 4, 5});
}

TEST_CASE("appending with a gap or at or below the snapshot index is refused and changes nothing") {
  TempDir dir;
  auto log = open_log(dir);
  REQUIRE(log.apply(append(1, 3, 1)).ok());
  Status gap = log.apply(append(5, 6, 1));
  REQUIRE(!gap.ok());
  CHECK(gap.error().message.find("starting at index 5") != std::string::npos);

  LogBatch snap;
  snap.snapshot = raft::SnapshotMeta{3, 1, {}};
  REQUIRE(log.apply(snap).ok());
  CHECK(!log.apply(append(3, 4, 2)).ok());
  CHECK(indexes(load(log).entries) == std::vector<raft::Index>{1, 2, 3});
}

TEST_CASE("apply_all is one transaction: a refused batch rolls back the batches before it") {
  TempDir dir;
  auto log = open_log(dir);
  REQUIRE(log.apply(append(1, 2, 1)).ok());
  std::vector<LogBatch> batches{append(3, 4, 1), append(9, 9, 1)};
  batches[0].hard_state = raft::HardState{5, "x", 4};
  REQUIRE(!log.apply_all(batches).ok());
  auto s = load(log);
  CHECK(indexes(s.entries) == std::vector<raft::Index>{1, 2});
  CHECK(s.hard == raft::HardState{});
}

TEST_CASE(
    "the cluster id is fixed once and opening for another cluster is refused with the reset "
    "command") {
  TempDir dir;
  {
    auto log = open_log(dir);
    auto none = log.cluster_id();
    REQUIRE(none.ok());
    CHECK(none->empty());
    REQUIRE(log.set_cluster_id("cluster-A").ok());
    CHECK(log.set_cluster_id("cluster-A").ok());
    Status other = log.set_cluster_id("cluster-B");
    REQUIRE(!other.ok());
  }
  CHECK(RaftLog::open(dir.path(), for_cluster("cluster-A")).ok());
  CHECK(RaftLog::open(dir.path()).ok());
  auto refused = RaftLog::open(dir.path(), for_cluster("cluster-B"));
  REQUIRE(!refused.ok());
  const std::string& msg = refused.error().message;
  CHECK(msg.find("belongs to cluster cluster-A") != std::string::npos);
  CHECK(msg.find("clusterpin state cleanup") != std::string::npos);
}

TEST_CASE("the index a peer joined at is 0 until recorded and survives a reopen, a fresh load stays empty") {
  TempDir dir;
  {
    auto log = open_log(dir);
    auto none = log.member_since();
    REQUIRE(none.ok());
    CHECK(*none == 0);
    REQUIRE(log.set_member_since(412).ok());
  }
  auto log = open_log(dir);
  auto since = log.member_since();
  REQUIRE(since.ok());
  CHECK(*since == 412);
  // The record alone is not Raft state: a peer that stopped right after joining joins again.
  auto s = load(log);
  CHECK(s.entries.empty());
  CHECK(s.hard == raft::HardState{});
}

TEST_CASE("a read-only log on another connection sees what the writer committed") {
  TempDir dir;
  auto log = open_log(dir);
  REQUIRE(log.apply(append(1, 3, 1)).ok());
  store::LogOpenOptions read_only;
  read_only.read_only = true;
  auto reader = open_log(dir, read_only);
  CHECK(indexes(load(reader).entries) == std::vector<raft::Index>{1, 2, 3});
  REQUIRE(log.apply(append(4, 4, 1)).ok());
  CHECK(indexes(load(reader).entries) == std::vector<raft::Index>{1, 2, 3, 4});
  CHECK(!reader.apply(append(5, 5, 1)).ok());
}

TEST_CASE("load refuses a log with a missing entry instead of restarting from a hole") {
  TempDir dir;
  {
    auto log = open_log(dir);
    REQUIRE(log.apply(append(1, 5, 1)).ok());
  }
  sqlite3* db = nullptr;
  REQUIRE(sqlite3_open((dir.path() / "raft.db").c_str(), &db) == SQLITE_OK);
  REQUIRE(sqlite3_exec(db, "DELETE FROM entries WHERE idx = 3", nullptr, nullptr, nullptr) ==
          SQLITE_OK);
  sqlite3_close(db);
  auto log = open_log(dir);
  auto s = log.load();
  REQUIRE(!s.ok());
  CHECK(s.error().message.find("gap between index 2 and 4") != std::string::npos);
}

TEST_CASE("a database written by a newer schema version is refused") {
  TempDir dir;
  { auto log = open_log(dir); }
  sqlite3* db = nullptr;
  REQUIRE(sqlite3_open((dir.path() / "raft.db").c_str(), &db) == SQLITE_OK);
  REQUIRE(sqlite3_exec(db, "UPDATE meta SET value = '99' WHERE key = 'schema_version'", nullptr,
                       nullptr, nullptr) == SQLITE_OK);
  sqlite3_close(db);
  auto log = RaftLog::open(dir.path());
  REQUIRE(!log.ok());
  CHECK(log.error().message.find("schema version 99") != std::string::npos);
}
