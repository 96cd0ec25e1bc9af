// The SQLite side of the tracker (see tracker_db.hpp): schema, buffered writes committed in one
// transaction, and streaming reads in CID order. Unsettled rows (anything but pinned, remote,
// unpinned) are also in a partial index, so loading them at start does not read pinned rows.
#include "store/tracker_db.hpp"

#include <cassert>
#include <string_view>
#include <tuple>
#include <utility>

#include <fmt/format.h>

#include "core/pin.hpp"
#include "store/wal_checkpointer.hpp"

namespace clusterpin::store {

namespace {

// Status numbers 3 (pinned), 7 (unpinned) and 9 (remote): the settled ones (see TrackerStatus).
// Written as three comparisons, not `status NOT IN (3, 7, 9)`: SQLite builds a temporary b-tree
// for an IN list each time a statement evaluates it, and a partial index's condition is
// evaluated by every write of the table (two such b-trees per INSERT OR REPLACE, one per
// DELETE; 1.5-1.9 us of a 23 us row write). Earlier versions created the index that way,
// under the old name, dropped below.
constexpr std::string_view kUnsettled = "status != 3 AND status != 7 AND status != 9";
constexpr const char* kSchema = R"sql(
CREATE TABLE IF NOT EXISTS tracker (
  cid BLOB PRIMARY KEY NOT NULL,
  status INTEGER NOT NULL,
  op INTEGER NOT NULL,
  remote INTEGER NOT NULL,
  priority INTEGER NOT NULL,
  timestamp INTEGER NOT NULL,
  error TEXT NOT NULL,
  attempt_count INTEGER NOT NULL,
  next_attempt_at INTEGER NOT NULL,
  pin BLOB NOT NULL
) WITHOUT ROWID;
DROP INDEX IF EXISTS tracker_unsettled;
CREATE INDEX IF NOT EXISTS tracker_active ON tracker(cid) WHERE {unsettled};
CREATE TABLE IF NOT EXISTS waiting (
  seq INTEGER PRIMARY KEY,
  cid BLOB NOT NULL
);
CREATE TABLE IF NOT EXISTS meta (
  key TEXT PRIMARY KEY NOT NULL,
  value INTEGER NOT NULL
) WITHOUT ROWID;
PRAGMA user_version = 1;
)sql";

constexpr const char* kColumns =
    "cid, status, op, remote, priority, timestamp, error, attempt_count, next_attempt_at, pin";

// 64 MiB of 4 KiB pages, as for state.db.
constexpr int kCheckpointFrames = 16384;

// The status and operation columns of a row, checked against what the enums hold.
Result<std::pair<TrackerStatus, TrackerOp>> status_and_op(const std::string& db_path,
                                                          const Cid& cid, std::int64_t status,
                                                          std::int64_t op) {
  if (status < 0 || status >= kTrackerStatusCount || op < 0 || op > 2)
    return make_error(fmt::format(
        "{}: the tracker row of {} has status {} and operation {}; accepted: status 0-{}, "
        "operation 0-2",
        db_path, cid.to_string(), status, op, kTrackerStatusCount - 1));
  return std::pair{static_cast<TrackerStatus>(status), static_cast<TrackerOp>(op)};
}

std::string hex(std::string_view bytes) {
  std::string out;
  for (unsigned char c : bytes) out += fmt::format("{:02x}", c);
  return out;
}

}  // namespace

TrackerDb::TrackerDb(Connection db, Queries q) : db_(std::move(db)), q_(std::move(q)) {}

