// raft.db: schema, batch application and restart loading (contract in raft_log.hpp).
//
// Tables:
//   entries(idx INTEGER PRIMARY KEY, term, type, data BLOB)  -- one row per log entry
//   hard_state(id = 1, term, vote TEXT, commit_index)          -- at most one row
//   snapshot(id = 1, idx, term, conf BLOB)                     -- at most one row; conf is
//                                                                 conf_state_codec's encoding
//   meta(key, value)                                           -- schema_version, cluster_id
// Raft indexes and terms are uint64 but SQLite integers are int64: values stay below 2^63
// (asserted), which no real log reaches.
#include "store/raft_log.hpp"

#include <fmt/format.h>

#include <charconv>
#include <limits>

#include "store/conf_state_codec.hpp"
#include "store/sqlite_connection.hpp"
#include "store/store_meta.hpp"

namespace clusterpin::store {

namespace {

constexpr const char* kSchema = R"sql(
CREATE TABLE IF NOT EXISTS entries(
  idx INTEGER PRIMARY KEY,
  term INTEGER NOT NULL,
  type INTEGER NOT NULL,
  data BLOB NOT NULL);
CREATE TABLE IF NOT EXISTS hard_state(
  id INTEGER PRIMARY KEY CHECK (id = 1),
  term INTEGER NOT NULL,
  vote TEXT NOT NULL,
  commit_index INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS snapshot(
  id INTEGER PRIMARY KEY CHECK (id = 1),
  idx INTEGER NOT NULL,
  term INTEGER NOT NULL,
  conf BLOB NOT NULL);
)sql";

std::int64_t to_sql(std::uint64_t v) {
  assert(v <= static_cast<std::uint64_t>(std::numeric_limits<std::int64_t>::max()) &&
         "Raft indexes and terms stay below 2^63 so they fit SQLite integers");
  return static_cast<std::int64_t>(v);
}

std::uint64_t from_sql(std::int64_t v) {
  return static_cast<std::uint64_t>(v);
}

Result<raft::EntryType> entry_type_from_sql(std::int64_t v, const std::string& file,
                                            raft::Index index) {
  switch (v) {
    case static_cast<std::int64_t>(raft::EntryType::Normal):
      return raft::EntryType::Normal;
    case static_cast<std::int64_t>(raft::EntryType::Noop):
      return raft::EntryType::Noop;
    case static_cast<std::int64_t>(raft::EntryType::ConfChange):
      return raft::EntryType::ConfChange;
    default:
      return make_error(
          fmt::format("{}: entry {} has unknown type {} (known: 0 normal, 1 noop, 2 conf change)",
                      file, index, v));
  }
}

}  // namespace

struct RaftLog::Impl {
  std::filesystem::path file;
  Connection db;
  Statement insert_entry;
  Statement delete_from;     // idx >= ?1
  Statement delete_through;  // idx <= ?1
  Statement delete_all;
  Statement select_term;
  Statement select_last;
  Statement select_range;
  Statement put_hard_state;
  Statement put_snapshot;
  Statement select_snapshot;

