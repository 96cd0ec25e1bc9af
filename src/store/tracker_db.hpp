// tracker.db in the data folder: the pin tracker's records (one row per CID, keyed by the CID's
// bytes) so that statuses, errors and attempt counts survive a restart. Writes are buffered and
// committed many per transaction (flush), so tracking 100k pins costs a few commits, not 100k.
// The commits run on a thread of their own (the committer), which takes the connection for the
// time of a commit: the thread that owns the TrackerDb keeps answering requests meanwhile, and
// waits for the committer only to read a row that is neither buffered nor being committed.
// WAL with synchronous=NORMAL: a power cut may lose the last commits, and a kill the changes not
// committed yet (about kFlushInterval of them), which is acceptable because the tracker is
// rebuilt from the shared state and IPFS (reconcile), its operations are idempotent, and an
// unpin or a move away from this peer is acted on without a record (PinTracker::track).
// Reads always see every save/erase made before them.
#pragma once

#include <chrono>
#include <condition_variable>
#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "core/result.hpp"
#include "core/tracker.hpp"
#include "store/sqlite_connection.hpp"
#include "store/wal_checkpointer.hpp"

namespace clusterpin::store {

class TrackerDb final : public TrackerStore {
 public:
  static constexpr const char* kFileName = "tracker.db";
  // Changes buffered before save/erase commit them on their own: bounds the buffer's memory.
  static constexpr std::size_t kMaxPending = 8192;

  // Opens or creates <data_folder>/tracker.db.
  static Result<std::unique_ptr<TrackerDb>> open(const std::filesystem::path& data_folder);
  // Commits what is still buffered (best effort: a failure here loses only rebuildable state)
  // and stops the committer.
  ~TrackerDb() override;
  TrackerDb(const TrackerDb&) = delete;
  TrackerDb& operator=(const TrackerDb&) = delete;

  // Buffered: the change is visible to reads at once and committed by the next flush (or when
  // kMaxPending changes are waiting). Several changes of one CID coalesce into one row write.
  void save(const TrackerRecord& record) override;
  void erase(const Cid& cid) override;
  // Hands the buffered changes to the committer, which commits them in one transaction, once
  // kFlushBatch of them wait or kFlushInterval has passed since the last commit began, and no
  // commit is under way; otherwise they stay buffered for a later flush (reads see them
  // meanwhile). Does not wait for the commit. The pin worker calls this after every burst of
  // changes, which at thousands of pins/s was one small commit per change (half of the io
  // thread's CPU); what a crash can lose is the newest changes, rebuilt by reconcile.
  // Returns the error of a commit that failed since the last call (also of an automatic one);
  // the changes of a failed commit are buffered again, behind any newer change of the same CID.
  Status flush();
  // Commits every buffered change now and waits for it (same failure rules as flush).
  Status flush_now();
  // Waits for the commit under way, if any, and returns its result.
  Status wait_commit();
  // A batch was handed to the committer and its result not taken yet (by flush, a lookup that
  // had to read the connection, or wait_commit).
  bool committing() const { return in_flight_; }
  // Runs before each commit of buffered changes and returns the applied index of state.db that
  // the commit covers, stored with it (applied_index()); its failure fails the flush. The pin
  // worker commits state.db's applied entries here, so tracker.db never holds the effect of an
  // entry that a crash could take back out of state.db. With a hook, a flush with nothing
  // buffered still commits when the index moved on (once per kFlushInterval at most).
  void set_before_commit(std::function<Result<std::uint64_t>()> before) {
    before_commit_ = std::move(before);
  }
  // The entry whose changes are being made now (state.db applies a batch of entries whole, then
  // the changes of each are made in turn): a commit meanwhile (kMaxPending reached) records at
  // most the index before it, since the changes of this entry and of the batch's later ones are
  // not all buffered yet. nullopt between entries.
  void set_applying(std::optional<std::uint64_t> index) { applying_ = index; }
  // The applied index of state.db recorded with the last commit (nullopt: none yet, or a
  // tracker.db written before it was recorded). Every tracker change made for an entry at or
  // below it is committed, or is a new pin held in memory only that the first reconcile finds
  // again; a kill may have taken the changes made for entries above it.
  std::optional<std::uint64_t> applied_index() const { return recorded_index_; }
  // Larger batches write each b-tree page that several of their CIDs share once (500 ms and
  // 8,192 instead of 100 ms and 1,024, with the committer: +20% pins/s at 64 API clients,
  // docs/benchmarks.md item 25).
  static constexpr std::size_t kFlushBatch = 8192;
  static constexpr std::chrono::milliseconds kFlushInterval{500};
  // Changes not committed yet: buffered, or in the commit under way.
  std::size_t pending() const;
  // The change of `cid` not committed yet (buffered, or in a commit not reaped yet), if any:
  // tracker.db may lack what the tracker last did for it, e.g. that IPFS was asked to pin it.
  // nullptr when none; pointing at nullopt for an erase. Valid until the next call of this.
  const std::optional<TrackerRecord>* pending_change(const Cid& cid) const;
  // Commits of buffered changes that succeeded and were taken (reaped) so far: a pending change
  // can only become committed after this grew.
  std::uint64_t commits() const { return commits_; }

