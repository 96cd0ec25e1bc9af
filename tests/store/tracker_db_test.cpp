// tracker.db: records survive closing and reopening with every field, reads see buffered
// writes, many changes commit in one transaction and coalesce per CID, listings stream in CID
// order (resumable, stoppable), the unsettled listing skips pinned and remote rows (also in a
// file made with the earlier index), the leaving listing pages through the unpins of CIDs that
// left the pinset with the uncommitted changes laid over the rows, and the waiting list is first
// in, first out.
#include <doctest/doctest.h>

#include <algorithm>
#include <random>
#include <string>
#include <vector>

#include <fmt/format.h>

#include "committed_rows.hpp"
#include "store/sqlite_connection.hpp"
#include "store/tracker_db.hpp"
#include "temp_dir.hpp"

using namespace clusterpin;
using clusterpin::store::TrackerDb;
using clusterpin::store::testing::TempDir;

namespace {

Cid cid_n(int n) {
  return Cid::from_content(Codec::raw, as_bytes("tracked " + std::to_string(n)));
}

TrackerRecord record_n(int n, TrackerStatus status) {
  Pin pin(cid_n(n));
  pin.options.name = "pin " + std::to_string(n);
  pin.options.mode = n % 2 == 0 ? PinMode::recursive : PinMode::direct;
  pin.max_depth = n % 2 == 0 ? -1 : 0;
  pin.timestamp = 1000 + n;
  TrackerRecord r(pin);
  r.status = status;
  r.op = TrackerOp::pin;
  r.remote = n % 3 == 0;
  r.priority = n % 5 == 0;
  r.timestamp = 2000 + n;
  r.error = status == TrackerStatus::pin_error ? "ipfs said no to " + std::to_string(n) : "";
  r.attempt_count = n % 7;
  r.next_attempt_at = 3000 + n;
  return r;
}

std::unique_ptr<TrackerDb> open_db(const TempDir& dir) {
  auto db = TrackerDb::open(dir.path());
  REQUIRE(db.ok());
  return std::move(*db);
}

void check_same(const TrackerRecord& a, const TrackerRecord& b) {
  CHECK(a.cid() == b.cid());
  CHECK(encode_pin(a.pin) == encode_pin(b.pin));
  CHECK(a.status == b.status);
  CHECK(a.op == b.op);
  CHECK(a.remote == b.remote);
  CHECK(a.priority == b.priority);
  CHECK(a.timestamp == b.timestamp);
  CHECK(a.error == b.error);
  CHECK(a.attempt_count == b.attempt_count);
  CHECK(a.next_attempt_at == b.next_attempt_at);
}

}  // namespace

TEST_CASE("tracker records survive closing and reopening tracker.db with every field") {
  TempDir dir;
  std::vector<TrackerRecord> saved;
  {
    auto db = open_db(dir);
    for (int i = 0; i < 12; ++i) {
      saved.push_back(record_n(i, static_cast<TrackerStatus>(i % kTrackerStatusCount)));
      db->save(saved.back());
    }
    db->erase(cid_n(4));
    REQUIRE(db->flush_now().ok());
    db->save(record_n(20, TrackerStatus::pinned));  // committed by the destructor
  }
  CHECK(std::filesystem::exists(dir.path() / "tracker.db"));
  auto db = open_db(dir);
  for (const TrackerRecord& r : saved) {
    auto loaded = db->load(r.cid());
    REQUIRE(loaded.ok());
    if (r.cid() == cid_n(4)) {
      CHECK_FALSE(loaded->has_value());
      continue;
    }
    REQUIRE(loaded->has_value());
    check_same(**loaded, r);
  }
  auto last = db->load(cid_n(20));
  REQUIRE(last.ok());
  CHECK(last->has_value());
  CHECK(db->count().value() == 12);
}

