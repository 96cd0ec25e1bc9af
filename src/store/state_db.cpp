// state.db: schema, transactional apply, readers, snapshot create/inspect/restore
// (contract in state_db.hpp).
//
// Tables: pins(cid BLOB PRIMARY KEY, pin BLOB) and peers(id TEXT PRIMARY KEY, addrs TEXT), both
// WITHOUT ROWID so rows are stored in key order (streaming 10M pins is one ordered b-tree walk);
// meta(key, value) with schema_version, cluster_id, applied_index and applied_term;
// local_unpins(cid BLOB PRIMARY KEY, pin BLOB), this peer's own (see set_unpin_guard);
// requests(session INTEGER PRIMARY KEY, done_below, seen, last_index): the requests applied per
// proposing session (see StateDb::Request; 64-bit numbers stored as their bits, seen as ranges
// of numbers, each two 8-byte little-endian numbers first and last, in ascending order).
//
// Durability: WAL with synchronous=NORMAL. A commit then writes the WAL without fsync; a power
// loss may drop the newest transactions but never tears one, so the tables always match
// applied_index. What is lost is re-applied from the Raft log, which is the source of truth
// (fsynced at every commit) and still holds every entry above the last durable applied_index,
// because the log is only compacted through a snapshot index, and create_snapshot() first makes
// state.db durable through that index (make_durable: one commit with synchronous=FULL, whose WAL
// fsync covers every earlier frame). This keeps an fsync off the apply path; the checkpoints
// that do fsync run on WalCheckpointer's thread.
#include "store/state_db.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <cassert>
#include <limits>
#include <mutex>
#include <thread>

#include "core/pin_version.hpp"
#include "store/conf_state_codec.hpp"
#include "store/fail_stop.hpp"
#include "store/snapshot_file.hpp"
#include "store/sqlite_connection.hpp"
#include "store/store_meta.hpp"
#include "store/wal_checkpointer.hpp"

namespace clusterpin::store {

namespace {

// Where a restore copies a received snapshot before renaming it over state.db.
std::filesystem::path restore_file(const std::filesystem::path& state_file) {
  std::filesystem::path tmp = state_file;
  tmp += ".restore";
  return tmp;
}

constexpr const char* kSchema = R"sql(
CREATE TABLE IF NOT EXISTS pins(cid BLOB PRIMARY KEY, pin BLOB NOT NULL) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS peers(id TEXT PRIMARY KEY, addrs TEXT NOT NULL) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS local_unpins(cid BLOB PRIMARY KEY, pin BLOB NOT NULL) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS requests(session INTEGER PRIMARY KEY, done_below INTEGER NOT NULL,
                                    seen BLOB NOT NULL, last_index INTEGER NOT NULL);
)sql";

// A request id's numbers come from the proposing peer, any 64-bit value: stored as their bits.
std::int64_t bits_of(std::uint64_t v) { return static_cast<std::int64_t>(v); }
std::uint64_t from_bits(std::int64_t v) { return static_cast<std::uint64_t>(v); }

// The numbers applied of one session: ascending, disjoint ranges [first, last]. Numbers are
// mostly applied in order, so a few ranges hold them all; a gap is a request still open (or
// given up) above the session's done_below.
using SeenRanges = std::vector<std::pair<std::uint64_t, std::uint64_t>>;

std::uint64_t read_u64_le(std::string_view bytes) {
  std::uint64_t v = 0;
  for (int b = 7; b >= 0; --b) v = (v << 8) | static_cast<unsigned char>(bytes[b]);
  return v;
}

void append_u64_le(std::string& out, std::uint64_t v) {
  for (int b = 0; b < 8; ++b) out.push_back(static_cast<char>((v >> (8 * b)) & 0xff));
}

SeenRanges decode_seen(std::string_view blob) {
  SeenRanges seen;
  seen.reserve(blob.size() / 16);
  for (std::size_t at = 0; at + 16 <= blob.size(); at += 16)
    seen.emplace_back(read_u64_le(blob.substr(at, 8)), read_u64_le(blob.substr(at + 8, 8)));
  return seen;
}

std::string encode_seen(const SeenRanges& seen) {
  std::string blob;
  blob.reserve(seen.size() * 16);
  for (const auto& [first, last] : seen) {
    append_u64_le(blob, first);
    append_u64_le(blob, last);
  }
  return blob;
}

// The first range that starts after `n`.
SeenRanges::iterator after(SeenRanges& seen, std::uint64_t n) {
  return std::upper_bound(seen.begin(), seen.end(), n,
                          [](std::uint64_t v, const auto& range) { return v < range.first; });
}

bool contains(SeenRanges& seen, std::uint64_t n) {
  auto next = after(seen, n);
  return next != seen.begin() && n <= std::prev(next)->second;
}

// Adds `n` (not in `seen`), joining the ranges it touches.
void add(SeenRanges& seen, std::uint64_t n) {
  auto next = after(seen, n);
  const bool joins_prev = next != seen.begin() && std::prev(next)->second + 1 == n;
  const bool joins_next = next != seen.end() && n + 1 == next->first;
  if (joins_prev && joins_next) {
    std::prev(next)->second = next->second;
    seen.erase(next);
  } else if (joins_prev) {
    std::prev(next)->second = n;
  } else if (joins_next) {
    next->first = n;
  } else {
    seen.insert(next, {n, n});
  }
}

std::int64_t to_sql(std::uint64_t v) {
  assert(v <= static_cast<std::uint64_t>(std::numeric_limits<std::int64_t>::max()) &&
         "Raft indexes and terms stay below 2^63 so they fit SQLite integers");
  return static_cast<std::int64_t>(v);
}

// Drops the numbers below `floor`.
void drop_below(SeenRanges& seen, std::uint64_t floor) {
  auto keep = std::find_if(seen.begin(), seen.end(), [&](const auto& r) { return r.second >= floor; });
  seen.erase(seen.begin(), keep);
  if (!seen.empty() && seen.front().first < floor) seen.front().first = floor;
}

// Read statements, one set per connection.
struct Queries {
  Statement get_pin;
  Statement each_pin;
  Statement count_pins;
  Statement peers;
  Statement applied;

