// PinWorker makes this peer's IPFS daemon follow the shared pinset: every applied pin or unpin
// goes to the PinTracker (statuses kept in tracker.db), and the operations it hands out run
// through the Kubo RPC connector, concurrent_pins at a time. Timers retry what failed (the
// tracker's backoff), sync with `ipfs pin ls` every ipfs_sync_interval, recover every
// pin_recover_interval, and reconcile with the shared state every state_sync_interval.
// Everything runs on the daemon's io_context thread.
#pragma once

#include <chrono>
#include <filesystem>
#include <functional>
#include <memory>
#include <optional>
#include <unordered_map>
#include <vector>

#include <asio.hpp>

#include "core/config.hpp"
#include "core/raft/types.hpp"
#include "core/peer_id.hpp"
#include "core/pin.hpp"
#include "core/tracker.hpp"
#include "net/ipfs_connector.hpp"
#include "node/once_per_turn.hpp"
#include "store/state_db.hpp"
#include "store/tracker_db.hpp"

namespace clusterpin::node {

class PinWorker {
 public:
  PinWorker(asio::io_context& io, const ServiceConfig& config, PeerId self, store::StateDb& state);
  ~PinWorker();

  // How the worker sees the cluster: the live peers (for choosing who unpins an expired pin) and
  // how to commit pinset changes.
  struct ClusterView {
    std::function<std::vector<PeerId>()> live_peers;
    std::function<void(std::vector<PinsetOp>)> commit;
  };
  void set_cluster_view(ClusterView view) { cluster_ = std::move(view); }

  // Opens tracker.db and the tracker. `log`: the Raft log as loaded at the start (see
  // recheck_unrecorded). `state_from_snapshot`: state.db was swapped to a received snapshot
  // that raft.db recorded only at this start (a stop during an install): the entries between
  // tracker.db's index and the snapshot were never applied here, and the log may hold others
  // at those indexes, so none is re-checked (the start's reconcile compares the pinset with
  // what the tracker holds, as after an install). Call before new entries are applied.
  Status open(const std::filesystem::path& data_dir, const std::vector<raft::Entry>& log,
              bool state_from_snapshot = false);
  void start();
  void stop();

  // From the Raft apply path; `new_to_pinset`: the CID was not in the pinset before;
  // `replaced`: the encoded pin the apply replaced or removed, if the CID was in the pinset.
  void pin_applied(const Pin& pin, bool new_to_pinset, const std::string* replaced = nullptr);
  void unpin_applied(const Cid& cid, const std::string* replaced = nullptr);
  // Around the pin_applied/unpin_applied calls of one entry (TrackerDb::set_applying).
  void applying(std::optional<std::uint64_t> index) { db_->set_applying(index); }
  // After a snapshot replaced the shared state: re-derive what to pin from it (a pass that was
  // running starts over).
  void state_replaced();
  // Commits tracker.db's buffered changes now (state.db's first) and waits for it.
  Status make_durable();

  // A listing of the pinset starts streaming from this peer (GET /allocations, GET /pins): until
  // the returned token is dropped, reconcile passes take a sixteenth of the io thread instead of
  // a quarter, and so does the reading of IPFS's pin listing for a pass or a sync, so the answer
  // someone waits for goes first (the same holds while pinset changes are applied, see
  // Foreground). Tokens may outlive the worker.
  std::shared_ptr<void> listing_started();

  // This peer's record of a CID (nullopt: not tracked here, i.e. unpinned).
  Result<std::optional<TrackerRecord>> status(const Cid& cid);
  // The CIDs this peer is still unpinning after they left the pinset, from the first after
  // `after` (see TrackerStore::load_leaving).
  Result<TrackerStore::LeavingPage> leaving(const std::optional<Cid>& after, std::size_t max,
                                            std::size_t max_scanned);
  Result<std::optional<TrackerRecord>> recover(const Cid& cid);
  Result<std::vector<TrackerRecord>> recover_all();
  // Compares with one streamed `pin ls` of IPFS and marks what drifted; `done` gets how many
  // records changed, or why IPFS could not be listed.
  void sync(std::function<void(Result<std::size_t>)> done);
  // The IPFS daemon's peer id and addresses, once it answered (empty before).
  const net::IpfsId& ipfs_id() const { return ipfs_id_; }
  const std::string& ipfs_error() const { return ipfs_error_; }
  // Asks IPFS for its id now (one call at a time: callers meanwhile share it) and calls `done`
  // once it answered, with true, or after `max_wait` with false, whichever comes first; the
  // periodic check (every 30 s, 2 s while IPFS fails) alone left `GET /id` up to 30 s behind a
  // daemon that stopped. IPFS Cluster asks IPFS on every /id.
  void refresh_ipfs(std::chrono::milliseconds max_wait, std::function<void(bool answered)> done);
  net::IpfsConnector& connector() { return *connector_; }