Result<std::unique_ptr<TrackerDb>> TrackerDb::open(const std::filesystem::path& data_folder) {
  std::string path = (data_folder / kFileName).string();
  auto db = Connection::open(path, OpenMode::ReadWrite);
  if (!db) return db.error();
  auto mode = db->query_text("PRAGMA journal_mode=WAL");
  if (!mode) return mode.error();
  if (*mode != "wal")
    return make_error(
        fmt::format("{}: cannot switch to WAL mode (journal_mode is \"{}\")", path, *mode));
  // NORMAL: no fsync per commit; see the header for why losing the last commits is acceptable.
  if (Status s = db->exec("PRAGMA synchronous=NORMAL"); !s) return s.error();
  // CIDs are hashes, so rows land at random places: a 32 MiB page cache keeps the b-tree's inner
  // pages in memory (with SQLite's 2 MiB default, tracking 200k fresh pins read most pages back
  // from the kernel for every lookup and insert; the inner pages of 10M rows take about 11 MB).
  if (Status s = db->exec("PRAGMA cache_size=-32768"); !s) return s.error();
  if (Status s = db->exec(fmt::format(kSchema, fmt::arg("unsettled", kUnsettled))); !s)
    return s.error();

  auto prepare = [&](const std::string& sql) { return db->prepare(sql); };
  auto put = prepare(
      fmt::format("INSERT OR REPLACE INTO tracker ({}) VALUES (?,?,?,?,?,?,?,?,?,?)", kColumns));
  auto del = prepare("DELETE FROM tracker WHERE cid = ?");
  auto get = prepare(fmt::format("SELECT {} FROM tracker WHERE cid = ?", kColumns));
  auto get_brief = prepare("SELECT status, op, remote, pin FROM tracker WHERE cid = ?");
  auto active = prepare(fmt::format(
      "SELECT {} FROM tracker INDEXED BY tracker_active WHERE {} ORDER BY cid", kColumns,
      kUnsettled));
  auto all = prepare(fmt::format("SELECT {} FROM tracker ORDER BY cid", kColumns));
  auto all_after = prepare(fmt::format("SELECT {} FROM tracker WHERE cid > ? ORDER BY cid", kColumns));
  auto wait_push = prepare("INSERT INTO waiting (cid) VALUES (?)");
  auto wait_first = prepare("SELECT seq, cid FROM waiting ORDER BY seq LIMIT ?");
  auto wait_drop = prepare("DELETE FROM waiting WHERE seq <= ?");
  auto index_put = prepare("INSERT OR REPLACE INTO meta (key, value) VALUES ('applied_index', ?)");
  auto index_get = prepare("SELECT value FROM meta WHERE key = 'applied_index'");
  // An empty blob sorts before every CID: bound to it, the query starts at the lowest.
  auto leaving = prepare(fmt::format(
      "SELECT cid, status, op, remote FROM tracker INDEXED BY tracker_active WHERE {} AND cid > ? "
      "ORDER BY cid",
      kUnsettled));
  for (auto* st : {&put, &del, &get, &get_brief, &active, &all, &all_after, &wait_push,
                   &wait_first, &wait_drop, &index_put, &index_get, &leaving})
    if (!*st) return st->error();
  std::optional<std::uint64_t> recorded;
  {
    auto row = index_get->step();
    if (!row) return row.error();
    if (*row) recorded = static_cast<std::uint64_t>(index_get->column_int(0));
    index_get->reset();
  }
  auto tracker = std::unique_ptr<TrackerDb>(new TrackerDb(
      std::move(*db),
      Queries{std::move(*put), std::move(*del), std::move(*get), std::move(*get_brief),
              std::move(*active), std::move(*all), std::move(*all_after), std::move(*wait_push),
              std::move(*wait_first), std::move(*wait_drop), std::move(*index_put),
              std::move(*leaving)}));
  tracker->recorded_index_ = recorded;
  // Checkpoints off the io thread (they were a quarter of its CPU while pins streamed in).
  auto checkpointer = WalCheckpointer::start(tracker->db_, path, "", kCheckpointFrames);
  if (!checkpointer) return checkpointer.error();
  tracker->checkpointer_ = std::move(*checkpointer);
  tracker->committer_ = std::thread([t = tracker.get()] { t->commit_loop(); });
  return tracker;
}

TrackerDb::~TrackerDb() {
  (void)flush_now();
  {
    std::lock_guard lock(mu_);
    stopping_ = true;
  }
  cv_.notify_all();
  if (committer_.joinable()) committer_.join();
}

std::size_t TrackerDb::pending() const {
  std::size_t n = buffered();
  if (in_flight_) n += committing_.changes.size() + committing_.waiting.size();
  return n;
}

const std::optional<TrackerRecord>* TrackerDb::pending_change(const Cid& cid) const {
  if (auto it = pending_.find(cid); it != pending_.end()) return &it->second;
  if (!in_flight_) return nullptr;
  // Read while the committer writes the same map: both only read it.
  auto it = committing_.changes.find(cid);
  return it != committing_.changes.end() ? &it->second : nullptr;
}

void TrackerDb::save(const TrackerRecord& record) {
  pending_.insert_or_assign(record.cid(), record);
  flush_if_full();
}

void TrackerDb::erase(const Cid& cid) {
  pending_.insert_or_assign(cid, std::nullopt);
  flush_if_full();
}

void TrackerDb::push_waiting(const Cid& cid) {
  waiting_.push_back(cid);
  flush_if_full();
}