TEST_CASE("reads see saves and erases that are not committed yet") {
  TempDir dir;
  auto db = open_db(dir);
  db->save(record_n(1, TrackerStatus::pin_queued));
  CHECK(db->pending() == 1);
  auto r = db->load(cid_n(1));
  REQUIRE(r.ok());
  REQUIRE(r->has_value());
  CHECK((*r)->status == TrackerStatus::pin_queued);
  REQUIRE(db->flush_now().ok());
  db->erase(cid_n(1));
  CHECK_FALSE(db->load(cid_n(1)).value().has_value());
  int seen = 0;
  REQUIRE(db->for_each([&](const TrackerRecord&) { return ++seen, true; }).ok());
  CHECK(seen == 0);
}

TEST_CASE("many changes are committed in batches and changes of one CID coalesce") {
  TempDir dir;
  auto db = open_db(dir);
  // Three status changes of one CID are one row write.
  db->save(record_n(1, TrackerStatus::pin_queued));
  db->save(record_n(1, TrackerStatus::pinning));
  db->save(record_n(1, TrackerStatus::pinned));
  CHECK(db->pending() == 1);

  const int n = 50000;
  std::size_t most_pending = 0;
  for (int i = 100; i < 100 + n; ++i) {
    db->save(record_n(i, TrackerStatus::pinned));
    most_pending = std::max(most_pending, db->pending());
  }
  // The buffer commits itself when full, so memory stays bounded while tracking many pins: at
  // most a full buffer and the batch being committed.
  CHECK(most_pending < 2 * TrackerDb::kMaxPending);
  REQUIRE(db->wait_commit().ok());
  CHECK(db->pending() < TrackerDb::kMaxPending);
  CHECK(store::testing::committed_rows(dir.path() / TrackerDb::kFileName, "tracker") >=
        static_cast<std::int64_t>(n + 1 - TrackerDb::kMaxPending));
  REQUIRE(db->flush_now().ok());
  CHECK(db->pending() == 0);
  CHECK(db->count().value() == static_cast<std::size_t>(n + 1));
  CHECK(db->load(cid_n(1)).value()->status == TrackerStatus::pinned);
}

TEST_CASE("listings stream in CID byte order, resume after a CID and stop when asked") {
  TempDir dir;
  auto db = open_db(dir);
  std::vector<int> order(300);
  for (int i = 0; i < 300; ++i) order[i] = i;
  std::shuffle(order.begin(), order.end(), std::mt19937(7));
  for (int i : order) {
    TrackerStatus s = i % 3 == 0   ? TrackerStatus::pinned
                      : i % 3 == 1 ? TrackerStatus::remote
                                   : TrackerStatus::pin_error;
    db->save(record_n(i, s));
  }
  std::vector<Cid> expected;
  for (int i = 0; i < 300; ++i) expected.push_back(cid_n(i));
  std::sort(expected.begin(), expected.end());

  std::vector<Cid> seen;
  REQUIRE(db->for_each([&](const TrackerRecord& r) {
              seen.push_back(r.cid());
              return true;
            }).ok());
  CHECK(seen == expected);

  std::vector<Cid> rest;
  REQUIRE(db->for_each(
                [&](const TrackerRecord& r) {
                  rest.push_back(r.cid());
                  return true;
                },
                expected[99])
              .ok());
  CHECK(rest == std::vector<Cid>(expected.begin() + 100, expected.end()));

  int visited = 0;
  REQUIRE(db->for_each([&](const TrackerRecord&) { return ++visited < 10; }).ok());
  CHECK(visited == 10);

  std::vector<Cid> unsettled;
  REQUIRE(db->load_active([&](TrackerRecord&& r) {
              CHECK(r.status == TrackerStatus::pin_error);
              unsettled.push_back(r.cid());
              return true;
            }).ok());
  CHECK(unsettled.size() == 100);
  CHECK(std::is_sorted(unsettled.begin(), unsettled.end()));
}

