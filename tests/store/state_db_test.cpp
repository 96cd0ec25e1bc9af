// Tests for StateDb: rows and applied index change together, replay is a no-op, applied entries
// commit in groups (and a crash loses a group whole), readers see committed state with snapshot
// isolation, and snapshots copy and restore the exact rows.
#include "store/state_db.hpp"

#include <doctest/doctest.h>

#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdlib>
#include <functional>
#include <map>
#include <thread>

#include "core/pin_version.hpp"
#include "committed_rows.hpp"
#include "failing_vfs.hpp"
#include "store/fail_stop.hpp"
#include "store/snapshot_file.hpp"
#include "temp_dir.hpp"

using namespace clusterpin;
using store::StateDb;
using store::StateOp;
using store::testing::TempDir;

namespace {

StateDb open_state(const std::filesystem::path& dir, const store::StateOpenOptions& opts = {}) {
  auto db = StateDb::open(dir, opts);
  REQUIRE_MESSAGE(db.ok(), (db.ok() ? "" : db.error().message));
  return std::move(*db);
}

store::StateOpenOptions for_cluster(std::string id) {
  store::StateOpenOptions opts;
  opts.expected_cluster_id = std::move(id);
  return opts;
}

bool apply(StateDb& db, raft::Index index, raft::Term term, std::vector<StateOp> ops) {
  auto r = db.apply(index, term, ops);
  REQUIRE_MESSAGE(r.ok(), (r.ok() ? "" : r.error().message));
  return *r;
}

// Applies `ops` as entry `index` of a state with a history: empty entries (as a leader's no-op
// entry) fill the indexes between the applied one and it, since state.db takes entries only in
// order.
bool apply_at(StateDb& db, raft::Index index, raft::Term term, std::vector<StateOp> ops) {
  for (raft::Index i = db.applied().value().index + 1; i < index; ++i) apply(db, i, term, {});
  return apply(db, index, term, std::move(ops));
}

std::string cid(int i) {
  // CID-like binary keys: a fixed prefix and a big-endian number, so byte order is numeric order.
  std::string k("\x01\x70\x12\x20", 4);
  k.push_back(static_cast<char>((i >> 8) & 0xff));
  k.push_back(static_cast<char>(i & 0xff));
  return k;
}

std::map<std::string, std::string> all_pins(store::StateReader& r) {
  std::map<std::string, std::string> out;
  Status s = r.for_each_pin([&](std::string_view c, std::string_view p) {
    out.emplace(c, p);
    return true;
  });
  REQUIRE(s.ok());
  return out;
}

// Waits for a forked child, which must exit (not die of a signal), and returns its exit code.
int exit_code_of(pid_t pid) {
  int status = 0;
  REQUIRE(::waitpid(pid, &status, 0) == pid);
  REQUIRE(WIFEXITED(status));
  return WEXITSTATUS(status);
}

// Runs `body` in a forked child, which must end with std::_Exit while its objects are alive
// (no destructors, as kill -9 would leave them), with status 0.
void in_killed_child(const std::function<void()>& body) {
  pid_t pid = ::fork();
  REQUIRE(pid >= 0);
  if (pid == 0) {
    body();
    std::_Exit(99);  // the body did not end the child
  }
  REQUIRE(exit_code_of(pid) == 0);
}

// <root>/s.db: a snapshot of a state at index 11, term 2 holding one pin (kept in <root>/a).
void snapshot_at_11(const std::filesystem::path& root) {
  auto a = open_state(root / "a");
  apply_at(a, 11, 2, {StateOp::put_pin(cid(1000), "from-snapshot")});
  REQUIRE(a.create_snapshot(root / "s.db").ok());
}

store::StateReader reader(StateDb& db) {
  auto r = db.open_reader();
  REQUIRE_MESSAGE(r.ok(), (r.ok() ? "" : r.error().message));
  return std::move(*r);
}

}  // namespace

TEST_CASE("apply stores the rows and the applied position together, and they survive reopen") {
  TempDir dir;
  {
    auto db = open_state(dir.path());
    CHECK(apply(db, 1, 1,
                {StateOp::put_pin(cid(1), "pin-1"),
                 StateOp::put_peer("12D3KooWA", "/ip4/1.2.3.4/tcp/9096")}));
    CHECK(apply(db, 2, 1, {StateOp::put_pin(cid(2), std::string("\0bin", 4))}));
  }
  auto db = open_state(dir.path());
  auto pos = db.applied();
  REQUIRE(pos.ok());
  CHECK(*pos == store::AppliedPosition{2, 1});
  auto p2 = db.get_pin(cid(2));
  REQUIRE(p2.ok());
  CHECK(*p2 == std::optional<std::string>(std::string("\0bin", 4)));
  auto r = reader(db);
  auto peers = r.peers();
  REQUIRE(peers.ok());
  CHECK(*peers == std::vector<store::PeerRecord>{{"12D3KooWA", "/ip4/1.2.3.4/tcp/9096"}});
}

TEST_CASE("applying an index at or below the applied index is a no-op (idempotent replay)") {
  TempDir dir;
  auto db = open_state(dir.path());
  CHECK(apply_at(db, 5, 2, {StateOp::put_pin(cid(1), "v5")}));
  CHECK(!apply(db, 5, 2, {StateOp::put_pin(cid(1), "replayed")}));
  CHECK(!apply(db, 3, 1, {StateOp::put_pin(cid(9), "old")}));
  CHECK(*db.get_pin(cid(1)) == std::optional<std::string>("v5"));
  CHECK(!db.get_pin(cid(9))->has_value());
  CHECK(*db.applied() == store::AppliedPosition{5, 2});
  // An entry without state effect (no-op, membership) still advances the position.
  CHECK(apply(db, 6, 3, {}));
  CHECK(*db.applied() == store::AppliedPosition{6, 3});
}

