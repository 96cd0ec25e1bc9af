// The pinset state machine's storage: `state.db` in the data folder holds the pins, the peers and
// the position of the last applied Raft entry. The domain layer decides what the bytes mean; this
// file only stores them. apply() changes rows AND applied_index in one transaction, so after any
// crash the tables are exactly the state after applied_index: replaying the log from there is
// exact, and an entry already applied is skipped (idempotent replay).
// Snapshots are consistent copies of the whole file at applied_index; restore swaps one in
// atomically.
#pragma once

#include <atomic>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "core/raft/types.hpp"
#include "core/request_id.hpp"
#include "core/result.hpp"

namespace clusterpin::store {

// One change to the state tables. Keys and values are opaque bytes (pins) or text (peers).
struct StateOp {
  enum class Kind : std::uint8_t { PutPin, DeletePin, PutPeer, DeletePeer };
  Kind kind;
  std::string key;    // pin: CID bytes; peer: peer id
  std::string value;  // pin: encoded pin; peer: addresses; empty for deletes
  // PutPin/DeletePin: applied only if the stored pin has this pin_version (see
  // core/pin_version.hpp); otherwise skipped, changing nothing.
  std::optional<std::uint64_t> if_version = std::nullopt;

  static StateOp put_pin(std::string cid, std::string pin) {
    return {Kind::PutPin, std::move(cid), std::move(pin)};
  }
  static StateOp delete_pin(std::string cid) { return {Kind::DeletePin, std::move(cid), {}}; }
  static StateOp put_peer(std::string id, std::string addrs) {
    return {Kind::PutPeer, std::move(id), std::move(addrs)};
  }
  static StateOp delete_peer(std::string id) { return {Kind::DeletePeer, std::move(id), {}}; }
};

// The last Raft entry whose effect is in the tables (0/0: nothing applied yet).
struct AppliedPosition {
  raft::Index index = 0;
  raft::Term term = 0;
  bool operator==(const AppliedPosition&) const = default;
};

struct PeerRecord {
  std::string id;
  std::string addrs;
  bool operator==(const PeerRecord&) const = default;
};

// A snapshot file as checked by inspect_snapshot(): the state after applying entry `applied`.
struct StateSnapshot {
  AppliedPosition applied;
  std::string cluster_id;
  std::uint64_t size_bytes = 0;
};

// Called per pin in CID byte order; return false to stop early.
using PinVisitor = std::function<bool(std::string_view cid, std::string_view pin)>;

// Read-only view of state.db on its own connection. WAL gives each read statement a consistent
// snapshot of the last committed state, so a reader on another thread never sees half an entry
// and never blocks apply(). One thread at a time may use a reader; open one per thread.
// StateDb::restore_snapshot ends every open reader (a listing may hold one for minutes, and a
// snapshot from the leader cannot wait for it): from then on each read fails with an error that
// says the pinset was replaced, and a new reader sees the new state. A call in progress on
// another thread finishes first (the restore waits for it), so a read never sees the swap.
class StateReader {
 public:
  StateReader(StateReader&&) noexcept;
  StateReader& operator=(StateReader&&) noexcept;
  ~StateReader();

  Result<std::optional<std::string>> get_pin(std::string_view cid);
  // Makes every read that follows share one read transaction until the reader is closed: one
  // consistent view, and SQLite's file locks taken once instead of per statement (for many
  // get_pin calls in a row). Not with write_snapshot, which needs no transaction open.
  Status begin_snapshot();
  // Streams pins with CID > `after` (all when empty) in CID order without loading them all:
  // resume a long listing by passing the last CID seen.
  Status for_each_pin(const PinVisitor& visit, std::string_view after = {});
  Result<std::uint64_t> count_pins();
  Result<std::vector<PeerRecord>> peers();
  Result<AppliedPosition> applied();

  // Writes a consistent copy of the last committed state to `dest` durably, like
  // StateDb::create_snapshot but without blocking the applying thread (a 10M-pin copy takes
  // seconds). It does NOT make state.db itself durable: before compacting the Raft log through
  // the returned index, call StateDb::make_durable() on the applying thread.
  Result<StateSnapshot> write_snapshot(const std::filesystem::path& dest);