TEST_CASE("a tracker.db made with the earlier unsettled index is opened with the current one") {
  TempDir dir;
  {
    auto db = open_db(dir);
    db->save(record_n(1, TrackerStatus::pinned));
    db->save(record_n(2, TrackerStatus::pin_error));
    db->save(record_n(3, TrackerStatus::remote));
    db->save(record_n(4, TrackerStatus::unpin_queued));
    REQUIRE(db->flush_now().ok());
  }
  // tracker.db through a plain connection, beside TrackerDb.
  auto raw = [&] {
    auto c = store::Connection::open((dir.path() / TrackerDb::kFileName).string(),
                                     store::OpenMode::ReadWrite);
    REQUIRE(c.ok());
    return std::move(*c);
  };
  auto count_index = [&](std::string_view name) {
    auto n = raw().query_text(fmt::format(
        "SELECT count(*) FROM sqlite_schema WHERE type = 'index' AND name = '{}'", name));
    REQUIRE(n.ok());
    return *n;
  };
  // The index as versions before 2026-11-25 created it.
  REQUIRE(raw()
              .exec("DROP INDEX tracker_active; CREATE INDEX tracker_unsettled ON tracker(cid) "
                    "WHERE status NOT IN (3, 7, 9)")
              .ok());
  CHECK(count_index("tracker_unsettled") == "1");
  auto db = open_db(dir);
  CHECK(count_index("tracker_unsettled") == "0");
  CHECK(count_index("tracker_active") == "1");
  std::vector<Cid> unsettled;
  REQUIRE(db->load_active([&](TrackerRecord&& r) {
              unsettled.push_back(r.cid());
              return true;
            }).ok());
  std::vector<Cid> expected = {cid_n(2), cid_n(4)};
  std::sort(expected.begin(), expected.end());
  CHECK(unsettled == expected);
}

TEST_CASE("a pin tracker reopened on tracker.db keeps its statuses") {
  TempDir dir;
  const UnixNanos now = 1800000000LL * 1000000000LL;
  {
    auto db = open_db(dir);
    auto t = PinTracker::open(*db, TrackerLimits{}, now);
    REQUIRE(t.ok());
    Pin a(cid_n(1));
    a.timestamp = now;
    Pin b(cid_n(2));
    b.timestamp = now;
    t->track(a, true, now);
    t->track(b, true, now);
    for (const auto& op : t->next_operations(now))
      t->operation_finished(op.pin.cid, op.id,
                            op.pin.cid == a.cid ? Status() : Status(make_error("refused")), now);
  }
  auto db = open_db(dir);
  auto t = PinTracker::open(*db, TrackerLimits{}, now);
  REQUIRE(t.ok());
  CHECK(t->status(cid_n(1)).value()->status == TrackerStatus::pinned);
  auto b = t->status(cid_n(2)).value();
  REQUIRE(b.has_value());
  CHECK(b->status == TrackerStatus::pin_error);
  CHECK(b->error == "refused");
  CHECK(t->queued_pins() == 1);  // its retry is scheduled again
}


TEST_CASE("load_brief gives the status, operation, remote flag and pin mode and depth that load gives, buffered or not") {
  TempDir dir;
  auto db = open_db(dir);
  for (int n = 0; n < 40; ++n) {
    db->save(record_n(n, n % 2 == 0 ? TrackerStatus::pinned : TrackerStatus::pin_error));
  }
  REQUIRE(db->flush_now().ok());
  db->save(record_n(3, TrackerStatus::unpinning));  // buffered over a committed row
  db->save(record_n(100, TrackerStatus::pinning));  // buffered only
  db->erase(cid_n(4));                              // erased, not committed yet
  TrackerRecord deep = record_n(21, TrackerStatus::pinned);
  deep.pin.max_depth = 7;
  db->save(deep);
  REQUIRE(db->flush_now().ok());
  db->save(record_n(23, TrackerStatus::pinned));  // buffered: direct over the committed direct
  for (int n : {0, 1, 3, 4, 17, 21, 23, 100, 101}) {
    CAPTURE(n);
    auto full = db->load(cid_n(n));
    auto brief = db->load_brief(cid_n(n));
    REQUIRE(full.ok());
    REQUIRE(brief.ok());
    REQUIRE(full->has_value() == brief->has_value());
    if (!full->has_value()) continue;
    CHECK((*brief)->status == (*full)->status);
    CHECK((*brief)->op == (*full)->op);
    CHECK((*brief)->remote == (*full)->remote);
    CHECK((*brief)->form == PinIpfsForm::of((*full)->pin));
  }
  CHECK((*db->load_brief(cid_n(21)))->form == PinIpfsForm{PinMode::direct, 7});
  CHECK((*db->load_brief(cid_n(0)))->form == PinIpfsForm{PinMode::recursive, -1});
  CHECK((*db->load_brief(cid_n(3)))->status == TrackerStatus::unpinning);
  CHECK_FALSE(db->load_brief(cid_n(4))->has_value());
  CHECK_FALSE(db->load_brief(cid_n(101))->has_value());
}