TEST_CASE("a batch reports which pins were new to the pinset, what each op replaced or removed, and skips entries already applied") {
  TempDir dir;
  auto db = open_state(dir.path());
  REQUIRE(apply(db, 1, 1, {StateOp::put_pin(cid(1), "a")}));
  std::vector<StateDb::Entry> batch{
      {1, 1, {StateOp::put_pin(cid(7), "replayed")}},
      {2, 1,
       {StateOp::put_pin(cid(1), "a2"), StateOp::put_pin(cid(2), "b"), StateOp::delete_pin(cid(3))}},
      {3, 1,
       {StateOp::put_pin(cid(2), "b2"), StateOp::delete_pin(cid(1)), StateOp::put_pin(cid(1), "a3")}},
  };
  auto r = db.apply_batch(batch);
  REQUIRE_MESSAGE(r.ok(), (r.ok() ? "" : r.error().message));
  REQUIRE(r->size() == 3);
  CHECK(!(*r)[0].now);
  CHECK((*r)[1].now);
  CHECK((*r)[1].new_pins == std::vector<bool>{false, true, false});
  CHECK((*r)[2].new_pins == std::vector<bool>{false, false, true});  // deleted, then added again
  using Old = std::vector<std::optional<std::string>>;
  CHECK((*r)[1].replaced == Old{"a", std::nullopt, std::nullopt});  // cid(3) was not there
  CHECK((*r)[2].replaced == Old{"b", "a2", std::nullopt});
  CHECK(*db.get_pin(cid(1)) == std::optional<std::string>("a3"));
  CHECK(*db.get_pin(cid(2)) == std::optional<std::string>("b2"));  // an update still writes
  CHECK(!db.get_pin(cid(7))->has_value());
}

TEST_CASE("a conditional pin op applies only to the pin it was decided from, and reports a skip") {
  TempDir dir;
  auto db = open_state(dir.path());
  REQUIRE(apply(db, 1, 1, {StateOp::put_pin(cid(1), "a"), StateOp::put_pin(cid(2), "b")}));
  auto put_if = [](std::string key, std::string value, std::string_view read) {
    StateOp op = StateOp::put_pin(std::move(key), std::move(value));
    op.if_version = pin_version(read);
    return op;
  };
  auto delete_if = [](std::string key, std::string_view read) {
    StateOp op = StateOp::delete_pin(std::move(key));
    op.if_version = pin_version(read);
    return op;
  };
  // Decided from "a" and "b"; meanwhile cid(2) became "b2" and cid(3) never existed.
  std::vector<StateDb::Entry> batch{
      {2, 1, {StateOp::put_pin(cid(2), "b2")}},
      {3, 1, {put_if(cid(1), "a-moved", "a"), put_if(cid(2), "b-moved", "b"),
              delete_if(cid(3), "c")}},
      {4, 1, {delete_if(cid(1), "a"), delete_if(cid(2), "b")}},
  };
  auto r = db.apply_batch(batch);
  REQUIRE_MESSAGE(r.ok(), (r.ok() ? "" : r.error().message));
  CHECK((*r)[1].skipped == std::vector<bool>{false, true, true});
  CHECK((*r)[1].new_pins == std::vector<bool>{false, false, false});
  using Old = std::vector<std::optional<std::string>>;
  CHECK((*r)[1].replaced == Old{"a", std::nullopt, std::nullopt});
  // cid(1) is "a-moved" now, so the delete decided from "a" is stale too.
  CHECK((*r)[2].skipped == std::vector<bool>{true, true});
  CHECK(*db.get_pin(cid(1)) == std::optional<std::string>("a-moved"));
  CHECK(*db.get_pin(cid(2)) == std::optional<std::string>("b2"));
  CHECK(!db.get_pin(cid(3))->has_value());
  REQUIRE(apply(db, 5, 1, {delete_if(cid(2), "b2")}));
  CHECK(!db.get_pin(cid(2))->has_value());
}

TEST_CASE("an entry that does not follow the applied one is refused and changes nothing") {
  TempDir dir;
  StateDb db = open_state(dir.path());
  REQUIRE(apply(db, 1, 1, {StateOp::put_pin(cid(1), "one")}));
  std::vector<StateDb::Entry> batch{{2, 1, {StateOp::put_pin(cid(2), "two")}},
                                    {4, 1, {StateOp::put_pin(cid(4), "four")}}};
  auto r = db.apply_batch(batch);
  REQUIRE_FALSE(r.ok());
  CHECK(r.error().message.find("entry 4 does not follow the applied entry 2") !=
        std::string::npos);
  CHECK(r.error().message.find("3-3 are missing") != std::string::npos);
  // The whole call is rolled back: entry 2 too, and the position stays at 1.
  CHECK(*db.applied() == store::AppliedPosition{1, 1});
  CHECK_FALSE(db.get_pin(cid(2)).value().has_value());
  CHECK_FALSE(db.get_pin(cid(4)).value().has_value());
  // A fresh file takes entry 1 first, not a later one.
  TempDir other;
  StateDb fresh = open_state(other.path());
  auto late = fresh.apply(3, 1, std::vector{StateOp::put_pin(cid(3), "three")});
  REQUIRE_FALSE(late.ok());
  CHECK(late.error().message.find("entries 1-2 are missing") != std::string::npos);
  // The entries in order are then taken.
  CHECK(apply(db, 2, 1, {StateOp::put_pin(cid(2), "two")}));
  CHECK(db.get_pin(cid(2)).value() == "two");
}

TEST_CASE("shared reads see every applied entry, and a snapshot can be taken after them") {
  TempDir dir;
  StateDb db = open_state(dir.path());
  for (int i = 1; i <= 20; ++i) {
    REQUIRE(db.begin_reads().ok());
    CHECK_FALSE(db.get_pin(cid(i)).value().has_value());
    CHECK(db.get_pin(cid(i - 1)).value().has_value() == (i > 1));
    // A write ends the shared read first: the next lookup sees it.
    CHECK(apply(db, static_cast<raft::Index>(i), 1, {StateOp::put_pin(cid(i), "pin")}));
    CHECK(db.get_pin(cid(i)).value() == "pin");
  }
  REQUIRE(db.begin_reads().ok());
  CHECK(db.get_pin(cid(20)).value() == "pin");
  // A snapshot (make_durable + VACUUM INTO) needs no transaction open on the writer.
  auto snap = db.create_snapshot(dir.path() / "snap.db");
  REQUIRE_MESSAGE(snap.ok(), (snap.ok() ? "" : snap.error().message));
  CHECK(snap->applied.index == 20);
  // Another connection sees the rows once they are applied, shared read or not.
  REQUIRE(db.begin_reads().ok());
  CHECK(apply(db, 21, 1, {StateOp::put_pin(cid(21), "pin")}));
  auto reader = db.open_reader();
  REQUIRE(reader.ok());
  CHECK(reader->get_pin(cid(21)).value() == "pin");
  db.end_reads();
  db.end_reads();  // ending twice is harmless
}