  static Result<Queries> prepare(Connection& db) {
    auto get_pin = db.prepare("SELECT pin FROM pins WHERE cid = ?1");
    auto each_pin = db.prepare("SELECT cid, pin FROM pins WHERE cid > ?1 ORDER BY cid");
    auto count_pins = db.prepare("SELECT count(*) FROM pins");
    auto peers = db.prepare("SELECT id, addrs FROM peers ORDER BY id");
    auto applied = db.prepare(
        "SELECT (SELECT value FROM meta WHERE key = 'applied_index'), "
        "(SELECT value FROM meta WHERE key = 'applied_term')");
    for (auto* r : {&get_pin, &each_pin, &count_pins, &peers, &applied})
      if (!*r) return r->error();
    return Queries{std::move(*get_pin), std::move(*each_pin), std::move(*count_pins),
                   std::move(*peers), std::move(*applied)};
  }

  Result<std::optional<std::string>> read_pin(std::string_view cid) {
    get_pin.bind_blob(1, cid);
    auto row = get_pin.step();
    if (!row) return row.error();
    std::optional<std::string> pin;
    if (*row) pin = std::string(get_pin.column_blob(0));
    get_pin.reset();
    return pin;
  }

  // One statement is one read transaction: the walk sees a single committed state throughout.
  Status visit_pins(const PinVisitor& visit, std::string_view after) {
    each_pin.bind_blob(1, after);
    for (;;) {
      auto row = each_pin.step();
      if (!row) return row.error();
      if (!*row || !visit(each_pin.column_blob(0), each_pin.column_blob(1))) break;
    }
    each_pin.reset();
    return Status::ok_status();
  }

  Result<std::uint64_t> pin_count() {
    auto row = count_pins.step();
    if (!row) return row.error();
    auto n = static_cast<std::uint64_t>(count_pins.column_int(0));
    count_pins.reset();
    return n;
  }

  Result<std::vector<PeerRecord>> all_peers() {
    std::vector<PeerRecord> out;
    for (;;) {
      auto row = peers.step();
      if (!row) return row.error();
      if (!*row) break;
      out.push_back(
          PeerRecord{std::string(peers.column_text(0)), std::string(peers.column_text(1))});
    }
    peers.reset();
    return out;
  }

  Result<AppliedPosition> applied_position() {
    auto row = applied.step();
    if (!row) return row.error();
    AppliedPosition pos;
    pos.index =
        static_cast<raft::Index>(applied.column_int(0));  // NULL reads as 0: nothing applied
    pos.term = static_cast<raft::Term>(applied.column_int(1));
    applied.reset();
    return pos;
  }
};

// The write connection with its statements.
struct Writer {
  Connection db;
  Queries q;
  Statement insert_pin;  // changes nothing when the CID is in the pinset: then update_pin
  Statement update_pin;
  Statement delete_pin;
  Statement put_peer;
  Statement delete_peer;
  Statement put_applied;
  Statement put_local_unpin;
  Statement drop_local_unpin;
  Statement get_request;
  Statement put_request;
  Statement count_sessions;
  Statement drop_oldest_session;
  // The transaction left open on this connection between calls: none, a shared read one (see
  // StateDb::begin_reads), or one holding applied entries not yet committed (see apply_batch).
  enum class Open : std::uint8_t { none, reads, writes };
  Open open = Open::none;
  std::size_t uncommitted_ops = 0;  // operations applied in the open write transaction
  std::unique_ptr<WalCheckpointer> checkpointer;  // last: stops before the statements and db go

  // A clean close keeps what was applied (a crash leaves it to the Raft log's replay).
  ~Writer() { (void)commit_open(); }