  // The waiting list (table `waiting`): CIDs appended in order, so a push costs an append, not a
  // write at a random place like a tracker row.
  void push_waiting(const Cid& cid) override;
  Result<std::vector<Cid>> pop_waiting(std::size_t max) override;

  Result<std::optional<TrackerRecord>> load(const Cid& cid) override;
  // Reads three columns: no pin is decoded (a reconcile asks this for every pin of the pinset).
  Result<std::optional<Brief>> load_brief(const Cid& cid) override;
  Status load_active(const std::function<bool(TrackerRecord&&)>& visit) override;
  // Reads the unsettled rows after `after` through the partial index tracker_active (three
  // columns, no pin decoded) with the buffered changes laid over them: unlike the streams, it
  // commits nothing first (a listing over the API must not force commits, which also commit
  // state.db through the before-commit hook); it waits only for a commit under way.
  Result<LeavingPage> load_leaving(const std::optional<Cid>& after, std::size_t max,
                                   std::size_t max_scanned) override;
  Status for_each(const std::function<bool(const TrackerRecord&)>& visit,
                  const std::optional<Cid>& after = std::nullopt) override;
  Result<std::size_t> count();

 private:
  struct Queries {
    Statement put, del, get, get_brief, active, all, all_after;
    Statement wait_push, wait_first, wait_drop;
    Statement index_put;
    Statement leaving;  // unsettled rows after a CID: cid, status, op, remote (load_leaving)
  };
  TrackerDb(Connection db, Queries q);
  Result<TrackerRecord> read_row(const Statement& row) const;
  // The row of `cid` through `q` (a one-row SELECT ... WHERE cid = ?), decoded by `decode`, in
  // the lookups' read transaction; `q` is reset whatever happens.
  template <typename T, typename Decode>
  Result<std::optional<T>> point_read(Statement& q, const Cid& cid, Decode&& decode);
  void flush_if_full();
  std::size_t buffered() const { return pending_.size() + waiting_.size(); }  // not handed over
  // The error kept from an earlier commit, now reported (ok when none).
  Status take_deferred_error();
  // Hands the buffered changes to the committer (there must be no commit under way). The
  // before-commit hook runs here, on the owner's thread, before the hand-over. Returns its
  // error, or the error kept from an earlier commit when nothing is buffered.
  Status start_commit();
  // Takes the result of the commit under way, waiting for it when `block` (otherwise returns
  // false while it runs). A failed commit's changes are buffered again and its error kept for
  // the next flush.
  bool reap(bool block);
  // The committer thread: writes and commits `committing_` whenever one is handed over.
  void commit_loop();
  Status write_batch();
  // The buffered or committing change of `cid`, if any; otherwise waits for the commit under way
  // so the caller may read the connection, and returns nullptr.
  const std::optional<TrackerRecord>* buffered(const Cid& cid);
  struct Batch {
    std::map<Cid, std::optional<TrackerRecord>> changes;
    std::vector<Cid> waiting;
    std::optional<std::uint64_t> applied_index;
  };
  // Point reads (load) share one read transaction, opened by the first of them and ended before
  // anything else uses the connection (every write goes through flush_now, which ends it first).
  // A statement on its own is a transaction of its own, and taking and dropping SQLite's file
  // locks for each was most of the cost of a lookup: 37% of a peer's io thread while it
  // reconciled 1M tracked pins, 8% during `pin add -`. The reads see every committed change:
  // this connection is the only writer and commits nothing while the transaction is open.
  Status begin_read();
  void end_read();
  bool reading_ = false;

  Connection db_;  // declared first: the statements below are finalized before it closes
  Queries q_;
  std::map<Cid, std::optional<TrackerRecord>> pending_;  // nullopt: erase
  std::vector<Cid> waiting_;                             // pushes not committed yet
  std::optional<Error> deferred_error_;  // of an automatic flush, reported by the next flush
  std::function<Result<std::uint64_t>()> before_commit_;
  std::optional<std::uint64_t> recorded_index_;  // owner's thread: as committed (applied_index)
  std::optional<std::uint64_t> applying_;        // set_applying
  std::chrono::steady_clock::time_point last_commit_{};  // when the last commit began (epoch: never)

  // The hand-over. While `in_flight_` the committer owns db_, q_ and reads `committing_`; the
  // owner's thread only reads `committing_` (lookups) and does not touch the connection.
  Batch committing_;
  bool in_flight_ = false;  // owner's thread: committing_ was handed over and not reaped yet
  std::uint64_t commits_ = 0;  // owner's thread: see commits()
  std::mutex mu_;
  std::condition_variable cv_;
  bool handed_ = false;  // guarded by mu_: a batch waits for the committer or is being committed
  bool stopping_ = false;           // guarded by mu_
  std::optional<Error> commit_error_;  // guarded by mu_: of the last commit
  std::thread committer_;
  std::unique_ptr<WalCheckpointer> checkpointer_;  // last: stops before the statements and db go
};

}  // namespace clusterpin::store