TEST_CASE("applied entries are committed by commit(), by opening a reader and by the size bound") {
  TempDir dir;
  StateDb db = open_state(dir.path());
  auto committed_pins = [&] { return store::testing::committed_rows(db.file(), "pins"); };
  std::vector<StateDb::Entry> batch{{1, 1, {StateOp::put_pin(cid(1), "a")}},
                                    {2, 1, {StateOp::put_pin(cid(2), "b")}}};
  REQUIRE(db.apply_batch(batch).ok());
  CHECK(db.has_uncommitted());
  CHECK(committed_pins() == 0);
  CHECK(db.get_pin(cid(2)).value() == "b");  // the writer's own reads see them
  CHECK(db.applied().value().index == 2);
  REQUIRE(db.begin_reads().ok());  // shares the open transaction
  CHECK(db.get_pin(cid(1)).value() == "a");
  db.end_reads();  // leaves the applied entries uncommitted
  CHECK(db.has_uncommitted());
  REQUIRE(db.commit().ok());
  CHECK_FALSE(db.has_uncommitted());
  CHECK(committed_pins() == 2);

  std::vector<StateDb::Entry> next{{3, 1, {StateOp::put_pin(cid(3), "c")}}};
  REQUIRE(db.apply_batch(next).ok());
  CHECK(committed_pins() == 2);
  {
    store::StateReader r = reader(db);
    CHECK(r.get_pin(cid(3)).value() == "c");
    CHECK(r.applied().value().index == 3);
  }
  CHECK_FALSE(db.has_uncommitted());

  std::vector<StateOp> many;
  for (std::size_t i = 0; i < StateDb::kMaxUncommittedOps; ++i)
    many.push_back(StateOp::put_pin(cid(100 + static_cast<int>(i)), "p"));
  std::vector<StateDb::Entry> big{{4, 1, many}};
  REQUIRE(db.apply_batch(big).ok());
  CHECK_FALSE(db.has_uncommitted());
  CHECK(committed_pins() == 3 + static_cast<std::int64_t>(StateDb::kMaxUncommittedOps));
}

namespace {

// An entry of `ops` proposed as request `seq` of `session`, with every request below
// `done_below` ended for its proposer.
StateDb::Entry request_entry(raft::Index index, std::uint64_t session, std::uint64_t seq,
                             std::uint64_t done_below, std::vector<StateOp> ops) {
  return {index, 1, std::move(ops), StateDb::Request{session, seq, done_below}};
}

std::vector<StateDb::Applied> apply_entries(StateDb& db, std::vector<StateDb::Entry> entries) {
  auto r = db.apply_batch(entries);
  REQUIRE_MESSAGE(r.ok(), (r.ok() ? "" : r.error().message));
  return std::move(*r);
}

}  // namespace

TEST_CASE("a request committed twice changes the pinset once, even after another request changed the pin") {
  TempDir dir;
  auto db = open_state(dir.path());
  // Session 7's request 1 pins cid(1); another session unpins it; 7's retry of request 1
  // commits later and must not pin it again. Session 9 numbers the same way and is not
  // confused with 7; an entry without a request id is applied as before.
  auto r = apply_entries(db, {request_entry(1, 7, 1, 1, {StateOp::put_pin(cid(1), "a")}),
                              request_entry(2, 8, 1, 1, {StateOp::delete_pin(cid(1))}),
                              request_entry(3, 7, 1, 1, {StateOp::put_pin(cid(1), "a")}),
                              request_entry(4, 9, 1, 1, {StateOp::put_pin(cid(2), "b")}),
                              {5, 1, {StateOp::put_pin(cid(3), "c")}}});
  CHECK(!r[0].duplicate);
  CHECK(!r[1].duplicate);
  CHECK(r[2].now);  // applied as an entry (the position moves), its ops skipped
  CHECK(r[2].duplicate);
  CHECK(r[2].skipped == std::vector<bool>{true});
  CHECK(r[2].new_pins == std::vector<bool>{false});
  CHECK(!r[3].duplicate);
  CHECK(!r[4].duplicate);
  CHECK(!db.get_pin(cid(1))->has_value());
  CHECK(*db.get_pin(cid(2)) == std::optional<std::string>("b"));
  CHECK(*db.get_pin(cid(3)) == std::optional<std::string>("c"));
  CHECK(*db.applied() == store::AppliedPosition{5, 1});
}