  // Ends the open transaction, if any, committing applied entries. A failed commit of applied
  // entries stops the peer: SQLite may have rolled them back, and the tables would then lag
  // the applied index the caller already acted on (the next apply would skip the gap).
  Status commit_open() {
    const Open was = open;
    if (was == Open::none) return Status::ok_status();
    open = Open::none;
    uncommitted_ops = 0;
    Status s = db.exec("COMMIT");
    if (s) return s;
    if (was == Open::writes) stop_on_storage_failure(s.error());
    (void)db.exec("ROLLBACK");  // a read transaction wrote nothing: ROLLBACK ends it the same
    return Status::ok_status();
  }
  // Rolls the open transaction back (applied entries in it are lost).
  void rollback_open() {
    open = Open::none;
    uncommitted_ops = 0;
    (void)db.exec("ROLLBACK");  // may fail when SQLite already rolled back: nothing left to undo
  }
  // Ends a shared read transaction; applied entries stay uncommitted.
  void end_reads() {
    if (open == Open::reads) (void)commit_open();
  }
  // Opens the group of applied entries unless it is open.
  Status begin_writes() {
    if (open == Open::writes) return Status::ok_status();
    end_reads();
    if (Status s = db.exec("BEGIN IMMEDIATE"); !s) return s;
    open = Open::writes;
    return Status::ok_status();
  }
  // A failed write in the open group rolls it back; when it held applied entries the caller
  // already acted on, the peer stops (the Raft log replays them at the restart).
  Error fail_writes(bool held_earlier, Error e) {
    rollback_open();
    if (held_earlier) stop_on_storage_failure(e);
    return e;
  }
};

// Checkpoint once the WAL holds 64 MiB of 4 KiB pages: large enough that checkpoints are rare
// (pins land on random pages, so a page rewritten by many commits is copied back once; 16 MiB
// was 10% slower through `pin add -` of 1M CIDs), small enough that recovery after a crash
// reads little.
constexpr int kCheckpointFrames = 16384;

Result<std::unique_ptr<Writer>> open_writer(const std::filesystem::path& file,
                                            const StateOpenOptions& options) {
  auto db = Connection::open(file.string(), OpenMode::ReadWrite, options.vfs);
  if (!db) return db.error();
  auto mode = db->query_text("PRAGMA journal_mode=WAL");
  if (!mode) return mode.error();
  if (*mode != "wal")
    return make_error(fmt::format("{}: cannot switch to WAL mode (journal_mode is \"{}\")",
                                  file.string(), *mode));
  if (Status s = db->exec("PRAGMA synchronous=NORMAL"); !s)
    return s.error();  // why: see the file header
  // The pinset b-tree is written at random places (CIDs are hashes): a 64 MiB page cache keeps
  // its inner pages in memory, which made bulk applies 3x faster than SQLite's 2 MiB default.
  if (Status s = db->exec("PRAGMA cache_size=-65536"); !s) return s.error();
  {
    auto tx = Transaction::begin(*db);
    if (!tx) return tx.error();
    if (Status s = ensure_meta(*db, StateDb::kSchemaVersion); !s) return s.error();
    if (Status s = db->exec(kSchema); !s) return s.error();
    if (Status s = tx->commit(); !s) return s.error();
  }
  if (Status s = check_cluster_id(*db, options.expected_cluster_id); !s) return s.error();

  auto q = Queries::prepare(*db);
  if (!q) return q.error();
  auto insert_pin =
      db->prepare("INSERT INTO pins(cid, pin) VALUES(?1, ?2) ON CONFLICT(cid) DO NOTHING");
  auto update_pin = db->prepare("UPDATE pins SET pin = ?2 WHERE cid = ?1");
  auto delete_pin = db->prepare("DELETE FROM pins WHERE cid = ?1");
  auto put_peer = db->prepare(
      "INSERT INTO peers(id, addrs) VALUES(?1, ?2) ON CONFLICT(id) DO UPDATE SET addrs = ?2");
  auto delete_peer = db->prepare("DELETE FROM peers WHERE id = ?1");
  auto put_applied = db->prepare(
      "INSERT INTO meta(key, value) VALUES('applied_index', ?1), ('applied_term', ?2) "
      "ON CONFLICT(key) DO UPDATE SET value = excluded.value");
  auto put_local = db->prepare(
      "INSERT INTO local_unpins(cid, pin) VALUES(?1, ?2) ON CONFLICT(cid) DO UPDATE SET pin = ?2");
  auto drop_local = db->prepare("DELETE FROM local_unpins WHERE cid = ?1");
  auto get_request = db->prepare("SELECT done_below, seen FROM requests WHERE session = ?1");
  auto put_request = db->prepare(
      "INSERT INTO requests(session, done_below, seen, last_index) VALUES(?1, ?2, ?3, ?4) "
      "ON CONFLICT(session) DO UPDATE SET done_below = ?2, seen = ?3, last_index = ?4");
  auto count_sessions = db->prepare("SELECT count(*) FROM requests");
  auto drop_oldest = db->prepare(
      "DELETE FROM requests WHERE session = "
      "(SELECT session FROM requests ORDER BY last_index LIMIT 1)");
  for (auto* r : {&insert_pin, &update_pin, &delete_pin, &put_peer, &delete_peer, &put_applied,
                  &put_local, &drop_local, &get_request, &put_request, &count_sessions,
                  &drop_oldest})
    if (!*r) return r->error();
  auto w = std::unique_ptr<Writer>(new Writer{
      std::move(*db), std::move(*q), std::move(*insert_pin), std::move(*update_pin),
      std::move(*delete_pin), std::move(*put_peer), std::move(*delete_peer),
      std::move(*put_applied), std::move(*put_local), std::move(*drop_local),
      std::move(*get_request), std::move(*put_request), std::move(*count_sessions),
      std::move(*drop_oldest), Writer::Open::none, 0, nullptr});
  auto checkpointer = WalCheckpointer::start(w->db, file.string(), options.vfs, kCheckpointFrames);
  if (!checkpointer) return checkpointer.error();
  w->checkpointer = std::move(*checkpointer);
  return w;
}

// Whether the request of an entry at `index` was applied before, or ended for its proposer
// (below the session's done_below); when not, records it as applied. Same transaction as the
// entry's ops, so the decision replays exactly after a crash.
Result<bool> seen_before(Writer& w, const StateDb::Request& r, raft::Index index) {
  w.get_request.bind_int(1, bits_of(r.session));
  auto row = w.get_request.step();
  if (!row) return row.error();
  const bool known = *row;
  std::uint64_t done_below = 0;
  SeenRanges seen;
  if (known) {
    done_below = from_bits(w.get_request.column_int(0));
    seen = decode_seen(w.get_request.column_blob(1));
  }
  w.get_request.reset();
  if (known && (r.seq < done_below || contains(seen, r.seq))) return true;
  add(seen, r.seq);
  done_below = std::max(done_below, r.done_below);
  drop_below(seen, done_below);
  if (seen.size() > StateDb::kMaxRequestRanges)  // the lowest are forgotten
    seen.erase(seen.begin(), seen.end() - StateDb::kMaxRequestRanges);
  w.put_request.bind_int(1, bits_of(r.session));
  w.put_request.bind_int(2, bits_of(done_below));
  w.put_request.bind_blob(3, encode_seen(seen));
  w.put_request.bind_int(4, to_sql(index));
  if (Status s = w.put_request.run(); !s) return s.error();
  if (known) return false;
  // A new session: the one that proposed least recently goes when there are too many.
  auto count = w.count_sessions.step();
  if (!count) return count.error();
  const auto sessions = static_cast<std::uint64_t>(w.count_sessions.column_int(0));
  w.count_sessions.reset();
  if (sessions > StateDb::kMaxSessions) {
    if (Status s = w.drop_oldest_session.run(); !s) return s.error();
  }
  return false;
}

// Runs one operation; `new_pin` tells whether a PutPin added a CID the pinset did not hold,
// `skipped` that a conditional one (if_version) found another pin, or none, and did nothing.
Status run_op(Writer& w, const StateOp& op, bool& new_pin, bool& skipped,
              std::optional<std::string>& replaced) {
  new_pin = false;
  skipped = false;
  replaced.reset();
  if (op.if_version && (op.kind == StateOp::Kind::PutPin || op.kind == StateOp::Kind::DeletePin)) {
    auto old = w.q.read_pin(op.key);
    if (!old) return old.error();
    if (!*old || pin_version(**old) != *op.if_version) {
      skipped = true;
      return Status::ok_status();
    }
    replaced = std::move(*old);
    Statement& write = op.kind == StateOp::Kind::PutPin ? w.update_pin : w.delete_pin;
    write.bind_blob(1, op.key);
    if (op.kind == StateOp::Kind::PutPin) write.bind_blob(2, op.value);
    return write.run();
  }
  switch (op.kind) {
    case StateOp::Kind::PutPin: {
      assert(!op.key.empty() && "a CID is never empty");
      w.insert_pin.bind_blob(1, op.key);
      w.insert_pin.bind_blob(2, op.value);
      if (Status s = w.insert_pin.run(); !s) return s;
      new_pin = w.db.changes() == 1;
      if (new_pin) return Status::ok_status();
      auto old = w.q.read_pin(op.key);
      if (!old) return old.error();
      replaced = std::move(*old);
      w.update_pin.bind_blob(1, op.key);
      w.update_pin.bind_blob(2, op.value);
      return w.update_pin.run();
    }
    case StateOp::Kind::DeletePin: {
      auto old = w.q.read_pin(op.key);
      if (!old) return old.error();
      replaced = std::move(*old);
      w.delete_pin.bind_blob(1, op.key);
      return w.delete_pin.run();
    }
    case StateOp::Kind::PutPeer:
      assert(!op.key.empty() && "a peer id is never empty");
      w.put_peer.bind_text(1, op.key);
      w.put_peer.bind_text(2, op.value);
      return w.put_peer.run();
    case StateOp::Kind::DeletePeer:
      w.delete_peer.bind_text(1, op.key);
      return w.delete_peer.run();
  }
  return make_error(
      fmt::format("{}: unknown state operation {}", w.db.path(), static_cast<int>(op.kind)));
}

Result<std::vector<LocalUnpin>> read_local_unpins(Connection& db) {
  auto q = db.prepare("SELECT cid, pin FROM local_unpins ORDER BY cid");
  if (!q) return q.error();
  std::vector<LocalUnpin> out;
  for (;;) {
    auto row = q->step();
    if (!row) return row.error();
    if (!*row) break;
    out.push_back({std::string(q->column_blob(0)), std::string(q->column_blob(1))});
  }
  return out;
}

// Makes `rows` the local unpins of the state file `file` (not open elsewhere): a snapshot holds
// those of the peer that took it.
Status replace_local_unpins(const std::filesystem::path& file, const std::vector<LocalUnpin>& rows) {
  auto db = Connection::open(file.string(), OpenMode::ReadWrite);
  if (!db) return db.error();
  auto tx = Transaction::begin(*db);
  if (!tx) return tx.error();
  if (Status s = db->exec(kSchema); !s) return s;  // a snapshot of an older version lacks it
  if (Status s = db->exec("DELETE FROM local_unpins"); !s) return s;
  auto put = db->prepare("INSERT INTO local_unpins(cid, pin) VALUES(?1, ?2)");
  if (!put) return put.error();
  for (const LocalUnpin& row : rows) {
    put->bind_blob(1, row.cid);
    put->bind_blob(2, row.pin);
    if (Status s = put->run(); !s) return s;
  }
  return tx->commit();
}

// VACUUM INTO a temp file, fsync it, rename it to `dest`, fsync the folder, then inspect it.
// VACUUM INTO reads in one read transaction, so the copy is the state at one applied index;
// it does not fsync its output, hence sync_file.
Result<StateSnapshot> write_snapshot_file(Connection& db, const std::filesystem::path& dest) {
  std::filesystem::path tmp = dest;
  tmp += ".tmp";
  std::error_code ec;
  std::filesystem::remove(tmp, ec);  // VACUUM INTO refuses an existing non-empty file
  // A failed copy is removed at once: left behind (a disk filled by VACUUM INTO) it would keep
  // the disk full for the writes that follow.
  auto failed = [&](Error e) -> Error {
    std::filesystem::remove(tmp, ec);
    return e;
  };
  auto vacuum = db.prepare("VACUUM INTO ?1");
  if (!vacuum) return vacuum.error();
  vacuum->bind_text(1, tmp.string());
  if (Status s = vacuum->run(); !s) return failed(s.error());
  if (Status s = sync_file(tmp); !s) return failed(s.error());
  std::filesystem::rename(tmp, dest, ec);
  if (ec)
    return failed(make_error(
        fmt::format("{}: cannot rename to {}: {}", tmp.string(), dest.string(), ec.message())));
  if (Status s = sync_parent_directory(dest); !s) return s.error();
  return StateDb::inspect_snapshot(dest);
}

}  // namespace