TEST_CASE("lookups between commits share one read transaction, and the next commit ends it") {
  TempDir dir;
  auto db = open_db(dir);
  auto other = store::Connection::open((dir.path() / TrackerDb::kFileName).string(),
                                       store::OpenMode::ReadWrite);
  REQUIRE(other.ok());
  REQUIRE(other->exec("PRAGMA busy_timeout=0").ok());
  // wal_checkpoint(TRUNCATE) answers busy=1 while a reader holds a snapshot that uses the WAL,
  // 0 once none does (it then empties the WAL).
  auto busy = [&] { return other->query_text("PRAGMA wal_checkpoint(TRUNCATE)").value(); };
  for (int n = 0; n < 10; ++n) db->save(record_n(n, TrackerStatus::pinned));
  REQUIRE(db->flush_now().ok());  // the rows are in the WAL
  for (int n = 0; n < 10; ++n) REQUIRE(db->load(cid_n(n)).value().has_value());
  REQUIRE(db->load_brief(cid_n(11)).ok());
  CHECK(busy() == "1");  // the lookups' transaction is still open
  db->save(record_n(20, TrackerStatus::pinned));
  REQUIRE(db->flush_now().ok());
  CHECK(busy() == "0");  // the commit ended it first

  db->save(record_n(21, TrackerStatus::pinned));
  REQUIRE(db->flush_now().ok());
  CHECK(db->load(cid_n(21)).value().has_value());
  CHECK(busy() == "1");
  REQUIRE(db->flush_now().ok());  // nothing to commit: still ends the lookups' transaction
  CHECK(busy() == "0");
}
TEST_CASE("flush commits at once when a batch has gathered; flush_now always") {
  TempDir dir;
  auto db = open_db(dir);
  for (std::size_t i = 0; i < TrackerDb::kFlushBatch; ++i) {
    db->save(record_n(static_cast<int>(i), TrackerStatus::pinned));
  }
  REQUIRE(db->flush().ok());
  CHECK(db->committing());  // handed to the committer; flush does not wait for it
  REQUIRE(db->wait_commit().ok());
  CHECK(db->pending() == 0);
  db->save(record_n(static_cast<int>(TrackerDb::kFlushBatch), TrackerStatus::pinned));
  REQUIRE(db->flush_now().ok());
  CHECK(db->pending() == 0);
  CHECK(db->count().value() == TrackerDb::kFlushBatch + 1);
}

TEST_CASE("the before-commit hook runs before each commit, and its failure keeps the changes buffered") {
  TempDir dir;
  auto db = open_db(dir);
  int calls = 0;
  bool fail = true;
  db->set_before_commit([&]() -> Result<std::uint64_t> {
    ++calls;
    if (fail) return make_error("state.db: commit failed");
    return std::uint64_t{7};
  });
  auto committed_rows = [&] {
    return store::testing::committed_rows(dir.path() / TrackerDb::kFileName, "tracker");
  };
  db->save(record_n(1, TrackerStatus::pinned));
  Status s = db->flush_now();
  CHECK_FALSE(s.ok());
  CHECK(s.error().message == "state.db: commit failed");
  CHECK(calls == 1);
  CHECK(db->pending() == 1);
  CHECK(committed_rows() == 0);
  fail = false;
  REQUIRE(db->flush_now().ok());
  CHECK(calls == 2);
  CHECK(db->pending() == 0);
  CHECK(committed_rows() == 1);
  std::uint64_t commits = db->commits();
  REQUIRE(db->flush_now().ok());  // nothing buffered, the applied index unchanged: no commit
  CHECK(calls == 3);
  CHECK(db->commits() == commits);
}