TEST_CASE("requests of a session apply in any order, once each, and those below done_below are skipped") {
  TempDir dir;
  {
    auto db = open_state(dir.path());
    // Requests 2 and 1 commit out of order; 3 says every request below 2 ended; then a late copy
    // of 1 (already applied) and of 0 (given up by its proposer, never applied) change nothing.
    auto r = apply_entries(db, {request_entry(1, 5, 2, 1, {StateOp::put_pin(cid(2), "two")}),
                                request_entry(2, 5, 1, 1, {StateOp::put_pin(cid(1), "one")}),
                                request_entry(3, 5, 3, 2, {StateOp::put_pin(cid(3), "three")}),
                                request_entry(4, 5, 1, 1, {StateOp::put_pin(cid(1), "late")}),
                                request_entry(5, 5, 0, 0, {StateOp::put_pin(cid(9), "lost")})});
    CHECK(std::vector<bool>{r[0].duplicate, r[1].duplicate, r[2].duplicate, r[3].duplicate,
                            r[4].duplicate} == std::vector<bool>{false, false, false, true, true});
    CHECK(*db.get_pin(cid(1)) == std::optional<std::string>("one"));
    CHECK(!db.get_pin(cid(9))->has_value());
  }
  // The record of applied requests is part of the committed state: it survives a reopen and
  // travels in a snapshot, so every peer decides the same.
  auto db = open_state(dir.path());
  auto again = apply_entries(db, {request_entry(6, 5, 2, 1, {StateOp::put_pin(cid(2), "again")})});
  CHECK(again[0].duplicate);
  REQUIRE(db.create_snapshot(dir.path() / "s.db").ok());
  auto other = open_state(dir.path() / "other");
  REQUIRE(other.restore_snapshot(dir.path() / "s.db").ok());
  auto there = apply_entries(other, {request_entry(7, 5, 3, 2, {StateOp::put_pin(cid(3), "x")}),
                                     request_entry(8, 5, 4, 2, {StateOp::put_pin(cid(4), "four")})});
  CHECK(there[0].duplicate);
  CHECK(!there[1].duplicate);
  CHECK(*other.get_pin(cid(3)) == std::optional<std::string>("three"));
}