// ---- StateReader ----

// The StateDb that opened a reader keeps a weak reference to this, through which a snapshot
// restore closes the reader's connection before the new file replaces state.db: an open read
// transaction would keep the old WAL from being folded in, and a listing would go on streaming
// rows of a state the node no longer has. `m` serialises that with the reader's own calls, which
// may run on another thread.
struct StateReader::Impl {
  struct Open {
    Connection db;
    Queries q;  // declared after db: its statements are finalized before db closes
  };
  std::mutex m;
  std::optional<Open> open;  // nullopt once a restore ended the reader
  std::string file;          // state.db, for the error that follows
  // The thread inside one of this reader's calls, if any: a restore from inside one (from a
  // for_each_pin visitor) would wait for `m` forever, so it is refused instead.
  std::atomic<std::thread::id> caller{};

  Impl(Connection db, Queries q, std::string file)
      : open(Open{std::move(db), std::move(q)}), file(std::move(file)) {}

  // Runs `read` on the connection, or fails with why there is none.
  template <typename Read>
  auto call(Read&& read) -> decltype(read(std::declval<Open&>())) {
    std::lock_guard lock(m);
    if (!open)
      return make_error(fmt::format(
          "{}: the pinset was replaced by a snapshot from the leader while this listing was "
          "streaming; list again",
          file));
    caller = std::this_thread::get_id();
    struct Left {
      std::atomic<std::thread::id>& caller;
      ~Left() { caller = std::thread::id(); }
    } left{caller};
    return read(*open);
  }
};