 private:
  friend class StateDb;
  struct Impl;
  explicit StateReader(std::shared_ptr<Impl> impl);
  // Shared with the opening StateDb's list of weak references, through which a restore ends it.
  std::shared_ptr<Impl> impl_;
};

// An unpin the pin tracker may not have recorded yet (see StateDb::set_unpin_guard).
struct LocalUnpin {
  std::string cid;  // CID bytes
  std::string pin;  // the encoded pin the entry removed or replaced
  bool operator==(const LocalUnpin&) const = default;
};

struct StateOpenOptions {
  std::string expected_cluster_id;  // refused when a different one is stored; empty accepts any
  std::string vfs;                  // SQLite VFS; empty is the default
};

// The writer of state.db. Owned and used by one thread (the one applying committed entries).
class StateDb {
 public:
  static constexpr const char* kFileName = "state.db";
  static constexpr int kSchemaVersion = 1;

  static Result<StateDb> open(const std::filesystem::path& data_dir,
                              const StateOpenOptions& options = {});
  StateDb(StateDb&&) noexcept;
  StateDb& operator=(StateDb&&) noexcept;
  ~StateDb();

  // Applies `ops` as entry (index, term) with the applied position and commits. Returns false,
  // changing nothing, when index <= applied index (already applied: replay after restart).
  Result<bool> apply(raft::Index index, raft::Term term, std::span<const StateOp> ops);

  // Applies several entries, in index order, with the applied position, in a transaction left
  // open: later calls add to it, and it commits at commit(), when it holds kMaxUncommittedOps
  // operations, or before anything that needs committed state (a reader, a snapshot, a close).
  // Reads on this connection (get_pin, applied) see the uncommitted entries. Fewer, larger
  // commits write each page the pins land on once per commit instead of once per batch. A crash
  // loses the uncommitted entries together with their applied position, and the Raft log, which
  // still holds every entry above the durable applied index, replays them at the restart.
  // Entries at or below the applied index are skipped; the others must follow it one by one
  // (an entry after a gap is refused: this file would never hold the missing ones). Returns, per entry, whether it was
  // applied now, which of its PutPin ops added a CID the pinset did not hold (the pin
  // tracker needs no record lookup for those), and the pin each other PutPin or DeletePin
  // replaced or removed (the tracker unpins a pin that moved away from its peer). On failure nothing of this call is applied;
  // when the open transaction also held earlier calls' entries the process stops (see
  // fail_stop.hpp), since their effects were already acted on.
  // Who proposed an entry (core/request_id.hpp): an entry whose request was applied
  // before, in an earlier entry, changes nothing. Kept per session in the table `requests`,
  // replicated like the pinset: the numbers applied at or above the session's done_below, as
  // ranges (at most kMaxRequestRanges: a gap between two is a request still open, and the
  // proposer keeps fewer open than that; beyond, the lowest ranges are forgotten), for the
  // kMaxSessions sessions that proposed last (a peer's restart starts a new session).
  using Request = RequestId;
  static constexpr std::size_t kMaxRequestRanges = 4096;
  static constexpr std::size_t kMaxSessions = 1024;
  struct Entry {
    raft::Index index;
    raft::Term term;
    std::vector<StateOp> ops;
    std::optional<Request> request = std::nullopt;
  };
  struct Applied {
    bool now = false;             // false: at or below the applied index, skipped
    std::vector<bool> new_pins;   // per op of the entry (false for all but a new CID's PutPin)
    // Per op of the entry: the value a PutPin replaced or a DeletePin removed (nullopt for a new
    // CID, a CID that was not there, and peer ops).
    std::vector<std::optional<std::string>> replaced;
    // Per op of the entry: a conditional op (if_version) that found another pin, or none, and
    // changed nothing. Nothing acts on it.
    std::vector<bool> skipped;
    // The entry's request was applied before (or ended for its proposer): every op is skipped.
    bool duplicate = false;
  };
  Result<std::vector<Applied>> apply_batch(std::span<const Entry> entries);
  // Commits the entries apply_batch left uncommitted (a failure stops the process, as above).
  Status commit();
  bool has_uncommitted() const;
  static constexpr std::size_t kMaxUncommittedOps = 8192;