Result<std::vector<Cid>> TrackerDb::pop_waiting(std::size_t max) {
  // The table holds the older pushes, waiting_ the newer ones not committed yet: the table is
  // read first and only the popped rows are deleted (the buffered record changes stay buffered).
  reap(true);
  end_read();
  std::vector<Cid> out;
  if (max == 0) return out;
  auto tx = Transaction::begin(db_);
  if (!tx) return tx.error();
  q_.wait_first.bind_int(1, static_cast<std::int64_t>(std::min<std::size_t>(max, INT64_MAX)));
  std::int64_t last = 0;
  std::size_t rows = 0;
  Status result;
  while (true) {
    auto row = q_.wait_first.step();
    if (!row) {
      result = row.error();
      break;
    }
    if (!*row) break;
    ++rows;
    last = q_.wait_first.column_int(0);
    std::string_view bytes = q_.wait_first.column_blob(1);
    // A row that is not a CID cannot be pinned: dropped with the others (the startup reconcile
    // would find its pin anyway).
    if (auto cid = Cid::from_bytes(as_bytes(bytes))) out.push_back(std::move(cid).value());
  }
  q_.wait_first.reset();
  if (!result) return result.error();
  if (last != 0) {
    q_.wait_drop.bind_int(1, last);
    if (Status s = q_.wait_drop.run(); !s) return s.error();
    if (Status s = tx->commit(); !s) return s.error();
  }
  std::size_t from_buffer = std::min(max - rows, waiting_.size());
  out.insert(out.end(), waiting_.begin(), waiting_.begin() + static_cast<std::ptrdiff_t>(from_buffer));
  waiting_.erase(waiting_.begin(), waiting_.begin() + static_cast<std::ptrdiff_t>(from_buffer));
  return out;
}

void TrackerDb::flush_if_full() {
  if (buffered() < kMaxPending) return;
  reap(true);
  Status s = start_commit();
  if (!s && !deferred_error_) deferred_error_ = s.error();
}

Status TrackerDb::flush() {
  if (!reap(false)) return Status::ok_status();  // the timer or the next burst comes back
  bool due = deferred_error_ || buffered() >= kFlushBatch ||
             std::chrono::steady_clock::now() - last_commit_ >= kFlushInterval;
  if (!due) return Status::ok_status();
  return start_commit();
}

Status TrackerDb::flush_now() {
  reap(true);  // a failed commit buffers its changes again: they are retried now
  if (Status s = start_commit(); !s) return s;
  reap(true);
  return take_deferred_error();
}

Status TrackerDb::take_deferred_error() {
  if (!deferred_error_) return Status::ok_status();
  Error e = std::move(*deferred_error_);
  deferred_error_.reset();
  return e;
}

Status TrackerDb::wait_commit() {
  reap(true);
  if (!deferred_error_) return Status::ok_status();
  return *deferred_error_;
}

bool TrackerDb::reap(bool block) {
  if (!in_flight_) return true;
  std::optional<Error> failed;
  {
    std::unique_lock lock(mu_);
    if (!block && handed_) return false;
    cv_.wait(lock, [&] { return !handed_; });
    failed = std::move(commit_error_);
    commit_error_.reset();
  }
  in_flight_ = false;
  if (failed) {
    // Buffered again; a newer change of the same CID, made during the commit, wins.
    for (auto& [cid, change] : committing_.changes) pending_.try_emplace(cid, std::move(change));
    waiting_.insert(waiting_.begin(), committing_.waiting.begin(), committing_.waiting.end());
    if (!deferred_error_) deferred_error_ = std::move(*failed);
  } else {
    ++commits_;
    if (committing_.applied_index) recorded_index_ = committing_.applied_index;
  }
  committing_ = Batch{};
  return true;
}

Status TrackerDb::start_commit() {
  assert(!in_flight_);
  end_read();
  std::optional<std::uint64_t> index;
  if (before_commit_) {
    auto applied = before_commit_();
    if (!applied) return applied.error();
    index = *applied;
    if (applying_ && *applying_ > 0) index = std::min(*index, *applying_ - 1);
  }
  // Nothing buffered: a commit only when the applied index moved on (never without a hook), so
  // that a restart after a kill does not re-check entries that changed nothing here.
  if (buffered() == 0 && (!index || index == recorded_index_)) return take_deferred_error();
  deferred_error_.reset();  // what failed is retried now
  committing_.applied_index = index;
  committing_.changes = std::move(pending_);
  committing_.waiting = std::move(waiting_);
  pending_.clear();
  waiting_.clear();
  in_flight_ = true;
  last_commit_ = std::chrono::steady_clock::now();
  {
    std::lock_guard lock(mu_);
    handed_ = true;
  }
  cv_.notify_all();
  return Status::ok_status();
}