StateReader::StateReader(std::shared_ptr<Impl> impl) : impl_(std::move(impl)) {}
StateReader::StateReader(StateReader&&) noexcept = default;
StateReader& StateReader::operator=(StateReader&&) noexcept = default;
StateReader::~StateReader() = default;

Result<std::optional<std::string>> StateReader::get_pin(std::string_view cid) {
  return impl_->call([&](Impl::Open& o) { return o.q.read_pin(cid); });
}
Status StateReader::begin_snapshot() {
  return impl_->call([](Impl::Open& o) { return o.db.exec("BEGIN"); });
}
Status StateReader::for_each_pin(const PinVisitor& visit, std::string_view after) {
  return impl_->call([&](Impl::Open& o) { return o.q.visit_pins(visit, after); });
}
Result<std::uint64_t> StateReader::count_pins() {
  return impl_->call([](Impl::Open& o) { return o.q.pin_count(); });
}
Result<std::vector<PeerRecord>> StateReader::peers() {
  return impl_->call([](Impl::Open& o) { return o.q.all_peers(); });
}
Result<AppliedPosition> StateReader::applied() {
  return impl_->call([](Impl::Open& o) { return o.q.applied_position(); });
}
Result<StateSnapshot> StateReader::write_snapshot(const std::filesystem::path& dest) {
  return impl_->call([&](Impl::Open& o) { return write_snapshot_file(o.db, dest); });
}

// ---- StateDb ----

struct StateDb::Impl {
  std::filesystem::path file;
  StateOpenOptions options;
  UnpinGuard unpin_guard;  // see set_unpin_guard
  std::unique_ptr<Writer> w;  // null only after a restore failed to reopen the new file
  // The readers opened here; expired entries are readers already gone.
  std::vector<std::weak_ptr<StateReader::Impl>> readers;

  Result<Writer*> writer() {
    if (!w)
      return make_error(fmt::format("{}: closed after a failed snapshot restore; restart the peer",
                                    file.string()));
    return w.get();
  }
  // The writer with no transaction open: shared reads end and applied entries are committed.
  Result<Writer*> writer_committed() {
    auto wr = writer();
    if (!wr) return wr;
    if (Status s = (*wr)->commit_open(); !s) return s.error();
    return wr;
  }

  // Whether this thread is inside a call of one of the open readers (see restore_snapshot).
  bool reader_call_on_this_thread() const {
    const std::thread::id self = std::this_thread::get_id();
    for (const auto& weak : readers) {
      if (auto r = weak.lock(); r && r->caller.load() == self) return true;
    }
    return false;
  }
  // Closes every open reader's connection, each after its call in progress (on another thread)
  // returns; their later calls fail (see StateReader::Impl::call).
  void end_readers() {
    for (const auto& weak : readers) {
      if (auto r = weak.lock()) {
        std::lock_guard lock(r->m);
        r->open.reset();
      }
    }
    readers.clear();
  }
};