 private:
  std::optional<Pin> allocated_here(std::string_view replaced) const;
  void pump();
  void refill();
  PinsetLookup pinset_lookup();
  bool below_half_window() const {
    return tracker_->queued_pins() + tracker_->queued_unpins() < tracker_->window() / 2 + 1;
  }
  void run(TrackerOperation op);
  // Reports the end of operation `id` of `cid` to the tracker, then pumps.
  std::function<void(Status)> finisher(Cid cid, std::uint64_t id);
  // The pins under way in IPFS that can be cancelled, by operation id: an unpin that supersedes
  // one cancels its call (PinTracker::take_superseded_pins) instead of waiting for it to end.
  struct RunningPin {
    std::shared_ptr<net::HttpCancel> own;    // its own pin/add or pin/update
    std::shared_ptr<net::HttpCancel> batch;  // the pin/add of several fresh CIDs it is part of
    bool cancelled = false;
  };
  std::unordered_map<std::uint64_t, RunningPin> running_pins_;
  std::shared_ptr<net::HttpCancel> cancel_token(std::uint64_t id);
  void cancel_superseded_pins();
  // First attempts of new recursive pins handed out together (at most concurrent_pins are in
  // progress) go to IPFS in pin/add calls of up to kPinAddBatch CIDs: one HTTP exchange instead
  // of one per pin. A failed call is followed by one pin_add per CID (pin/ls, then pin/add if
  // needed), whose answers decide. IPFS pins the CIDs of a call one after another, so a call is
  // only as fast as fetching all of them: one that took over kSlowPinAddBatch means IPFS is
  // fetching content, and new pins go one per call (concurrent_pins at once) for
  // kSinglesAfterSlowBatch; so do they after a failed call (e.g. a proxy refusing long URLs).
  void run_fresh(std::vector<TrackerOperation> ops);
  static constexpr std::size_t kPinAddBatch = 100;
  static constexpr std::chrono::seconds kSlowPinAddBatch{1};
  static constexpr std::chrono::minutes kSinglesAfterSlowBatch{1};
  void schedule(asio::steady_timer& timer, std::chrono::nanoseconds every, void (PinWorker::*what)());
  void retry_tick();
  void sync_tick();
  void recover_tick();
  // Reconciling with the shared state runs in passes of bounded slices (reconcile_slice), each
  // posted to the io_context after the previous one, so the io thread never stays in one for
  // long. One pass at a time: a request while one runs makes another follow it.
  void reconcile_tick();
  void begin_reconcile();
  void post_reconcile_slice();
  // The next slice after a pause three times as long as the last one took: a pass (background
  // work) keeps at most a quarter of the io thread, the rest stays for the API, Raft and the pin
  // worker (at half, `pin ls` of 1M pins ran at half its speed while a pass ran). While the
  // foreground is busy (see Foreground) the pause is fifteen times the slice: a sixteenth of
  // the thread.
  void pace_reconcile_slice(std::chrono::steady_clock::duration last_slice);
  // Background work pauses this many times as long as its last step took: a quarter of the io
  // thread, a sixteenth while the foreground is busy.
  static constexpr int kBackgroundPause = 3;
  static constexpr int kBackgroundPauseWhileBusy = 15;
  // What background work yields to: a listing of the pinset streaming from this peer, or
  // pinset changes applied within the last kBusyAfterChange (writes through the API, `pin add
  // -`, on every peer of the cluster). A pass still moves on, at a sixteenth of the thread.
  static constexpr std::chrono::seconds kBusyAfterChange{1};
  struct Foreground {
    std::size_t listings = 0;  // streaming now
    std::chrono::steady_clock::time_point last_change{};
    bool busy(std::chrono::steady_clock::time_point now) const {
      return listings > 0 || now - last_change < kBusyAfterChange;
    }
    // How long background work pauses after a step that took `took`: `idle_factor` times as
    // long, or kBackgroundPauseWhileBusy times while the foreground is busy.
    std::chrono::steady_clock::duration pause_after(std::chrono::steady_clock::duration took,
                                                    int idle_factor) const {
      return (busy(std::chrono::steady_clock::now()) ? kBackgroundPauseWhileBusy : idle_factor) *
             took;
    }
  };
  // The same rule for reading IPFS's pin listing (a pass's, a sync's): while the foreground is
  // busy, each read of it is followed by a pause fifteen times as long as handling it took (IPFS
  // waits meanwhile, held by TCP); otherwise it is read as fast as it comes.
  net::ReadPace ipfs_listing_pace() const;
  void reconcile_slice(std::uint64_t pass);
  // Lists IPFS's recursive pins for the pass (cursor.wants_ipfs_listing), then resumes it. A
  // failed listing is tried again after 5, 10, 20, 40 s (IPFS may be starting or briefly
  // down: going on with a pin/add per pin could mean millions of calls); after that the pass
  // goes on with pin/add (an IPFS that refuses to list).
  void list_ipfs_for_reconcile();
  static constexpr int kListingAttempts = 5;
  void end_reconcile();
  void check_ipfs();
  void flush();
  UnixNanos now() const;
  // After a kill, state.db may hold entries above the applied index tracker.db recorded with
  // its last commit, whose record changes the kill took (a pin updated or pinned again, a
  // queued unpin replaced): the CIDs those entries name are re-checked (PinTracker::recheck)
  // before any operation starts.
  void recheck_unrecorded(const std::vector<raft::Entry>& entries, bool state_from_snapshot);
  // Local unpins (see StateDb::set_unpin_guard): the guard records the CIDs it holds for in
  // `guarded_`; each row is erased once tracker.db committed that CID's changes. At the start,
  // the rows a crash left are acted on again before anything else: unpinned unless the pinset
  // allocates the CID here.
  bool guard_unpin(std::string_view cid_bytes, std::string_view replaced);
  void forget_recorded_unpins();
  void replay_local_unpins();