void TrackerDb::commit_loop() {
  std::unique_lock lock(mu_);
  while (true) {
    cv_.wait(lock, [&] { return handed_ || stopping_; });
    if (!handed_) return;  // stopping, nothing handed
    lock.unlock();
    Status s = write_batch();
    lock.lock();
    if (!s) commit_error_ = s.error();
    handed_ = false;
    cv_.notify_all();
  }
}

Status TrackerDb::write_batch() {
  auto tx = Transaction::begin(db_);
  if (!tx) return tx.error();
  for (const Cid& cid : committing_.waiting) {
    q_.wait_push.bind_blob(1, as_chars(cid.bytes()));
    if (Status s = q_.wait_push.run(); !s) return s;
  }
  for (const auto& [cid, change] : committing_.changes) {
    if (!change) {
      q_.del.bind_blob(1, as_chars(cid.bytes()));
      if (Status s = q_.del.run(); !s) return s;
      continue;
    }
    const TrackerRecord& r = *change;
    q_.put.bind_blob(1, as_chars(cid.bytes()));
    q_.put.bind_int(2, static_cast<std::int64_t>(r.status));
    q_.put.bind_int(3, static_cast<std::int64_t>(r.op));
    q_.put.bind_int(4, r.remote ? 1 : 0);
    q_.put.bind_int(5, r.priority ? 1 : 0);
    q_.put.bind_int(6, r.timestamp);
    q_.put.bind_text(7, r.error);
    q_.put.bind_int(8, r.attempt_count);
    q_.put.bind_int(9, r.next_attempt_at);
    q_.put.bind_blob(10, encode_pin(r.pin));
    if (Status s = q_.put.run(); !s) return s;
  }
  if (committing_.applied_index) {
    q_.index_put.bind_int(1, static_cast<std::int64_t>(*committing_.applied_index));
    if (Status s = q_.index_put.run(); !s) return s;
  }
  return tx->commit();
}

Status TrackerDb::begin_read() {
  if (reading_) return Status::ok_status();
  if (Status s = db_.exec("BEGIN"); !s) return s;
  reading_ = true;
  return Status::ok_status();
}

void TrackerDb::end_read() {
  if (!reading_) return;
  reading_ = false;
  // A read transaction wrote nothing: if COMMIT fails, ROLLBACK ends it the same.
  if (!db_.exec("COMMIT")) (void)db_.exec("ROLLBACK");
}

Result<TrackerRecord> TrackerDb::read_row(const Statement& row) const {
  std::string_view key = row.column_blob(0);
  auto pin = decode_pin(row.column_blob(9));
  if (!pin)
    return make_error(fmt::format("{}: the tracker row of CID bytes {} holds an unreadable pin: {}",
                                  db_.path(), hex(key), pin.error().message));
  TrackerRecord r(std::move(*pin));
  if (as_chars(r.cid().bytes()) != key)
    return make_error(fmt::format("{}: the tracker row of CID bytes {} holds the pin of {}",
                                  db_.path(), hex(key), r.cid().to_string()));
  auto checked = status_and_op(db_.path(), r.cid(), row.column_int(1), row.column_int(2));
  if (!checked) return checked.error();
  std::tie(r.status, r.op) = *checked;
  r.remote = row.column_int(3) != 0;
  r.priority = row.column_int(4) != 0;
  r.timestamp = row.column_int(5);
  r.error = std::string(row.column_text(6));
  r.attempt_count = row.column_int(7);
  r.next_attempt_at = row.column_int(8);
  return r;
}

template <typename T, typename Decode>
Result<std::optional<T>> TrackerDb::point_read(Statement& q, const Cid& cid, Decode&& decode) {
  if (Status s = begin_read(); !s) return s.error();
  q.bind_blob(1, as_chars(cid.bytes()));
  auto row = q.step();
  std::optional<T> out;
  Status failed = row ? Status::ok_status() : Status(row.error());
  if (row && *row) {
    auto decoded = decode(q);
    if (decoded) out = std::move(*decoded);
    else failed = decoded.error();
  }
  q.reset();
  if (!failed) return failed.error();
  return out;
}

const std::optional<TrackerRecord>* TrackerDb::buffered(const Cid& cid) {
  if (const auto* change = pending_change(cid)) return change;
  reap(true);  // the row is read from the connection, which the committer holds until then
  return nullptr;
}

Result<std::optional<TrackerRecord>> TrackerDb::load(const Cid& cid) {
  if (const auto* change = buffered(cid)) return *change;
  return point_read<TrackerRecord>(q_.get, cid, [&](const Statement& q) { return read_row(q); });
}