  // Local unpins (table local_unpins; this peer's own, not part of the replicated state): when
  // an applied entry removes or replaces the pin of a CID and `guard(cid, pin it had)` holds,
  // the CID and that pin are also recorded, in the same transaction. The pin worker's guard
  // holds while tracker.db has not committed yet that IPFS was asked to pin the CID: a crash
  // after this commit but before tracker.db's would otherwise leave it pinned in IPFS with
  // nothing left to say it should be unpinned. A snapshot restore keeps this file's local
  // unpins (those in the snapshot are the sender's).
  using UnpinGuard = std::function<bool(std::string_view cid, std::string_view pin)>;
  void set_unpin_guard(UnpinGuard guard);
  Result<std::vector<LocalUnpin>> local_unpins();
  // Erases local unpins once tracker.db recorded them, in the open group of applied entries
  // (committed with them; see apply_batch).
  Status forget_local_unpins(std::span<const std::string> cids);

  // Reads on the writer's connection, for the applying thread (e.g. to merge a pin update).
  Result<std::optional<std::string>> get_pin(std::string_view cid);
  Result<AppliedPosition> applied();
  // Makes the reads above share one read transaction until end_reads() or the next write (which
  // ends it first, so a read always sees every applied entry; while applied entries are
  // uncommitted the reads already share their transaction). A statement on its own is a
  // transaction of its own, and SQLite's file locks taken and dropped for each were 40% of a
  // REST pin's state.db lookup. Keep it short (end it after the io thread's turn): an open read
  // transaction keeps checkpoints from reaching past it.
  Status begin_reads();
  void end_reads();

  // A reader for another thread; commits applied entries first, so it sees all of them.
  // restore_snapshot() ends the readers open then (see StateReader).
  Result<StateReader> open_reader();

  Result<std::string> cluster_id();
  Status set_cluster_id(const std::string& cluster_id);

  // Makes every applied entry durable now (apply() commits with synchronous=NORMAL; see .cpp).
  Status make_durable();

  // Writes a consistent copy of the state at the current applied index to `dest` (replaced if
  // present), durably: temp file, fsync, rename, fsync of the folder. Also makes state.db itself
  // durable up to that index first, so the Raft log may be compacted through it.
  Result<StateSnapshot> create_snapshot(const std::filesystem::path& dest);

  // Opens a snapshot file and reports what it holds; refuses files that are not clusterpin state
  // or fail SQLite's quick_check.
  static Result<StateSnapshot> inspect_snapshot(const std::filesystem::path& file);

  // Replaces the whole state with the snapshot at `src` (left in place), atomically: after a crash
  // state.db is either the old state or the snapshot's. Refused, changing nothing, when the
  // snapshot belongs to another cluster, or when called from inside a call of one of this
  // StateDb's readers on the same thread (e.g. a for_each_pin visitor: it would wait for itself).
  // Open readers do not hold it up: once the snapshot is copied next to state.db, each is ended
  // (see StateReader). Returns the new applied position. With `expected`, a snapshot whose
  // applied position is another one is refused too, changing nothing (the Raft snapshot it is
  // restored for stands at `expected`).
  Result<AppliedPosition> restore_snapshot(const std::filesystem::path& src,
                                           std::optional<AppliedPosition> expected = {});
  // A snapshot received from the leader carries the Raft snapshot it stands for (index, term,
  // configuration), written into the file before it is restored. state.db is swapped first and
  // raft.db records the snapshot after; a crash between the two left a state.db ahead of
  // raft.db that the core refused at every start. The mark lets the start record it instead.
  static Status mark_snapshot(const std::filesystem::path& file, const raft::SnapshotMeta& meta);
  // The mark of the snapshot state.db was restored from, when state.db is still at that
  // position (nothing applied since); nullopt otherwise.
  Result<std::optional<raft::SnapshotMeta>> installed_snapshot();

  const std::filesystem::path& file() const;

 private:
  struct Impl;
  explicit StateDb(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace clusterpin::store