TEST_CASE("the applied index goes with each commit, also alone once it moved on, and is read back") {
  TempDir dir;
  std::uint64_t applied = 5;
  {
    auto db = open_db(dir);
    CHECK_FALSE(db->applied_index().has_value());  // none recorded yet
    db->set_before_commit([&]() -> Result<std::uint64_t> { return applied; });
    db->save(record_n(1, TrackerStatus::pinned));
    REQUIRE(db->flush_now().ok());
    CHECK(db->applied_index() == std::optional<std::uint64_t>(5));
    applied = 9;  // entries that changed no record here
    std::uint64_t commits = db->commits();
    REQUIRE(db->flush_now().ok());
    CHECK(db->commits() == commits + 1);
    CHECK(db->applied_index() == std::optional<std::uint64_t>(9));
  }
  auto reopened = open_db(dir);
  CHECK(reopened->applied_index() == std::optional<std::uint64_t>(9));
}

TEST_CASE("a commit while an entry's changes are made records the index before that entry") {
  // state.db applied entries 10 to 20 as one batch; the changes of entry 15 fill the buffer and
  // commit it: the changes of 15 to 20 are not all buffered, so a kill now must re-check them.
  TempDir dir;
  auto db = open_db(dir);
  db->set_before_commit([&]() -> Result<std::uint64_t> { return std::uint64_t{20}; });
  db->set_applying(15);
  for (int i = 0; i < static_cast<int>(TrackerDb::kMaxPending); ++i)
    db->save(record_n(i, TrackerStatus::pinned));
  REQUIRE(db->wait_commit().ok());
  REQUIRE(db->flush().ok());  // takes the commit's result
  CHECK(db->applied_index() == std::optional<std::uint64_t>(14));
  db->set_applying(std::nullopt);  // every entry's changes made: the whole batch
  REQUIRE(db->flush_now().ok());
  CHECK(db->applied_index() == std::optional<std::uint64_t>(20));
}

TEST_CASE("a change is pending until a commit that holds it was taken, and commits() counts those") {
  TempDir dir;
  auto db = open_db(dir);
  bool fail = false;
  db->set_before_commit([&]() -> Result<std::uint64_t> {
    if (fail) return make_error("state.db: commit failed");
    return std::uint64_t{1};
  });
  CHECK(db->pending_change(cid_n(1)) == nullptr);
  db->save(record_n(1, TrackerStatus::pinning));
  db->erase(cid_n(2));
  const auto* saved = db->pending_change(cid_n(1));
  REQUIRE(saved != nullptr);
  REQUIRE(saved->has_value());
  CHECK((*saved)->status == TrackerStatus::pinning);
  const auto* erased = db->pending_change(cid_n(2));
  REQUIRE(erased != nullptr);
  CHECK_FALSE(erased->has_value());

  fail = true;  // a commit that did not happen leaves them pending
  CHECK_FALSE(db->flush_now().ok());
  CHECK(db->pending_change(cid_n(1)) != nullptr);
  CHECK(db->commits() == 0);

  fail = false;
  // The save that fills the buffer (the two changes above and these) to kMaxPending hands it
  // to the committer, and nothing takes that commit's result before wait_commit. (Saving more
  // and then calling flush() raced with the committer: a commit already done was reaped there,
  // and the few changes after it were not due.)
  for (std::size_t i = 10; i < 10 + TrackerDb::kMaxPending - 2; ++i)
    db->save(record_n(static_cast<int>(i), TrackerStatus::pinned));
  REQUIRE(db->committing());
  CHECK(db->pending_change(cid_n(1)) != nullptr);  // in the commit under way
  REQUIRE(db->wait_commit().ok());
  CHECK(db->commits() == 1);
  CHECK(db->pending_change(cid_n(1)) == nullptr);
  CHECK(db->pending_change(cid_n(2)) == nullptr);
  db->save(record_n(1, TrackerStatus::pinned));
  CHECK(db->pending_change(cid_n(1)) != nullptr);
}