Result<std::optional<TrackerStore::Brief>> TrackerDb::load_brief(const Cid& cid) {
  if (const auto* change = buffered(cid)) {
    if (!*change) return std::optional<Brief>();
    return std::optional<Brief>(Brief::of(**change));
  }
  return point_read<Brief>(q_.get_brief, cid, [&](const Statement& q) -> Result<Brief> {
    auto checked = status_and_op(db_.path(), cid, q.column_int(0), q.column_int(1));
    if (!checked) return checked.error();
    auto form = stored_pin_ipfs_form(q.column_blob(3));
    if (!form)
      return make_error(fmt::format("{}: the tracker row of {} holds an unreadable pin: {}",
                                    db_.path(), cid.to_string(), form.error().message));
    return Brief{checked->first, checked->second, q.column_int(2) != 0, *form};
  });
}

Status TrackerDb::load_active(const std::function<bool(TrackerRecord&&)>& visit) {
  // Streams read committed rows: commit what is buffered first so reads see every change.
  if (Status s = flush_now(); !s) return s;
  Status result;
  while (true) {
    auto row = q_.active.step();
    if (!row) {
      result = row.error();
      break;
    }
    if (!*row) break;
    auto r = read_row(q_.active);
    if (!r) {
      result = r.error();
      break;
    }
    if (!visit(std::move(*r))) break;
  }
  q_.active.reset();
  return result;
}

Result<TrackerStore::LeavingPage> TrackerDb::load_leaving(const std::optional<Cid>& after,
                                                          std::size_t max,
                                                          std::size_t max_scanned) {
  // After reap, every change tracker.db lacks is in pending_ (a failed commit's too); a change
  // there wins over the row, and an erase hides it.
  reap(true);
  if (Status s = begin_read(); !s) return s.error();
  Statement& q = q_.leaving;
  q.bind_blob(1, after ? as_chars(after->bytes()) : std::string_view());
  auto change = after ? pending_.upper_bound(*after) : pending_.begin();
  // The current row of the query (nullopt once it ran out) and whether it is leaving.
  std::optional<Cid> row_cid;
  bool row_leaving = false;
  auto next_row = [&]() -> Status {
    auto row = q.step();
    if (!row) return row.error();
    row_cid.reset();
    if (!*row) return Status::ok_status();
    auto cid = Cid::from_bytes(as_bytes(q.column_blob(0)));
    if (!cid)
      return make_error(fmt::format("{}: a tracker row's key is not a CID (bytes {}): {}",
                                    db_.path(), hex(q.column_blob(0)), cid.error().message));
    auto checked = status_and_op(db_.path(), *cid, q.column_int(1), q.column_int(2));
    if (!checked) return checked.error();
    row_leaving = is_leaving(checked->first, checked->second, q.column_int(3) != 0);
    row_cid = std::move(cid).value();
    return Status::ok_status();
  };
  LeavingPage page;
  std::size_t scanned = 0;
  std::optional<Cid> last;
  Status result = next_row();
  while (result) {
    const bool from_buffer =
        change != pending_.end() && (!row_cid || !(*row_cid < change->first));
    if (!from_buffer && !row_cid) break;  // both ran out
    if (page.cids.size() >= max || scanned >= max_scanned) {
      page.resume = last;  // more records follow
      break;
    }
    ++scanned;
    if (from_buffer) {
      last = change->first;
      if (change->second && is_leaving(*change->second)) page.cids.push_back(change->first);
      if (row_cid && *row_cid == change->first) result = next_row();  // the change wins
      ++change;
    } else {
      last = row_cid;
      if (row_leaving) page.cids.push_back(*row_cid);
      result = next_row();
    }
  }
  q.reset();
  if (!result) return result.error();
  return page;
}

Status TrackerDb::for_each(const std::function<bool(const TrackerRecord&)>& visit,
                           const std::optional<Cid>& after) {
  if (Status s = flush_now(); !s) return s;
  Statement& stmt = after ? q_.all_after : q_.all;
  if (after) stmt.bind_blob(1, as_chars(after->bytes()));
  Status result;
  while (true) {
    auto row = stmt.step();
    if (!row) {
      result = row.error();
      break;
    }
    if (!*row) break;
    auto r = read_row(stmt);
    if (!r) {
      result = r.error();
      break;
    }
    if (!visit(*r)) break;
  }
  stmt.reset();
  return result;
}

Result<std::size_t> TrackerDb::count() {
  if (Status s = flush_now(); !s) return s.error();
  auto n = db_.query_text("SELECT count(*) FROM tracker");
  if (!n) return n.error();
  return static_cast<std::size_t>(std::stoull(*n));
}

}  // namespace clusterpin::store