StateDb::StateDb(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
StateDb::StateDb(StateDb&&) noexcept = default;
StateDb& StateDb::operator=(StateDb&&) noexcept = default;
StateDb::~StateDb() = default;

const std::filesystem::path& StateDb::file() const {
  return impl_->file;
}

Result<StateDb> StateDb::open(const std::filesystem::path& data_dir,
                              const StateOpenOptions& options) {
  std::error_code ec;
  std::filesystem::create_directories(data_dir, ec);
  if (ec)
    return make_error(
        fmt::format("{}: cannot create data folder: {}", data_dir.string(), ec.message()));
  auto impl = std::make_unique<Impl>();
  impl->file = data_dir / kFileName;
  impl->options = options;
  // The private copy of a restore that a stop interrupted before its rename (the rename is
  // what installs it; state.db is whole until then): nothing reads it again.
  if (Status s = remove_database_file(restore_file(impl->file)); !s) return s.error();
  auto w = open_writer(impl->file, options);
  if (!w) return w.error();
  impl->w = std::move(*w);
  return StateDb(std::move(impl));
}

Result<bool> StateDb::apply(raft::Index index, raft::Term term, std::span<const StateOp> ops) {
  const Entry entry{index, term, std::vector<StateOp>(ops.begin(), ops.end())};
  auto applied = apply_batch(std::span<const Entry>(&entry, 1));
  if (!applied) return applied.error();
  if (Status s = commit(); !s) return s.error();
  return (*applied)[0].now;
}

Result<std::vector<StateDb::Applied>> StateDb::apply_batch(std::span<const Entry> entries) {
  auto w = impl_->writer();
  if (!w) return w.error();
  Writer& wr = **w;
  if (Status s = wr.begin_writes(); !s) return s.error();
  // A failure below rolls the transaction back. When it held only this call's entries nothing
  // changed, as the contract says; when it also held earlier calls' entries, which the caller
  // acted on, the peer stops (and replays them from the Raft log at its restart).
  const bool held_earlier = wr.uncommitted_ops > 0;
  auto fail = [&](Error e) -> Error { return wr.fail_writes(held_earlier, std::move(e)); };
  const auto& guard = impl_->unpin_guard;
  auto pos = wr.q.applied_position();
  if (!pos) return fail(pos.error());
  std::vector<Applied> applied(entries.size());
  AppliedPosition last = *pos;
  for (std::size_t i = 0; i < entries.size(); ++i) {
    const Entry& e = entries[i];
    if (e.index <= last.index) continue;  // already in the tables: replay after a restart
    // The entries after the applied one, each once and in order: a gap would be entries this
    // file never holds (a caller's bug or a log that lost entries), and is refused.
    if (e.index != last.index + 1)
      return fail(make_error(fmt::format(
          "state.db: entry {} does not follow the applied entry {} (entries {}-{} are missing)",
          e.index, last.index, last.index + 1, e.index - 1)));
    applied[i].new_pins.resize(e.ops.size());
    applied[i].replaced.resize(e.ops.size());
    applied[i].skipped.resize(e.ops.size());
    if (e.request) {
      auto dup = seen_before(wr, *e.request, e.index);
      if (!dup) return fail(dup.error());
      applied[i].duplicate = *dup;
    }
    for (std::size_t k = 0; k < e.ops.size(); ++k) {
      if (applied[i].duplicate) {
        applied[i].skipped[k] = true;
        continue;
      }
      bool new_pin = false, skipped = false;
      if (Status s = run_op(wr, e.ops[k], new_pin, skipped, applied[i].replaced[k]); !s)
        return fail(s.error());
      const auto& replaced = applied[i].replaced[k];
      if (replaced && guard && guard(e.ops[k].key, *replaced)) {
        wr.put_local_unpin.bind_blob(1, e.ops[k].key);
        wr.put_local_unpin.bind_blob(2, *replaced);
        if (Status s = wr.put_local_unpin.run(); !s) return fail(s.error());
      }
      applied[i].new_pins[k] = new_pin;
      applied[i].skipped[k] = skipped;
    }
    wr.uncommitted_ops += e.ops.size() + 1;
    last = {e.index, e.term};
    applied[i].now = true;
  }
  if (last == *pos) return applied;
  wr.put_applied.bind_int(1, to_sql(last.index));
  wr.put_applied.bind_int(2, to_sql(last.term));
  if (Status s = wr.put_applied.run(); !s) return fail(s.error());
  if (wr.uncommitted_ops >= kMaxUncommittedOps) {
    if (Status s = wr.commit_open(); !s) return s.error();
  }
  return applied;
}

Status StateDb::commit() {
  auto w = impl_->writer();
  if (!w) return w.error();
  if ((*w)->open != Writer::Open::writes) return Status::ok_status();
  return (*w)->commit_open();
}

bool StateDb::has_uncommitted() const {
  return impl_->w && impl_->w->open == Writer::Open::writes;
}

Result<std::optional<std::string>> StateDb::get_pin(std::string_view cid) {
  auto w = impl_->writer();
  if (!w) return w.error();
  return (*w)->q.read_pin(cid);
}

void StateDb::set_unpin_guard(UnpinGuard guard) {
  impl_->unpin_guard = std::move(guard);
}

Result<std::vector<LocalUnpin>> StateDb::local_unpins() {
  auto w = impl_->writer();
  if (!w) return w.error();
  return read_local_unpins((*w)->db);
}

Status StateDb::forget_local_unpins(std::span<const std::string> cids) {
  if (cids.empty()) return Status::ok_status();
  auto w = impl_->writer();
  if (!w) return w.error();
  Writer& wr = **w;
  if (Status s = wr.begin_writes(); !s) return s;
  const bool held_earlier = wr.uncommitted_ops > 0;
  for (const std::string& cid : cids) {
    wr.drop_local_unpin.bind_blob(1, cid);
    if (Status s = wr.drop_local_unpin.run(); !s) return wr.fail_writes(held_earlier, s.error());
  }
  wr.uncommitted_ops += cids.size();
  return Status::ok_status();
}

Status StateDb::begin_reads() {
  auto w = impl_->writer();
  if (!w) return w.error();
  if ((*w)->open != Writer::Open::none) return {};  // reads see the open writes too
  if (Status s = (*w)->db.exec("BEGIN"); !s) return s;
  (*w)->open = Writer::Open::reads;
  return {};
}

void StateDb::end_reads() {
  if (impl_->w) impl_->w->end_reads();
}

Result<AppliedPosition> StateDb::applied() {
  auto w = impl_->writer();
  if (!w) return w.error();
  return (*w)->q.applied_position();
}

Result<StateReader> StateDb::open_reader() {
  // Another connection sees committed transactions only: commit what was applied, so a reader
  // shows every entry applied before it opened (a listing right after a pin includes it).
  if (auto w = impl_->writer_committed(); !w) return w.error();
  auto db = Connection::open(impl_->file.string(), OpenMode::ReadOnly, impl_->options.vfs);
  if (!db) return db.error();
  auto q = Queries::prepare(*db);
  if (!q) return q.error();
  std::erase_if(impl_->readers, [](const auto& weak) { return weak.expired(); });
  auto reader =
      std::make_shared<StateReader::Impl>(std::move(*db), std::move(*q), impl_->file.string());
  impl_->readers.push_back(reader);
  return StateReader(std::move(reader));
}

Result<std::string> StateDb::cluster_id() {
  auto w = impl_->writer();
  if (!w) return w.error();
  return read_cluster_id((*w)->db);
}

Status StateDb::set_cluster_id(const std::string& cluster_id) {
  auto w = impl_->writer_committed();
  if (!w) return w.error();
  auto tx = Transaction::begin((*w)->db);
  if (!tx) return tx.error();
  if (Status s = fix_cluster_id((*w)->db, cluster_id); !s) return s;
  return tx->commit();
}

Status StateDb::make_durable() {
  auto w = impl_->writer_committed();
  if (!w) return w.error();
  Connection& db = (*w)->db;
  auto pos = (*w)->q.applied_position();
  if (!pos) return pos.error();
  // A commit under synchronous=FULL fsyncs the WAL file, and with it every frame written before.
  if (Status s = db.exec("PRAGMA synchronous=FULL"); !s) return s;
  Status result = [&]() -> Status {
    auto tx = Transaction::begin(db);
    if (!tx) return tx.error();
    if (Status s = write_meta(db, "durable_index", std::to_string(pos->index)); !s) return s;
    // A failed fsync may have dropped earlier commits' pages (synchronous=NORMAL wrote them
    // unsynced) and cleared the error: a retry could "succeed" without them, and the snapshot
    // and log compaction that follow would rest on entries no longer on disk.
    if (Status s = tx->commit(); !s) stop_on_storage_failure(s.error());
    return Status::ok_status();
  }();
  if (Status s = db.exec("PRAGMA synchronous=NORMAL"); !s && result) return s;
  return result;
}

Result<StateSnapshot> StateDb::create_snapshot(const std::filesystem::path& dest) {
  auto w = impl_->writer();
  if (!w) return w.error();
  if (Status s = make_durable(); !s) return s.error();
  return write_snapshot_file((*w)->db, dest);
}

Result<StateSnapshot> StateDb::inspect_snapshot(const std::filesystem::path& file) {
  std::error_code ec;
  if (!std::filesystem::is_regular_file(file, ec))
    return make_error(fmt::format("{}: snapshot file does not exist", file.string()));
  StateSnapshot out;
  out.size_bytes = std::filesystem::file_size(file, ec);
  auto db = Connection::open(file.string(), OpenMode::ReadOnly);
  if (!db) return db.error();
  auto check = db->query_text("PRAGMA quick_check");
  if (!check) return check.error();
  if (*check != "ok")
    return make_error(fmt::format("{}: not a valid snapshot: SQLite quick_check says \"{}\"",
                                  file.string(), *check));
  auto tables = db->query_text(
      "SELECT count(*) FROM sqlite_schema WHERE type = 'table' AND name IN ('pins', 'peers', "
      "'meta')");
  if (!tables) return tables.error();
  if (*tables != "3")
    return make_error(fmt::format(
        "{}: not a clusterpin state snapshot (tables pins, peers, meta expected)", file.string()));
  if (Status s = check_schema_version(*db, kSchemaVersion); !s) return s.error();
  auto cluster = read_cluster_id(*db);
  if (!cluster) return cluster.error();
  out.cluster_id = std::move(*cluster);
  auto q = Queries::prepare(*db);
  if (!q) return q.error();
  auto pos = q->applied_position();
  if (!pos) return pos.error();
  out.applied = *pos;
  return out;
}

Status StateDb::mark_snapshot(const std::filesystem::path& file, const raft::SnapshotMeta& meta) {
  auto db = Connection::open(file.string(), OpenMode::ReadWrite);
  if (!db) return db.error();
  // The file is a standalone copy (VACUUM INTO, no WAL): a FULL commit makes the mark durable.
  if (Status s = db->exec("PRAGMA synchronous=FULL"); !s) return s;
  auto put = db->prepare("INSERT INTO meta(key, value) VALUES('snapshot_index', ?1), ('snapshot_term', ?2), "
                         "('snapshot_conf', ?3) ON CONFLICT(key) DO UPDATE SET value = excluded.value");
  if (!put) return put.error();
  put->bind_int(1, static_cast<std::int64_t>(meta.index));
  put->bind_int(2, static_cast<std::int64_t>(meta.term));
  const std::string conf = encode_conf_state(meta.conf);
  put->bind_blob(3, conf);
  return put->run();
}

Result<std::optional<raft::SnapshotMeta>> StateDb::installed_snapshot() {
  auto pos = applied();
  if (!pos) return pos.error();
  auto db = Connection::open(file().string(), OpenMode::ReadOnly);
  if (!db) return db.error();
  auto get = db->prepare("SELECT (SELECT value FROM meta WHERE key = 'snapshot_index'), "
                         "(SELECT value FROM meta WHERE key = 'snapshot_term'), "
                         "(SELECT value FROM meta WHERE key = 'snapshot_conf')");
  if (!get) return get.error();
  auto row = get->step();
  if (!row) return row.error();
  if (!*row || get->column_blob(2).empty()) return std::optional<raft::SnapshotMeta>();
  raft::SnapshotMeta meta;
  meta.index = static_cast<raft::Index>(get->column_int(0));
  meta.term = static_cast<raft::Term>(get->column_int(1));
  if (meta.index != pos->index || meta.term != pos->term) return std::optional<raft::SnapshotMeta>();
  auto conf = decode_conf_state(get->column_blob(2));
  if (!conf) return make_error(fmt::format("{}: the mark of its snapshot: {}", file().string(), conf.error().message));
  meta.conf = std::move(*conf);
  return std::optional<raft::SnapshotMeta>(std::move(meta));
}

Result<AppliedPosition> StateDb::restore_snapshot(const std::filesystem::path& src,
                                                  std::optional<AppliedPosition> expected) {
  auto w = impl_->writer_committed();
  if (!w) return w.error();
  const std::string file = impl_->file.string();
  if (impl_->reader_call_on_this_thread())
    return make_error(
        fmt::format("{}: cannot restore a snapshot from inside a call of one of its readers on the "
                    "same thread (the restore would wait for that call to end); restore after it "
                    "returns",
                    file));
  auto info = inspect_snapshot(src);
  if (!info) return info.error();
  auto ours = read_cluster_id((*w)->db);
  if (!ours) return ours.error();
  if (!ours->empty() && !info->cluster_id.empty() && *ours != info->cluster_id)
    return other_cluster_error(src.string(), info->cluster_id, *ours);
  if (expected && info->applied != *expected)
    return make_error(fmt::format(
        "{}: the snapshot holds the state at entry {} (term {}), not at entry {} (term {}) as its "
        "Raft snapshot says; not restored",
        src.string(), info->applied.index, info->applied.term, expected->index, expected->term));

  // 1. A durable private copy next to state.db, so the rename below is atomic (same folder),
  //    with this peer's local unpins in place of the sender's.
  auto local = read_local_unpins((*w)->db);
  if (!local) return local.error();
  std::filesystem::path tmp = restore_file(impl_->file);
  // A journal a kill left beside an earlier copy must not be rolled back into this one.
  if (Status s = remove_database_file(tmp); !s) return s.error();
  std::error_code ec;
  std::filesystem::copy_file(src, tmp, std::filesystem::copy_options::overwrite_existing, ec);
  if (ec)
    return make_error(fmt::format("{}: cannot copy snapshot to {}: {}", src.string(), tmp.string(),
                                  ec.message()));
  if (Status s = replace_local_unpins(tmp, *local); !s) return s.error();
  if (Status s = sync_file(tmp); !s) return s.error();

  // 2. Fold the WAL into state.db and close it. The old -wal must not survive next to the new
  //    file: SQLite would replay its frames onto the restored database. The readers end first:
  //    the Raft node has already installed the snapshot, so the restore cannot wait for a
  //    listing that holds one for minutes, and a read transaction of theirs would make the
  //    checkpoint below return busy. So does a checkpoint in progress: the background
  //    checkpointer stops too.
  impl_->end_readers();
  (*w)->checkpointer.reset();
  {
    auto ckpt = (*w)->db.prepare("PRAGMA wal_checkpoint(TRUNCATE)");
    if (!ckpt) return ckpt.error();
    auto row = ckpt->step();
    if (!row) return row.error();
    const bool busy = *row && ckpt->column_int(0) != 0;
    if (busy) {
      auto restarted =
          WalCheckpointer::start((*w)->db, file, impl_->options.vfs, kCheckpointFrames);
      if (restarted) (*w)->checkpointer = std::move(*restarted);
      return make_error(fmt::format("{}: cannot restore a snapshot: the database is busy", file));
    }
  }  // the statement is finalized here, before its connection closes
  impl_->w.reset();
  for (const char* suffix : {"-wal", "-shm"}) {
    std::filesystem::path side = impl_->file.string() + suffix;
    std::filesystem::remove(side, ec);
    if (std::filesystem::exists(side))
      return make_error(
          fmt::format("{}: cannot remove it before restoring a snapshot: {}; restart the peer",
                      side.string(), ec.message()));
  }

  // 3. Swap in the new file; until the rename the old state is complete on disk.
  std::filesystem::rename(tmp, impl_->file, ec);
  if (ec)
    return make_error(fmt::format("{}: cannot rename to {}: {}", tmp.string(), file, ec.message()));
  if (Status s = sync_parent_directory(impl_->file); !s) return s.error();

  StateOpenOptions reopen = impl_->options;
  reopen.expected_cluster_id.clear();  // checked above against the snapshot itself
  auto reopened = open_writer(impl_->file, reopen);
  if (!reopened) return reopened.error();
  impl_->w = std::move(*reopened);
  return impl_->w->q.applied_position();
}

}  // namespace clusterpin::store