TEST_CASE("the waiting list pops the oldest CIDs first, sees unflushed pushes and survives reopening") {
  TempDir dir;
  {
    auto db = open_db(dir);
    for (int i = 0; i < 5; ++i) db->push_waiting(cid_n(i));
    CHECK(db->pending() == 5);  // buffered, not committed yet
    auto first = db->pop_waiting(2);
    REQUIRE(first.ok());
    CHECK(*first == std::vector<Cid>{cid_n(0), cid_n(1)});
    db->push_waiting(cid_n(9));
  }  // closed with 2, 3, 4 and 9 waiting (the destructor commits the last push)
  auto db = open_db(dir);
  auto rest = db->pop_waiting(100);
  REQUIRE(rest.ok());
  CHECK(*rest == std::vector<Cid>{cid_n(2), cid_n(3), cid_n(4), cid_n(9)});
  auto none = db->pop_waiting(100);
  REQUIRE(none.ok());
  CHECK(none->empty());
}

TEST_CASE("a commit runs on the committer: lookups and new changes go on meanwhile, and a failed "
          "commit's changes are buffered again behind newer ones") {
  TempDir dir;
  auto db = open_db(dir);
  auto other = store::Connection::open((dir.path() / TrackerDb::kFileName).string(),
                                       store::OpenMode::ReadWrite);
  REQUIRE(other.ok());
  REQUIRE(other->exec("BEGIN IMMEDIATE").ok());  // holds the write lock: the committer waits
  db->save(record_n(1, TrackerStatus::pinning));
  db->save(record_n(2, TrackerStatus::pinned));
  REQUIRE(db->flush().ok());  // the first flush is due at once; it only hands the batch over
  REQUIRE(db->committing());
  auto during = db->load(cid_n(1));  // answered from the batch, without waiting for the commit
  REQUIRE(during.ok());
  REQUIRE(during->has_value());
  CHECK((*during)->status == TrackerStatus::pinning);
  CHECK(db->committing());
  db->save(record_n(1, TrackerStatus::pin_error));  // newer than the batch's change
  CHECK(db->pending() == 3);
  CHECK(db->flush().ok());  // not waiting either: the commit is still under way
  // SQLite gives up after its busy timeout: the batch is buffered again.
  Status failed = db->wait_commit();
  REQUIRE_FALSE(failed.ok());
  CHECK(failed.error().message.find("locked") != std::string::npos);
  CHECK_FALSE(db->committing());
  CHECK(db->pending() == 2);
  CHECK(db->load(cid_n(1)).value()->status == TrackerStatus::pin_error);
  CHECK(db->load(cid_n(2)).value()->status == TrackerStatus::pinned);
  REQUIRE(other->exec("ROLLBACK").ok());
  REQUIRE(db->flush_now().ok());
  CHECK(store::testing::committed_rows(dir.path() / TrackerDb::kFileName, "tracker") == 2);
  auto reopened_db = std::move(db);
  reopened_db.reset();
  auto again = open_db(dir);
  CHECK(again->load(cid_n(1)).value()->status == TrackerStatus::pin_error);
  CHECK(again->load(cid_n(2)).value()->status == TrackerStatus::pinned);
}

namespace {

// An unpin record of cid_n(n): of a CID that left the pinset (remote false) or moved away.
TrackerRecord unpin_n(int n, TrackerStatus status, bool remote = false) {
  TrackerRecord r = record_n(n, status);
  r.op = TrackerOp::unpin;
  r.remote = remote;
  return r;
}

// Every leaving CID through load_leaving, page after page; `pages` counts the calls.
std::vector<Cid> all_leaving(TrackerDb& db, std::size_t max, std::size_t max_scanned, int& pages) {
  std::vector<Cid> out;
  std::optional<Cid> after;
  pages = 0;
  while (true) {
    auto page = db.load_leaving(after, max, max_scanned);
    REQUIRE(page.ok());
    ++pages;
    CHECK(page->cids.size() <= max);
    for (const Cid& cid : page->cids) {
      if (after) CHECK(*after < cid);
      out.push_back(cid);
    }
    if (!page->resume) break;
    if (after) REQUIRE(*after < *page->resume);  // every page moves on
    after = page->resume;
    REQUIRE(pages < 1000);
  }
  return out;
}

}  // namespace