TEST_CASE("a request stays known while a lower one is still open, however many follow it") {
  // Request 1 stays open (its proposer waits, done_below stays 1); 2 is applied, then 20,000
  // more in order: a retried copy of 2 is still a duplicate (numbers kept one by one, at most
  // 4,096 of them, forgot it).
  TempDir dir;
  auto db = open_state(dir.path());
  raft::Index index = 0;
  std::vector<StateDb::Entry> batch;
  for (std::uint64_t seq = 2; seq <= 20'002; ++seq) batch.push_back(request_entry(++index, 1, seq, 1, {}));
  apply_entries(db, std::move(batch));
  auto again = apply_entries(db, {request_entry(++index, 1, 2, 1, {StateOp::put_pin(cid(2), "twice")}),
                                  request_entry(++index, 1, 1, 1, {StateOp::put_pin(cid(1), "one")})});
  CHECK(again[0].duplicate);
  CHECK(!again[1].duplicate);  // the open one, applied once now
  CHECK(!db.get_pin(cid(2))->has_value());
}

TEST_CASE("the record of requests stays bounded: the least recent sessions and the lowest ranges go") {
  TempDir dir;
  auto db = open_state(dir.path());
  raft::Index index = 0;
  // Every other number applied, none said ended: a range each; the lowest ones are forgotten
  // beyond kMaxRequestRanges (the proposer keeps fewer requests open than that).
  const std::uint64_t last = 2 * (StateDb::kMaxRequestRanges + 10);
  std::vector<StateDb::Entry> batch;
  for (std::uint64_t seq = 2; seq <= last; seq += 2) batch.push_back(request_entry(++index, 1, seq, 0, {}));
  apply_entries(db, std::move(batch));
  auto low = apply_entries(db, {request_entry(++index, 1, 10, 0, {}), request_entry(++index, 1, last, 0, {})});
  CHECK(!low[0].duplicate);  // forgotten: applied again, as an entry without an id would be
  CHECK(low[1].duplicate);
  // kMaxSessions newer sessions push session 1 out; the most recent ones stay.
  batch.clear();
  for (std::uint64_t session = 2; session <= StateDb::kMaxSessions + 1; ++session)
    batch.push_back(request_entry(++index, session, 1, 1, {}));
  apply_entries(db, std::move(batch));
  auto after = apply_entries(db, {request_entry(++index, StateDb::kMaxSessions + 1, 1, 1, {}),
                                  request_entry(++index, 1, last, 0, {})});
  CHECK(after[0].duplicate);
  CHECK(!after[1].duplicate);
}

TEST_CASE("a crash loses uncommitted entries together with their applied position") {
  TempDir dir;
  auto run_child = [&](bool commit) {
    in_killed_child([&] {
      auto db = StateDb::open(dir.path());
      if (!db) std::_Exit(2);
      auto pos = db->applied();
      if (!pos) std::_Exit(3);
      raft::Index at = pos->index;
      std::vector<StateDb::Entry> batch{{at + 1, 1, {StateOp::put_pin(cid(static_cast<int>(at) + 1), "x")}},
                                        {at + 2, 1, {StateOp::delete_pin(cid(1))}}};
      if (!db->apply_batch(batch)) std::_Exit(4);
      if (commit && !db->commit()) std::_Exit(5);
      std::_Exit(0);
    });
  };
  {
    StateDb db = open_state(dir.path());
    CHECK(apply(db, 1, 1, {StateOp::put_pin(cid(1), "first")}));
  }
  run_child(false);
  {
    StateDb db = open_state(dir.path());
    CHECK(db.applied().value().index == 1);
    CHECK(db.get_pin(cid(1)).value() == "first");
    CHECK_FALSE(db.get_pin(cid(2)).value().has_value());
  }
  run_child(true);
  {
    StateDb db = open_state(dir.path());
    CHECK(db.applied().value().index == 3);
    CHECK_FALSE(db.get_pin(cid(1)).value().has_value());
    CHECK(db.get_pin(cid(2)).value() == "x");
    // A clean close commits what is still open.
    std::vector<StateDb::Entry> batch{{4, 1, {StateOp::put_pin(cid(4), "closed")}}};
    REQUIRE(db.apply_batch(batch).ok());
  }
  StateDb db = open_state(dir.path());
  CHECK(db.applied().value().index == 4);
  CHECK(db.get_pin(cid(4)).value() == "closed");
}

TEST_CASE("a guarded unpin is recorded in the transaction of the entry that removed the pin") {
  TempDir dir;
  {
    StateDb db = open_state(dir.path());
    CHECK(apply(db, 1, 1, {StateOp::put_pin(cid(1), "one"), StateOp::put_pin(cid(2), "two"),
                           StateOp::put_pin(cid(3), "three")}));
  }
  // The guard sees each removed or replaced pin with what it was, and holds for cid(1) and cid(3).
  auto guarded = [](std::vector<std::pair<std::string, std::string>>* seen) {
    return [seen](std::string_view c, std::string_view pin) {
      if (seen) seen->emplace_back(c, pin);
      return c != cid(2);
    };
  };
  auto run_child = [&](bool commit) {
    in_killed_child([&] {
      auto db = StateDb::open(dir.path());
      if (!db) std::_Exit(2);
      db->set_unpin_guard(guarded(nullptr));
      std::vector<StateDb::Entry> batch{
          {2, 1, {StateOp::delete_pin(cid(1)), StateOp::delete_pin(cid(2))}},
          {3, 1, {StateOp::put_pin(cid(3), "three, moved"), StateOp::put_pin(cid(4), "new")}}};
      if (!db->apply_batch(batch)) std::_Exit(4);
      if (commit && !db->commit()) std::_Exit(5);
      std::_Exit(0);
    });
  };
  run_child(false);
  {
    // Lost with the entries: the pins are all there, no unpin is recorded.
    StateDb db = open_state(dir.path());
    CHECK(db.get_pin(cid(1)).value() == "one");
    CHECK(db.local_unpins().value().empty());
  }
  run_child(true);
  StateDb db = open_state(dir.path());
  CHECK_FALSE(db.get_pin(cid(1)).value().has_value());
  CHECK(db.local_unpins().value() ==
        std::vector<store::LocalUnpin>{{cid(1), "one"}, {cid(3), "three"}});

  // The guard is asked about removed and replaced pins only (not about a new CID).
  std::vector<std::pair<std::string, std::string>> seen;
  db.set_unpin_guard(guarded(&seen));
  std::vector<StateDb::Entry> batch{
      {4, 1, {StateOp::delete_pin(cid(4)), StateOp::put_pin(cid(5), "five"),
              StateOp::delete_pin(cid(6))}}};
  REQUIRE(db.apply_batch(batch).ok());
  CHECK(seen == std::vector<std::pair<std::string, std::string>>{{cid(4), "new"}});

  // Forgotten in the open group: gone once it commits.
  std::vector<std::string> forget{cid(1), cid(4)};
  REQUIRE(db.forget_local_unpins(forget).ok());
  REQUIRE(db.commit().ok());
  db = open_state(dir.path());
  CHECK(db.local_unpins().value() == std::vector<store::LocalUnpin>{{cid(3), "three"}});
}

TEST_CASE("a restore for a Raft snapshot at another position is refused and keeps the state") {
  TempDir dir;
  snapshot_at_11(dir.path());
  auto b = open_state(dir.path() / "b");
  apply_at(b, 5, 1, {StateOp::put_pin(cid(1), "b")});
  auto pos = b.restore_snapshot(dir.path() / "s.db", store::AppliedPosition{12, 2});
  REQUIRE_FALSE(pos.ok());
  CHECK(pos.error().message.find("holds the state at entry 11 (term 2), not at entry 12 (term 2)") !=
        std::string::npos);
  CHECK(*b.applied() == store::AppliedPosition{5, 1});
  CHECK(b.get_pin(cid(1)).value() == "b");
  CHECK_FALSE(b.get_pin(cid(1000)).value().has_value());
  // At the position it holds, the same file is restored.
  auto at = b.restore_snapshot(dir.path() / "s.db", store::AppliedPosition{11, 2});
  REQUIRE_MESSAGE(at.ok(), (at.ok() ? "" : at.error().message));
  CHECK(b.get_pin(cid(1000)).value() == "from-snapshot");
}

TEST_CASE("a snapshot restore keeps this peer's local unpins and drops the sender's") {
  TempDir dir;
  auto a = open_state(dir.path() / "a");
  a.set_unpin_guard([](std::string_view, std::string_view) { return true; });
  apply_at(a, 10, 2, {StateOp::put_pin(cid(1), "a1"), StateOp::put_pin(cid(2), "a2")});
  apply(a, 11, 2, {StateOp::delete_pin(cid(1))});
  REQUIRE(a.local_unpins().value().size() == 1);
  REQUIRE(a.create_snapshot(dir.path() / "snap-11.db").ok());

  auto b = open_state(dir.path() / "b");
  b.set_unpin_guard([](std::string_view, std::string_view) { return true; });
  apply_at(b, 3, 1, {StateOp::put_pin(cid(7), "b7")});
  apply(b, 4, 1, {StateOp::delete_pin(cid(7))});
  REQUIRE(b.restore_snapshot(dir.path() / "snap-11.db").ok());
  CHECK(b.get_pin(cid(2)).value() == "a2");
  CHECK(b.local_unpins().value() == std::vector<store::LocalUnpin>{{cid(7), "b7"}});
  b = open_state(dir.path() / "b");
  CHECK(b.local_unpins().value() == std::vector<store::LocalUnpin>{{cid(7), "b7"}});
}

TEST_CASE("a failed commit of applied entries stops the process with the storage failure status") {
  TempDir dir;
  store::StateOpenOptions opts;
  opts.vfs = store::testing::register_failing_sync_vfs();
  { StateDb db = open_state(dir.path(), opts); }
  pid_t pid = ::fork();
  REQUIRE(pid >= 0);
  if (pid == 0) {
    auto db = StateDb::open(dir.path(), opts);
    if (!db) std::_Exit(2);
    std::vector<StateDb::Entry> batch{{1, 1, {StateOp::put_pin(cid(1), "x")}}};
    if (!db->apply_batch(batch)) std::_Exit(3);
    store::testing::fail_next_wal_write(true);
    (void)db->commit();
    std::_Exit(0);  // reached only if the failure was swallowed
  }
  CHECK(exit_code_of(pid) == store::kStorageFailureExitCode);
  StateDb db = open_state(dir.path());
  CHECK(db.applied().value().index == 0);
}

TEST_CASE("put overwrites and delete removes pins and peers") {
  TempDir dir;
  auto db = open_state(dir.path());
  apply(
      db, 1, 1,
      {StateOp::put_pin(cid(1), "a"), StateOp::put_peer("p1", "x"), StateOp::put_peer("p2", "y")});
  apply(db, 2, 1,
        {StateOp::put_pin(cid(1), "b"), StateOp::delete_peer("p1"), StateOp::put_peer("p2", "z")});
  CHECK(*db.get_pin(cid(1)) == std::optional<std::string>("b"));
  apply(db, 3, 1, {StateOp::delete_pin(cid(1)), StateOp::delete_pin(cid(7))});
  CHECK(!db.get_pin(cid(1))->has_value());
  auto r = reader(db);
  CHECK(*r.peers() == std::vector<store::PeerRecord>{{"p2", "z"}});
  CHECK(*r.count_pins() == 0);
}

TEST_CASE("for_each_pin streams in CID order, resumes after a given CID and stops when asked") {
  TempDir dir;
  auto db = open_state(dir.path());
  std::vector<StateOp> ops;
  for (int i : {300, 5, 42, 7, 256, 1})
    ops.push_back(StateOp::put_pin(cid(i), "p" + std::to_string(i)));
  apply(db, 1, 1, ops);
  auto r = reader(db);
  std::vector<std::string> seen;
  auto collect = [&](std::string_view c, std::string_view) {
    seen.emplace_back(c);
    return true;
  };
  REQUIRE(r.for_each_pin(collect).ok());
  CHECK(seen == std::vector<std::string>{cid(1), cid(5), cid(7), cid(42), cid(256), cid(300)});
  seen.clear();
  REQUIRE(r.for_each_pin(collect, cid(7)).ok());
  CHECK(seen == std::vector<std::string>{cid(42), cid(256), cid(300)});
  int visited = 0;
  REQUIRE(r.for_each_pin([&](std::string_view, std::string_view) { return ++visited < 2; }).ok());
  CHECK(visited == 2);
  CHECK(*r.count_pins() == 6);
}

TEST_CASE("a reader sees each newly committed state, from another thread") {
  TempDir dir;
  auto db = open_state(dir.path());
  auto r = reader(db);
  CHECK(*r.count_pins() == 0);
  apply(db, 1, 1, {StateOp::put_pin(cid(1), "a")});
  std::uint64_t count = 0;
  store::AppliedPosition pos;
  std::thread t([&] {
    count = *r.count_pins();
    pos = *r.applied();
  });
  t.join();
  CHECK(count == 1);
  CHECK(pos == store::AppliedPosition{1, 1});
}

TEST_CASE("a scan in progress sees one committed state even while the writer applies") {
  TempDir dir;
  auto db = open_state(dir.path());
  std::vector<StateOp> ops;
  for (int i = 0; i < 100; ++i) ops.push_back(StateOp::put_pin(cid(i), "old"));
  apply(db, 1, 1, ops);
  auto r = reader(db);
  int visited = 0;
  bool saw_new = false;
  Status s = r.for_each_pin([&](std::string_view, std::string_view pin) {
    if (visited == 10) {
      // Change every pin and add one while the scan holds its read snapshot.
      std::vector<StateOp> change;
      for (int i = 0; i < 101; ++i) change.push_back(StateOp::put_pin(cid(i), "new"));
      auto applied = db.apply(2, 1, change);
      REQUIRE(applied.ok());
    }
    if (pin == "new") saw_new = true;
    ++visited;
    return true;
  });
  REQUIRE(s.ok());
  CHECK(visited == 100);
  CHECK(!saw_new);
  CHECK(*r.count_pins() == 101);  // the next read sees the new state
}

TEST_CASE("a snapshot restored into another peer has exactly the original rows and position") {
  TempDir dir;
  auto a = open_state(dir.path() / "a");
  REQUIRE(a.set_cluster_id("cluster-1").ok());
  std::vector<StateOp> ops;
  for (int i = 0; i < 500; ++i)
    ops.push_back(StateOp::put_pin(cid(i), std::string(i % 37, 'x') + std::to_string(i)));
  ops.push_back(StateOp::put_peer("p1", "/ip4/10.0.0.1/tcp/9096"));
  apply_at(a, 10, 2, ops);
  apply(a, 11, 2, {StateOp::delete_pin(cid(3))});

  auto snap = a.create_snapshot(dir.path() / "snap-11.db");
  REQUIRE_MESSAGE(snap.ok(), (snap.ok() ? "" : snap.error().message));
  CHECK(snap->applied == store::AppliedPosition{11, 2});
  CHECK(snap->cluster_id == "cluster-1");
  CHECK(snap->size_bytes > 0);
  // Later changes on the source must not leak into the snapshot taken before them.
  apply(a, 12, 2, {StateOp::put_pin(cid(9999), "after")});

  auto b = open_state(dir.path() / "b");
  apply_at(b, 3, 1, {StateOp::put_pin(cid(7777), "stale"), StateOp::put_peer("gone", "x")});
  auto pos = b.restore_snapshot(dir.path() / "snap-11.db");
  REQUIRE_MESSAGE(pos.ok(), (pos.ok() ? "" : pos.error().message));
  CHECK(*pos == store::AppliedPosition{11, 2});

  auto ra = a.open_reader();
  REQUIRE(ra.ok());
  auto expected = all_pins(*ra);
  expected.erase(cid(9999));
  {
    auto rb = reader(b);
    CHECK(all_pins(rb) == expected);
    CHECK(*rb.peers() == std::vector<store::PeerRecord>{{"p1", "/ip4/10.0.0.1/tcp/9096"}});
  }
  CHECK(*b.cluster_id() == "cluster-1");

  // The restore is on disk: reopening shows the snapshot's state, not the old rows.
  b = open_state(dir.path() / "b");
  auto rb = reader(b);
  CHECK(all_pins(rb) == expected);
  CHECK(*rb.applied() == store::AppliedPosition{11, 2});
  // And the restored database keeps working.
  CHECK(apply(b, 12, 3, {StateOp::put_pin(cid(1), "changed")}));
}

TEST_CASE("restore refuses a snapshot of another cluster and keeps the current state") {
  TempDir dir;
  auto a = open_state(dir.path() / "a");
  REQUIRE(a.set_cluster_id("cluster-1").ok());
  apply(a, 1, 1, {StateOp::put_pin(cid(1), "a")});
  REQUIRE(a.create_snapshot(dir.path() / "s.db").ok());
  auto b = open_state(dir.path() / "b");
  REQUIRE(b.set_cluster_id("cluster-2").ok());
  apply_at(b, 4, 1, {StateOp::put_pin(cid(2), "b")});
  auto r = reader(b);
  auto pos = b.restore_snapshot(dir.path() / "s.db");
  REQUIRE(!pos.ok());
  CHECK(pos.error().message.find("belongs to cluster cluster-1") != std::string::npos);
  CHECK(*b.applied() == store::AppliedPosition{4, 1});
  CHECK(b.get_pin(cid(2))->has_value());
  // A refused restore leaves the open readers reading.
  CHECK(*r.count_pins() == 1);
}

// A listing streams its pages from one reader across io turns (REST `pin ls`), so a snapshot
// from the leader can arrive between two pages; the node has installed it by then, so the
// restore must go ahead, and the listing must end with an error instead of stale rows.
TEST_CASE("a restore ends the readers open between pages: their next read names the replacement") {
  TempDir dir;
  auto a = open_state(dir.path() / "a");
  std::vector<StateOp> ops;
  for (int i = 1000; i < 1050; ++i) ops.push_back(StateOp::put_pin(cid(i), "from-snapshot"));
  ops.push_back(StateOp::put_peer("p1", "/ip4/10.0.0.1/tcp/9096"));
  apply_at(a, 11, 2, ops);
  REQUIRE(a.create_snapshot(dir.path() / "s.db").ok());

  auto b = open_state(dir.path() / "b");
  ops.clear();
  for (int i = 0; i < 300; ++i) ops.push_back(StateOp::put_pin(cid(i), "old"));
  apply_at(b, 5, 1, ops);
  auto listing = reader(b);
  // A reader holding a read transaction (begin_snapshot) would also keep the WAL from being
  // folded into state.db before the swap.
  auto held = reader(b);
  REQUIRE(held.begin_snapshot().ok());
  REQUIRE(held.get_pin(cid(1))->has_value());
  std::string last;
  int first_page = 0;
  REQUIRE(listing
              .for_each_pin([&](std::string_view c, std::string_view) {
                last.assign(c);
                return ++first_page < 100;
              })
              .ok());
  REQUIRE(first_page == 100);

  auto pos = b.restore_snapshot(dir.path() / "s.db");
  REQUIRE_MESSAGE(pos.ok(), (pos.ok() ? "" : pos.error().message));
  CHECK(*pos == store::AppliedPosition{11, 2});
  CHECK(*b.applied() == store::AppliedPosition{11, 2});
  CHECK(!b.get_pin(cid(1))->has_value());
  CHECK(*b.get_pin(cid(1000)) == std::optional<std::string>("from-snapshot"));

  // The next page: an error naming the replacement, and no row of either state.
  int second_page = 0;
  Status s = listing.for_each_pin(
      [&](std::string_view, std::string_view) { return ++second_page > 0; }, last);
  REQUIRE(!s.ok());
  CHECK(s.error().message.find("replaced by a snapshot from the leader") != std::string::npos);
  CHECK(s.error().message.find("list again") != std::string::npos);
  CHECK(second_page == 0);
  // Every read of an ended reader says the same, as often as it is asked.
  CHECK(!listing.for_each_pin([&](std::string_view, std::string_view) { return true; }).ok());
  CHECK(second_page == 0);
  auto pin = held.get_pin(cid(1));
  REQUIRE(!pin.ok());
  CHECK(pin.error().message.find("replaced by a snapshot") != std::string::npos);
  CHECK(!held.count_pins().ok());
  CHECK(!held.peers().ok());
  CHECK(!held.applied().ok());
  CHECK(!held.begin_snapshot().ok());
  CHECK(!held.write_snapshot(dir.path() / "copy.db").ok());

  // A reader opened after the restore reads the snapshot's state.
  auto fresh = reader(b);
  auto pins = all_pins(fresh);
  CHECK(pins.size() == 50);
  CHECK(pins.begin()->first == cid(1000));
  CHECK(*fresh.applied() == store::AppliedPosition{11, 2});
  CHECK(*fresh.peers() == std::vector<store::PeerRecord>{{"p1", "/ip4/10.0.0.1/tcp/9096"}});
  // The writer goes on from the snapshot, and the new reader sees what it applies.
  CHECK(apply(b, 12, 2, {StateOp::put_pin(cid(1), "after")}));
  CHECK(*fresh.count_pins() == 51);
  // A second restore ends the second generation of readers the same way.
  REQUIRE(b.restore_snapshot(dir.path() / "s.db").ok());
  CHECK(!fresh.count_pins().ok());
  CHECK(*reader(b).count_pins() == 50);
}

TEST_CASE("a restore waits for a reader's call in progress on another thread, then ends it") {
  TempDir dir;
  snapshot_at_11(dir.path());
  auto b = open_state(dir.path() / "b");
  std::vector<StateOp> ops;
  for (int i = 0; i < 300; ++i) ops.push_back(StateOp::put_pin(cid(i), "old"));
  apply_at(b, 5, 1, ops);
  auto r = reader(b);

  std::atomic<bool> inside{false};
  std::atomic<bool> last_visit{false};
  std::map<std::string, std::string> page;
  Status first = make_error("not run");
  std::thread t([&] {
    first = r.for_each_pin([&](std::string_view c, std::string_view p) {
      page.emplace(c, p);
      if (!inside.exchange(true)) std::this_thread::sleep_for(std::chrono::milliseconds(200));
      if (page.size() < 150) return true;
      last_visit = true;
      return false;
    });
  });
  while (!inside) std::this_thread::yield();
  auto pos = b.restore_snapshot(dir.path() / "s.db");
  // The page in progress ran to its end before the restore closed the reader's connection.
  CHECK(last_visit);
  t.join();
  REQUIRE_MESSAGE(pos.ok(), (pos.ok() ? "" : pos.error().message));
  CHECK(*pos == store::AppliedPosition{11, 2});
  REQUIRE(first.ok());
  CHECK(page.size() == 150);  // all old rows: the state the page started on
  for (const auto& [c, p] : page) CHECK(p == "old");
  int next_page = 0;
  Status s = r.for_each_pin([&](std::string_view, std::string_view) { return ++next_page > 0; },
                            page.rbegin()->first);
  REQUIRE(!s.ok());
  CHECK(s.error().message.find("replaced by a snapshot") != std::string::npos);
  CHECK(next_page == 0);
  CHECK(*reader(b).count_pins() == 1);
}

TEST_CASE("a restore from inside a reader's own visitor is refused instead of waiting for itself") {
  TempDir dir;
  snapshot_at_11(dir.path());
  auto b = open_state(dir.path() / "b");
  apply_at(b, 5, 1, {StateOp::put_pin(cid(1), "old"), StateOp::put_pin(cid(2), "old")});
  auto r = reader(b);
  Result<store::AppliedPosition> pos = make_error("not run");
  int visited = 0;
  REQUIRE(r.for_each_pin([&](std::string_view, std::string_view) {
             if (visited++ == 0) pos = b.restore_snapshot(dir.path() / "s.db");
             return true;
           }).ok());
  CHECK(visited == 2);  // the walk went on undisturbed
  REQUIRE(!pos.ok());
  CHECK(pos.error().message.find("from inside") != std::string::npos);
  CHECK(*b.applied() == store::AppliedPosition{5, 1});
  CHECK(*r.count_pins() == 2);
  // Out of the visitor the same restore goes ahead.
  REQUIRE(b.restore_snapshot(dir.path() / "s.db").ok());
  CHECK(*reader(b).count_pins() == 1);
}

TEST_CASE("inspect_snapshot refuses a file that is not a state snapshot") {
  TempDir dir;
  auto junk = dir.path() / "junk.db";
  REQUIRE(store::append_snapshot_chunk(junk, 0, std::string(8192, 'z')).ok());
  CHECK(!StateDb::inspect_snapshot(junk).ok());
  CHECK(!StateDb::inspect_snapshot(dir.path() / "missing.db").ok());
}

TEST_CASE("opening state.db for another cluster is refused with the reset command") {
  TempDir dir;
  {
    auto db = open_state(dir.path());
    REQUIRE(db.set_cluster_id("cluster-1").ok());
  }
  auto other = StateDb::open(dir.path(), for_cluster("cluster-2"));
  REQUIRE(!other.ok());
  CHECK(other.error().message.find("clusterpin state cleanup") != std::string::npos);
  CHECK(StateDb::open(dir.path(), for_cluster("cluster-1")).ok());
}

TEST_CASE("a reader writes a consistent snapshot on another thread while the writer applies") {
  TempDir dir;
  auto db = open_state(dir.path() / "a");
  for (int i = 1; i <= 200; ++i)
    apply(db, static_cast<raft::Index>(i), 1, {StateOp::put_pin(cid(i), "p")});
  auto r = reader(db);
  Result<store::StateSnapshot> snap = make_error("not run");
  std::thread t([&] { snap = r.write_snapshot(dir.path() / "s.db"); });
  // Entry i adds pin i, so a consistent copy at applied index N holds exactly N pins.
  for (int i = 201; i <= 400; ++i) {
    auto applied =
        db.apply(static_cast<raft::Index>(i), 1, std::vector{StateOp::put_pin(cid(i), "p")});
    REQUIRE(applied.ok());
  }
  t.join();
  REQUIRE_MESSAGE(snap.ok(), (snap.ok() ? "" : snap.error().message));
  REQUIRE(db.make_durable().ok());
  auto b = open_state(dir.path() / "b");
  auto pos = b.restore_snapshot(dir.path() / "s.db");
  REQUIRE(pos.ok());
  CHECK(pos->index == snap->applied.index);
  CHECK(pos->index >= 200);
  auto rb = reader(b);
  CHECK(*rb.count_pins() == pos->index);
}

TEST_CASE("a snapshot that fails after its copy was written leaves no partial file behind") {
  TempDir dir;
  StateDb db = open_state(dir.path());
  CHECK(apply(db, 1, 1, {StateOp::put_pin(cid(1), "pin")}));
  // The destination is a folder that holds a file: the copy is written, its rename fails.
  auto dest = dir.path() / "snap.db";
  std::filesystem::create_directories(dest / "in-the-way");
  auto snap = db.create_snapshot(dest);
  REQUIRE_FALSE(snap.ok());
  CHECK(snap.error().message.find("cannot rename") != std::string::npos);
  auto tmp = dest;
  tmp += ".tmp";
  CHECK_FALSE(std::filesystem::exists(tmp));  // a full disk would have stayed full
  std::filesystem::remove_all(dest);
  CHECK(db.create_snapshot(dest).ok());
}

TEST_CASE("a received snapshot's mark is read back while state.db stands at it, and not after") {
  TempDir dir;
  StateDb leader = open_state(dir.path() / "a");
  CHECK(apply_at(leader, 7, 3, {StateOp::put_pin(cid(7), "pin")}));
  auto file = dir.path() / "incoming.db";
  REQUIRE(leader.create_snapshot(file).ok());
  raft::SnapshotMeta meta;
  meta.index = 7;
  meta.term = 3;
  meta.conf.voters = {"a", "b", "c"};
  meta.conf.learners = {"d"};
  REQUIRE(StateDb::mark_snapshot(file, meta).ok());

  StateDb follower = open_state(dir.path() / "b");
  CHECK_FALSE(follower.installed_snapshot().value().has_value());  // never restored: no mark
  REQUIRE(follower.restore_snapshot(file).ok());
  auto mark = follower.installed_snapshot();
  REQUIRE_MESSAGE(mark.ok(), (mark.ok() ? "" : mark.error().message));
  REQUIRE(mark->has_value());
  CHECK(**mark == meta);
  // Once an entry is applied after it, the mark no longer describes state.db.
  CHECK(apply(follower, 8, 3, {StateOp::put_pin(cid(8), "pin")}));
  REQUIRE(follower.commit().ok());
  CHECK_FALSE(follower.installed_snapshot().value().has_value());
}