  asio::io_context& io_;
  const ServiceConfig& config_;
  PeerId self_;
  store::StateDb& state_;
  std::unique_ptr<net::IpfsConnector> connector_;
  std::unique_ptr<store::TrackerDb> db_;
  std::optional<PinTracker> tracker_;
  asio::steady_timer retry_timer_;
  asio::steady_timer sync_timer_;
  asio::steady_timer recover_timer_;
  asio::steady_timer reconcile_timer_;
  asio::steady_timer ipfs_timer_;
  asio::steady_timer slice_timer_;  // paces the slices of a reconcile pass
  // Armed while tracker.db holds changes not yet committed: a flush every kFlushInterval, so a
  // kill -9 loses about that much even when no further burst comes to flush them (and takes
  // the result of a commit under way, so a failed one is reported and retried).
  asio::steady_timer flush_timer_;
  bool flush_armed_ = false;
  // Until the first reconcile pass of this run has completed, a pin allocated here may have no
  // tracker record because a kill took the newest tracker.db changes (or tracker.db was lost):
  // a pin that moves away or is removed is then unpinned when it was allocated here before.
  // Afterwards only a pin that still waits in the waiting list has no record, and it was never
  // pinned: it is just forgotten, without an IPFS call.
  bool records_rebuilt_ = false;
  std::vector<Cid> guarded_;  // local unpins not erased yet
  std::uint64_t guarded_checked_at_ = 0;  // tracker.db's commits() at the last look at them
  net::IpfsId ipfs_id_;
  std::string ipfs_error_ = "not contacted yet";
  bool ipfs_checking_ = false;                       // an id call is under way
  std::vector<std::function<void()>> ipfs_waiters_;  // called when it answers
  bool running_ = false;
  bool syncing_ = false;
  // One pump after the io thread's turn for applied pins and unpins: the pins of one batch of
  // applied Raft entries are handed out together (and can share a pin/add, see run_fresh).
  OncePerTurn pump_soon_;
  std::chrono::steady_clock::time_point singles_until_{};  // see run_fresh
  ClusterView cluster_;
  struct ReconcilePass {
    std::uint64_t id = 0;  // a slice posted for another pass does nothing
    SharedReconcileCursor cursor;
    bool listing = false;  // IPFS's recursive pins are being listed (the pass waits for them)
    int listing_failures = 0;
    std::chrono::steady_clock::time_point started = std::chrono::steady_clock::now();
    std::optional<Cid> expiry_after;  // pins up to here were checked for expiry
    std::size_t expired = 0;          // unpins of expired pins proposed by this pass
  };
  std::optional<ReconcilePass> reconcile_;
  std::uint64_t reconcile_passes_ = 0;
  bool reconcile_again_ = false;   // a pass was asked for while one ran
  bool reconcile_paused_ = false;  // waiting for the queues to drain (resumed by pump)
  std::shared_ptr<bool> alive_ = std::make_shared<bool>(true);
  std::shared_ptr<Foreground> foreground_ = std::make_shared<Foreground>();  // outlives listings' tokens
};

}  // namespace clusterpin::node