TEST_CASE("load_leaving lists the unpins of CIDs that left the pinset, page by page, with buffered changes") {
  TempDir dir;
  auto db = open_db(dir);
  std::vector<Cid> expected;
  // 300 records: a leaving unpin in each status it can have, and what is not leaving: moves
  // away (remote), pins in every unsettled status, settled rows.
  for (int i = 0; i < 300; ++i) {
    switch (i % 10) {
      case 0: db->save(unpin_n(i, TrackerStatus::unpin_queued)); expected.push_back(cid_n(i)); break;
      case 1: db->save(unpin_n(i, TrackerStatus::unpinning)); expected.push_back(cid_n(i)); break;
      case 2: db->save(unpin_n(i, TrackerStatus::unpin_error)); expected.push_back(cid_n(i)); break;
      case 3: db->save(unpin_n(i, TrackerStatus::unpin_error, true)); break;
      case 4: db->save(unpin_n(i, TrackerStatus::unpin_queued, true)); break;
      case 5: db->save(record_n(i, TrackerStatus::pin_error)); break;
      case 6: db->save(record_n(i, TrackerStatus::pin_queued)); break;
      case 7: db->save(record_n(i, TrackerStatus::pinned)); break;
      case 8: db->save(record_n(i, TrackerStatus::unexpectedly_unpinned)); break;
      default: db->save(record_n(i, TrackerStatus::pinning)); break;
    }
  }
  REQUIRE(db->flush_now().ok());
  // Changes not committed yet count as they are: an unpin that failed since, a new unpin, an
  // unpin that ended (erased) and one moved back into the pinset (now a pin).
  db->save(unpin_n(500, TrackerStatus::unpin_error));
  expected.push_back(cid_n(500));
  db->save(unpin_n(5, TrackerStatus::unpin_queued));  // a pin_error row, now a leaving unpin
  expected.push_back(cid_n(5));
  db->erase(cid_n(10));
  std::erase(expected, cid_n(10));
  TrackerRecord back = unpin_n(20, TrackerStatus::pin_queued);
  back.op = TrackerOp::pin;
  db->save(back);
  std::erase(expected, cid_n(20));
  REQUIRE(db->pending() > 0);
  std::sort(expected.begin(), expected.end());

  int pages = 0;
  auto one_page = db->load_leaving(std::nullopt, 10000, 10000);
  REQUIRE(one_page.ok());
  CHECK(one_page->cids == expected);
  CHECK_FALSE(one_page->resume.has_value());
  CHECK(db->pending() > 0);  // nothing was committed for it

  // At most 7 CIDs a page.
  CHECK(all_leaving(*db, 7, 10000, pages) == expected);
  // (one more when the last full page stopped before records that are not leaving)
  CHECK(pages >= static_cast<int>((expected.size() + 6) / 7));
  CHECK(pages <= static_cast<int>((expected.size() + 6) / 7) + 1);
  // At most 13 records looked at a page: pages may be empty, and still move on.
  CHECK(all_leaving(*db, 10000, 13, pages) == expected);
  CHECK(pages >= 240 / 13);

  // From a given CID: the ones after it.
  auto later = db->load_leaving(expected[4], 10000, 10000);
  REQUIRE(later.ok());
  CHECK(later->cids == std::vector<Cid>(expected.begin() + 5, expected.end()));

  // The same once committed.
  REQUIRE(db->flush_now().ok());
  CHECK(all_leaving(*db, 3, 5, pages) == expected);
}

TEST_CASE("load_leaving of an empty or settled tracker.db is empty and complete") {
  TempDir dir;
  auto db = open_db(dir);
  auto page = db->load_leaving(std::nullopt, 10, 10);
  REQUIRE(page.ok());
  CHECK(page->cids.empty());
  CHECK_FALSE(page->resume.has_value());
  for (int i = 0; i < 50; ++i) db->save(record_n(i, TrackerStatus::pinned));
  REQUIRE(db->flush_now().ok());
  page = db->load_leaving(std::nullopt, 10, 10);
  REQUIRE(page.ok());
  CHECK(page->cids.empty());
  CHECK_FALSE(page->resume.has_value());  // pinned rows are not even looked at
}
