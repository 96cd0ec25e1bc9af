// The durable Raft log of one peer: entries, hard state (term, vote, commit) and snapshot metadata
// in one SQLite database, `raft.db` in the data folder, in WAL mode with synchronous=FULL. A
// LogBatch (what one Raft Ready asks to persist) is applied in one transaction, so after any crash
// either all of a batch is on disk or none of it. apply() returning OK means it is durable.
// The cluster id is fixed once in the meta table; opening for another cluster is refused. The
// meta table also holds the index this peer joined at (member_since).
#pragma once

#include <filesystem>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "core/raft/types.hpp"
#include "core/result.hpp"

namespace clusterpin::store {

// One unit of writing, applied in this order inside one transaction:
//  1. `snapshot`: record the metadata of an installed or locally taken snapshot. When the log
//     holds no entry with the snapshot's index and term, the whole log is superseded and deleted
//     (Raft §7); otherwise entries are kept (trailing entries serve slow followers).
//  2. `entries` (ascending, contiguous): the first one at index i deletes every stored entry
//     >= i first (Raft truncation of a conflicting suffix), then all are inserted.
//  3. `compact_through`: delete entries with index <= it (log compaction after a snapshot).
//  4. `hard_state`: replace the stored hard state.
struct LogBatch {
  std::optional<raft::HardState> hard_state;
  std::vector<raft::Entry> entries;
  std::optional<raft::SnapshotMeta> snapshot;
  std::optional<raft::Index> compact_through;

  bool empty() const { return !hard_state && entries.empty() && !snapshot && !compact_through; }
};

struct LogOpenOptions {
  // When non-empty and a different cluster id is stored, open() is refused.
  std::string expected_cluster_id;
  // SQLite VFS name; empty is SQLite's default. Tests register fault-injecting VFSes.
  std::string vfs;
  // Read-only: no schema is created and apply() fails. For readers on another thread.
  bool read_only = false;
};

class RaftLog {
 public:
  static constexpr const char* kFileName = "raft.db";
  static constexpr int kSchemaVersion = 1;

  // Opens (creating the folder and the database when missing) `data_dir`/raft.db.
  static Result<RaftLog> open(const std::filesystem::path& data_dir,
                              const LogOpenOptions& options = {});

  RaftLog(RaftLog&&) noexcept;
  RaftLog& operator=(RaftLog&&) noexcept;
  ~RaftLog();

  // Everything the core needs after a restart: hard state, snapshot metadata and all stored
  // entries in index order (contiguous; they may begin at or before snapshot.index when trailing
  // entries were kept). `applied` is set to snapshot.index: the caller raises it to the state
  // machine's applied index (StateDb::applied). Fails on a gap or a decreasing term (corruption).
  Result<raft::DurableState> load();

  // One transaction for `batch`. OK means committed and fsynced. On error nothing of the batch is
  // acknowledged; the caller (LogWriter) must stop the peer rather than retry.
  Status apply(const LogBatch& batch);
  // One transaction for all of `batches`, applied in order (group commit).
  Status apply_all(std::span<const LogBatch> batches);

  // Entries with lo <= index < hi that are stored (fewer when compacted or not yet written).
  Result<std::vector<raft::Entry>> entries(raft::Index lo, raft::Index hi);
  // Term of the stored entry at `index`, or nullopt when none is stored there.
  Result<std::optional<raft::Term>> term_at(raft::Index index);
  // Highest stored entry index, or the snapshot index when the log is empty.
  Result<raft::Index> last_index();

  // Empty when no cluster id has been fixed yet.
  Result<std::string> cluster_id();
  // Fixes the cluster id (at bootstrap); the same id again is fine, a different one is refused.
  Status set_cluster_id(const std::string& cluster_id);

  // The log index this peer joined the cluster at (the leader's AddLearner entry), recorded by a
  // joining peer before its log holds anything; 0 when none was recorded (a founding peer).
  // Removals of this peer at or before it are from an earlier membership, replayed.
  Result<raft::Index> member_since();
  Status set_member_since(raft::Index index);

  const std::filesystem::path& file() const;

 private:
  struct Impl;
  explicit RaftLog(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace clusterpin::store