  Result<raft::SnapshotMeta> read_snapshot();
  Result<std::optional<raft::Index>> max_stored_index();
  Status apply_one(const LogBatch& batch);
  Status install_snapshot_meta(const raft::SnapshotMeta& snap);
  Status append_entries(const std::vector<raft::Entry>& entries);
};

RaftLog::RaftLog(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
RaftLog::RaftLog(RaftLog&&) noexcept = default;
RaftLog& RaftLog::operator=(RaftLog&&) noexcept = default;
RaftLog::~RaftLog() = default;

const std::filesystem::path& RaftLog::file() const {
  return impl_->file;
}

Result<RaftLog> RaftLog::open(const std::filesystem::path& data_dir,
                              const LogOpenOptions& options) {
  std::filesystem::path file = data_dir / kFileName;
  if (!options.read_only) {
    std::error_code ec;
    std::filesystem::create_directories(data_dir, ec);
    if (ec)
      return make_error(
          fmt::format("{}: cannot create data folder: {}", data_dir.string(), ec.message()));
  }
  auto db = Connection::open(
      file.string(), options.read_only ? OpenMode::ReadOnly : OpenMode::ReadWrite, options.vfs);
  if (!db) return db.error();

  if (!options.read_only) {
    // WAL: a commit appends to one file and fsyncs it once; readers never block the writer.
    // synchronous=FULL: the WAL is fsynced at every commit, so a commit is durable when it returns.
    auto mode = db->query_text("PRAGMA journal_mode=WAL");
    if (!mode) return mode.error();
    if (*mode != "wal")
      return make_error(fmt::format("{}: cannot switch to WAL mode (journal_mode is \"{}\")",
                                    file.string(), *mode));
    if (Status s = db->exec("PRAGMA synchronous=FULL"); !s) return s.error();
    auto tx = Transaction::begin(*db);
    if (!tx) return tx.error();
    if (Status s = ensure_meta(*db, kSchemaVersion); !s) return s.error();
    if (Status s = db->exec(kSchema); !s) return s.error();
    if (Status s = tx->commit(); !s) return s.error();
  } else {
    if (Status s = check_schema_version(*db, kSchemaVersion); !s) return s.error();
  }
  if (Status s = check_cluster_id(*db, options.expected_cluster_id); !s) return s.error();

  auto prep = [&](const char* sql) { return db->prepare(sql); };
  auto insert_entry = prep("INSERT INTO entries(idx, term, type, data) VALUES(?1, ?2, ?3, ?4)");
  auto delete_from = prep("DELETE FROM entries WHERE idx >= ?1");
  auto delete_through = prep("DELETE FROM entries WHERE idx <= ?1");
  auto delete_all = prep("DELETE FROM entries");
  auto select_term = prep("SELECT term FROM entries WHERE idx = ?1");
  auto select_last = prep("SELECT max(idx) FROM entries");
  auto select_range =
      prep("SELECT idx, term, type, data FROM entries WHERE idx >= ?1 AND idx < ?2 ORDER BY idx");
  auto put_hard_state =
      prep("INSERT OR REPLACE INTO hard_state(id, term, vote, commit_index) VALUES(1, ?1, ?2, ?3)");
  auto put_snapshot =
      prep("INSERT OR REPLACE INTO snapshot(id, idx, term, conf) VALUES(1, ?1, ?2, ?3)");
  auto select_snapshot = prep("SELECT idx, term, conf FROM snapshot WHERE id = 1");
  for (auto* r : {&insert_entry, &delete_from, &delete_through, &delete_all, &select_term,
                  &select_last, &select_range, &put_hard_state, &put_snapshot, &select_snapshot})
    if (!*r) return r->error();

  auto impl = std::unique_ptr<Impl>(
      new Impl{file, std::move(*db), std::move(*insert_entry), std::move(*delete_from),
               std::move(*delete_through), std::move(*delete_all), std::move(*select_term),
               std::move(*select_last), std::move(*select_range), std::move(*put_hard_state),
               std::move(*put_snapshot), std::move(*select_snapshot)});
  return RaftLog(std::move(impl));
}

Result<raft::SnapshotMeta> RaftLog::Impl::read_snapshot() {
  raft::SnapshotMeta snap;
  auto row = select_snapshot.step();
  if (!row) return row.error();
  if (*row) {
    snap.index = from_sql(select_snapshot.column_int(0));
    snap.term = from_sql(select_snapshot.column_int(1));
    auto conf = decode_conf_state(select_snapshot.column_blob(2));
    if (!conf) {
      select_snapshot.reset();
      return make_error(fmt::format("{}: snapshot: {}", file.string(), conf.error().message));
    }
    snap.conf = std::move(*conf);
  }
  select_snapshot.reset();
  return snap;
}

Result<std::optional<raft::Index>> RaftLog::Impl::max_stored_index() {
  auto row = select_last.step();
  if (!row) return row.error();
  std::optional<raft::Index> last;
  if (*row && !select_last.column_is_null(0)) last = from_sql(select_last.column_int(0));
  select_last.reset();
  return last;
}

Status RaftLog::Impl::install_snapshot_meta(const raft::SnapshotMeta& snap) {
  select_term.bind_int(1, to_sql(snap.index));
  auto row = select_term.step();
  if (!row) return row.error();
  bool matches = *row && from_sql(select_term.column_int(0)) == snap.term;
  select_term.reset();
  // Raft §7: an entry with the snapshot's index and term means the log after it is still valid;
  // otherwise the snapshot supersedes the whole log.
  if (!matches)
    if (Status s = delete_all.run(); !s) return s;
  put_snapshot.bind_int(1, to_sql(snap.index));
  put_snapshot.bind_int(2, to_sql(snap.term));
  put_snapshot.bind_blob(3, encode_conf_state(snap.conf));
  return put_snapshot.run();
}

Status RaftLog::Impl::append_entries(const std::vector<raft::Entry>& entries) {
  const raft::Index first = entries.front().index;
  auto snap = read_snapshot();
  if (!snap) return snap.error();
  auto last = max_stored_index();
  if (!last) return last.error();
  const raft::Index end = std::max(last->value_or(0), snap->index);
  // Entries at or below the snapshot index are committed and applied: Raft never rewrites them.
  if (first <= snap->index || first > end + 1)
    return make_error(
        fmt::format("{}: cannot append entries starting at index {}: the log holds ({}, {}] "
                    "after snapshot index {}; the next entry must be in ({}, {}]",
                    file.string(), first, snap->index, end, snap->index, snap->index, end + 1));
  if (first <= end) {  // truncate the conflicting suffix
    delete_from.bind_int(1, to_sql(first));
    if (Status s = delete_from.run(); !s) return s;
  }
  raft::Index expected = first;
  for (const auto& e : entries) {
    assert(e.index == expected && "a batch's entries are contiguous and ascending");
    ++expected;
    insert_entry.bind_int(1, to_sql(e.index));
    insert_entry.bind_int(2, to_sql(e.term));
    insert_entry.bind_int(3, static_cast<std::int64_t>(e.type));
    insert_entry.bind_blob(4, e.data);
    if (Status s = insert_entry.run(); !s) return s;
  }
  return Status::ok_status();
}

Status RaftLog::Impl::apply_one(const LogBatch& batch) {
  if (batch.snapshot)
    if (Status s = install_snapshot_meta(*batch.snapshot); !s) return s;
  if (!batch.entries.empty())
    if (Status s = append_entries(batch.entries); !s) return s;
  if (batch.compact_through) {
    delete_through.bind_int(1, to_sql(*batch.compact_through));
    if (Status s = delete_through.run(); !s) return s;
  }
  if (batch.hard_state) {
    put_hard_state.bind_int(1, to_sql(batch.hard_state->term));
    put_hard_state.bind_text(2, batch.hard_state->vote);
    put_hard_state.bind_int(3, to_sql(batch.hard_state->commit));
    if (Status s = put_hard_state.run(); !s) return s;
  }
  return Status::ok_status();
}

Status RaftLog::apply(const LogBatch& batch) {
  return apply_all(std::span<const LogBatch>(&batch, 1));
}

Status RaftLog::apply_all(std::span<const LogBatch> batches) {
  auto tx = Transaction::begin(impl_->db);
  if (!tx) return tx.error();
  for (const auto& batch : batches)
    if (Status s = impl_->apply_one(batch); !s) return s;  // ~Transaction rolls back
  return tx->commit();
}

Result<raft::DurableState> RaftLog::load() {
  raft::DurableState out;
  // One read transaction so hard state, snapshot and entries are the same point in time.
  if (Status s = impl_->db.exec("BEGIN"); !s) return s.error();
  struct EndRead {
    Connection& db;
    ~EndRead() { (void)db.exec("COMMIT"); }
  } end_read{impl_->db};

  auto hs = impl_->db.prepare("SELECT term, vote, commit_index FROM hard_state WHERE id = 1");
  if (!hs) return hs.error();
  auto row = hs->step();
  if (!row) return row.error();
  if (*row) {
    out.hard.term = from_sql(hs->column_int(0));
    out.hard.vote = std::string(hs->column_text(1));
    out.hard.commit = from_sql(hs->column_int(2));
  }
  auto snap = impl_->read_snapshot();
  if (!snap) return snap.error();
  out.snapshot = std::move(*snap);
  out.applied = out.snapshot.index;

  auto all = entries(0, static_cast<raft::Index>(std::numeric_limits<std::int64_t>::max()));
  if (!all) return all.error();
  out.entries = std::move(*all);

  const std::string file = impl_->file.string();
  if (!out.entries.empty() && out.entries.front().index > out.snapshot.index + 1)
    return make_error(
        fmt::format("{}: log starts at index {} but the snapshot ends at {}: entries are missing",
                    file, out.entries.front().index, out.snapshot.index));
  for (size_t i = 1; i < out.entries.size(); ++i) {
    const auto& prev = out.entries[i - 1];
    const auto& cur = out.entries[i];
    if (cur.index != prev.index + 1)
      return make_error(
          fmt::format("{}: log has a gap between index {} and {}", file, prev.index, cur.index));
    if (cur.term < prev.term)
      return make_error(fmt::format("{}: term decreases from {} at index {} to {} at index {}",
                                    file, prev.term, prev.index, cur.term, cur.index));
  }
  return out;
}

Result<std::vector<raft::Entry>> RaftLog::entries(raft::Index lo, raft::Index hi) {
  std::vector<raft::Entry> out;
  Statement& q = impl_->select_range;
  q.bind_int(1, to_sql(lo));
  q.bind_int(2, to_sql(hi));
  for (;;) {
    auto row = q.step();
    if (!row) return row.error();
    if (!*row) break;
    raft::Entry e;
    e.index = from_sql(q.column_int(0));
    e.term = from_sql(q.column_int(1));
    auto type = entry_type_from_sql(q.column_int(2), impl_->file.string(), e.index);
    if (!type) {
      q.reset();
      return type.error();
    }
    e.type = *type;
    e.data = std::string(q.column_blob(3));
    out.push_back(std::move(e));
  }
  q.reset();
  return out;
}

Result<std::optional<raft::Term>> RaftLog::term_at(raft::Index index) {
  Statement& q = impl_->select_term;
  q.bind_int(1, to_sql(index));
  auto row = q.step();
  if (!row) return row.error();
  std::optional<raft::Term> term;
  if (*row) term = from_sql(q.column_int(0));
  q.reset();
  return term;
}

Result<raft::Index> RaftLog::last_index() {
  auto last = impl_->max_stored_index();
  if (!last) return last.error();
  if (last->has_value()) return **last;
  auto snap = impl_->read_snapshot();
  if (!snap) return snap.error();
  return snap->index;
}

Result<std::string> RaftLog::cluster_id() {
  return read_cluster_id(impl_->db);
}

Result<raft::Index> RaftLog::member_since() {
  auto v = read_meta(impl_->db, "member_since");
  if (!v) return v.error();
  if (!*v) return raft::Index{0};
  raft::Index index = 0;
  auto [end, ec] = std::from_chars(v->value().data(), v->value().data() + v->value().size(), index);
  if (ec != std::errc() || end != v->value().data() + v->value().size()) {
    return make_error(fmt::format("{}: meta member_since \"{}\" is not an index", file().string(), **v));
  }
  return index;
}

Status RaftLog::set_member_since(raft::Index index) {
  return write_meta(impl_->db, "member_since", std::to_string(index));
}

Status RaftLog::set_cluster_id(const std::string& cluster_id) {
  auto tx = Transaction::begin(impl_->db);
  if (!tx) return tx.error();
  if (Status s = fix_cluster_id(impl_->db, cluster_id); !s) return s;
  return tx->commit();
}

}  // namespace clusterpin::store
