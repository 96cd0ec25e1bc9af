// Tests for snapshot chunk streaming: a file read in chunks and appended elsewhere is
// byte-identical, duplicate chunks are harmless and holes are refused.
#include "store/snapshot_file.hpp"

#include <doctest/doctest.h>

#include "store/state_db.hpp"
#include "temp_dir.hpp"

using namespace clusterpin;
using store::testing::TempDir;

TEST_CASE("a snapshot streamed in chunks is byte-identical and restorable on the receiver") {
  TempDir dir;
  auto src = store::StateDb::open(dir.path() / "leader");
  REQUIRE(src.ok());
  std::vector<store::StateOp> ops;
  for (int i = 0; i < 2000; ++i)
    ops.push_back(store::StateOp::put_pin("cid-" + std::to_string(i), std::string(100, 'p')));
  for (raft::Index i = 1; i < 7; ++i) REQUIRE(src->apply(i, 1, {}).ok());  // no-op entries
  REQUIRE(src->apply(7, 1, ops).ok());
  auto snap = src->create_snapshot(dir.path() / "leader-snap.db");
  REQUIRE(snap.ok());

  const auto received = dir.path() / "received.db";
  std::uint64_t offset = 0;
  constexpr std::size_t kChunk = 10000;  // not a multiple of the page size on purpose
  for (;;) {
    auto chunk = store::read_snapshot_chunk(dir.path() / "leader-snap.db", offset, kChunk);
    REQUIRE(chunk.ok());
    if (chunk->empty()) break;
    auto size = store::append_snapshot_chunk(received, offset, *chunk);
    REQUIRE(size.ok());
    // A retransmitted chunk changes nothing.
    auto again = store::append_snapshot_chunk(received, offset, *chunk);
    REQUIRE(again.ok());
    CHECK(*again == *size);
    offset += chunk->size();
  }
  CHECK(offset == snap->size_bytes);
  REQUIRE(store::sync_file(received).ok());

  auto follower = store::StateDb::open(dir.path() / "follower");
  REQUIRE(follower.ok());
  auto pos = follower->restore_snapshot(received);
  REQUIRE_MESSAGE(pos.ok(), (pos.ok() ? "" : pos.error().message));
  CHECK(pos->index == 7);
  auto r = follower->open_reader();
  REQUIRE(r.ok());
  CHECK(*r->count_pins() == 2000);
}

TEST_CASE("a chunk past the end of the file is refused because it would leave a hole") {
  TempDir dir;
  const auto f = dir.path() / "s.db";
  REQUIRE(store::append_snapshot_chunk(f, 0, "abcd").ok());
  CHECK(!store::append_snapshot_chunk(f, 10, "xyz").ok());
  auto all = store::read_snapshot_chunk(f, 0, 100);
  REQUIRE(all.ok());
  CHECK(*all == "abcd");
  auto tail = store::read_snapshot_chunk(f, 2, 100);
  CHECK(*tail == "cd");
  CHECK(store::read_snapshot_chunk(f, 50, 10)->empty());
  CHECK(!store::read_snapshot_chunk(dir.path() / "missing", 0, 10).ok());
}

TEST_CASE("remove_database_file takes the file and what SQLite keeps beside it, and only those") {
  TempDir dir;
  auto base = dir.path() / "incoming.db";
  for (const char* suffix : {"", "-journal", "-wal", "-shm"}) {
    REQUIRE(store::append_snapshot_chunk(base.string() + suffix, 0, "bytes").ok());
  }
  REQUIRE(store::append_snapshot_chunk(dir.path() / "incoming.db.other", 0, "kept").ok());
  REQUIRE(store::remove_database_file(base).ok());
  for (const char* suffix : {"", "-journal", "-wal", "-shm"}) {
    CHECK_FALSE(std::filesystem::exists(base.string() + suffix));
  }
  CHECK(std::filesystem::exists(dir.path() / "incoming.db.other"));
  CHECK(store::remove_database_file(base).ok());  // nothing there: nothing to do
}
