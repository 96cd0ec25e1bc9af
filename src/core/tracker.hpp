// The pin tracker: what this peer's IPFS daemon should do about each CID of the shared pinset,
// and how far it got (pin_queued, pinning, pinned, pin_error, ..., remote). Pure logic: no
// threads, no clocks (every call takes `now`), no I/O (IPFS calls are returned as operations for
// the caller to run; records are written through the TrackerStore interface). It guarantees one
// operation per CID at a time, that a newer operation replaces an older queued one, that the
// result of a superseded operation is ignored, and that failed operations retry with backoff.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <initializer_list>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <tuple>
#include <unordered_map>
#include <utility>
#include <vector>

#include "core/cid.hpp"
#include "core/config.hpp"
#include "core/peer_id.hpp"
#include "core/pin.hpp"
#include "core/result.hpp"
#include "core/time_format.hpp"

namespace clusterpin {

// The per-CID status as the REST API reports it (IPFS Cluster's names). The numeric values are
// stored in tracker.db: never renumber them.
enum class TrackerStatus : std::uint8_t {
  undefined = 0,
  pin_queued = 1,
  pinning = 2,
  pinned = 3,
  pin_error = 4,
  unpin_queued = 5,
  unpinning = 6,
  unpinned = 7,
  unpin_error = 8,
  remote = 9,
  unexpectedly_unpinned = 10,
  cluster_error = 11,
};
inline constexpr int kTrackerStatusCount = 12;

std::string_view status_name(TrackerStatus status);
// One status by its name ("pin_error"); the error lists the accepted names.
Result<TrackerStatus> parse_status(std::string_view name);

// A set of statuses, as `status --filter` and `GET /pins?filter=` take it.
class StatusFilter {
 public:
  static StatusFilter all();
  static StatusFilter none() { return StatusFilter(0); }
  static StatusFilter of(std::initializer_list<TrackerStatus> statuses);

  bool matches(TrackerStatus status) const { return (bits_ >> static_cast<int>(status)) & 1U; }
  StatusFilter with(TrackerStatus status) const {
    return StatusFilter(bits_ | (1U << static_cast<int>(status)));
  }
  bool operator==(const StatusFilter&) const = default;

 private:
  explicit StatusFilter(std::uint32_t bits) : bits_(bits) {}
  std::uint32_t bits_;
};

// "pin_error,queued": comma-separated status names or IPFS Cluster's groups (`error` = pin_error,
// unpin_error and cluster_error; `queued` = pin_queued and unpin_queued). Empty means all.
Result<StatusFilter> parse_status_filter(std::string_view text);
// The names parse_status_filter accepts, for messages ("undefined, pin_queued, ..., queued").
std::string status_filter_names();

// What IPFS must be asked to do for a CID.
enum class TrackerOp : std::uint8_t { none = 0, pin = 1, unpin = 2 };

// Everything the tracker knows about one CID; this is also the row kept in tracker.db.
struct TrackerRecord {
  explicit TrackerRecord(Pin p) : pin(std::move(p)) {}
  const Cid& cid() const { return pin.cid; }

  Pin pin;  // the shared pin (mode, max_depth, name, pin_update, origins: what IPFS needs)
  TrackerStatus status = TrackerStatus::undefined;
  TrackerOp op = TrackerOp::none;  // the pending or last operation
  // The pin is in the shared pinset but allocated to other peers: after an unpin succeeds the
  // CID is reported `remote` instead of being forgotten. A settled `remote` is not stored (its
  // record is erased): a CID the pinset allocates elsewhere and that has no record is remote.
  bool remote = false;
  bool priority = false;                  // fresh pin: runs before old pins and retries
  UnixNanos timestamp = kZeroTime;        // when the status last changed
  std::string error;                      // of the last failed attempt; empty otherwise
  std::int64_t attempt_count = 0;         // failed attempts of the current operation
  UnixNanos next_attempt_at = kZeroTime;  // queued/error: not started before this time
};

// The status a peer reports for a CID: its record's when the tracker has one; otherwise, when
// the shared pinset holds the CID (`pin`), pin_queued if it is allocated to `self` (a new pin
// that waits has no record yet) or remote (remote pins have none); otherwise unpinned.
TrackerStatus reported_status(const TrackerRecord* record, const Pin* pin, const PeerId& self);

// Whether a record is of a CID this peer is still unpinning because it left the pinset (a
// "leaving" CID): an unsettled unpin (unpin_queued, unpinning, unpin_error) that is not a move
// away (remote false; PinTracker::untrack clears it when the CID leaves the pinset). GET /pins
// lists such CIDs after the pinset's, as IPFS Cluster's StatusAll lists whatever a peer tracks.
bool is_leaving(TrackerStatus status, TrackerOp op, bool remote);
inline bool is_leaving(const TrackerRecord& r) { return is_leaving(r.status, r.op, r.remote); }

// A sync judges records by their wall-clock timestamps against the time its listing began
// (PinTracker::reconcile_ipfs): a clock stepped back while IPFS listed would date a status set
// meanwhile before the listing, and a pin just pinned would be judged from a listing without it.
// Refused (naming the step) when the wall clock advanced less than the monotonic clock over the
// listing by more than kListingClockSlack; NTP's slewing stays far below it. A step forward is
// harmless: what changed meanwhile is dated after the listing began all the same.
inline constexpr std::chrono::milliseconds kListingClockSlack{1000};
Status listing_clock_check(UnixNanos wall_start, UnixNanos wall_end,
                           std::chrono::nanoseconds monotonic_elapsed);

// Where records persist. Writes may be buffered by the implementation (e.g. many per
// transaction) but every read must see every save/erase made before it.
class TrackerStore {
 public:
  virtual ~TrackerStore() = default;
  virtual void save(const TrackerRecord& record) = 0;
  virtual void erase(const Cid& cid) = 0;
  virtual Result<std::optional<TrackerRecord>> load(const Cid& cid) = 0;
  // The part of a record a reconcile compares for each pin of the shared pinset; a store may
  // answer it without reading the pin (the default loads the whole record).
  struct Brief {
    TrackerStatus status = TrackerStatus::undefined;
    TrackerOp op = TrackerOp::none;
    bool remote = false;
    PinIpfsForm form;  // the mode and depth of the recorded pin
    static Brief of(const TrackerRecord& r) {
      return {r.status, r.op, r.remote, PinIpfsForm::of(r.pin)};
    }
  };
  virtual Result<std::optional<Brief>> load_brief(const Cid& cid);
  // Records with an unsettled status (anything but pinned, remote, unpinned) in CID order.
  // `visit` returns false to stop; like for_each's, it must not call save/erase.
  virtual Status load_active(const std::function<bool(TrackerRecord&&)>& visit) = 0;
  // The leaving CIDs (is_leaving) in CID order from the first CID after `after` (from the lowest
  // when nullopt). Stops once it holds `max` of them or has looked at `max_scanned` records (the
  // unsettled ones, and changes a store holds unwritten), so one call costs little however many
  // records are unsettled (a million pin errors after an IPFS outage); `resume` is then the last
  // CID looked at (call again after it), and nullopt when no record is left past it. The
  // default scans load_active from the lowest CID.
  struct LeavingPage {
    std::vector<Cid> cids;
    std::optional<Cid> resume;
  };
  virtual Result<LeavingPage> load_leaving(const std::optional<Cid>& after, std::size_t max,
                                           std::size_t max_scanned);
  // Every record in CID order, those with CID > `after` when given. `visit` returns false to stop;
  // it must not call save/erase (collect, then write after the listing).
  virtual Status for_each(const std::function<bool(const TrackerRecord&)>& visit,
                          const std::optional<Cid>& after = std::nullopt) = 0;
  // The waiting list: new pins that found the pin queue full, oldest first. pop_waiting removes
  // and returns up to `max` of the oldest. Like save, a push may be buffered; pops see it.
  virtual void push_waiting(const Cid& cid) = 0;
  virtual Result<std::vector<Cid>> pop_waiting(std::size_t max) = 0;
};

struct TrackerLimits {
  std::int64_t concurrent_pins = 10;
  std::int64_t concurrent_unpins = 1;         // IPFS Cluster's single unpin worker
  std::int64_t max_pin_queue_size = 1000000;  // per queue (pins, unpins)
  // New pins held in memory at most (with max_pin_queue_size, the smaller counts): more go to
  // the store's waiting list, reported pin_queued, until refill() queues them. About 1.3 KB
  // each; 20,000 keep IPFS busy for minutes.
  std::int64_t fresh_pin_window = 20000;
  std::int64_t priority_pin_max_age_ns = 24LL * 3600 * 1000000000;
  std::int64_t priority_pin_max_retries = 5;
  std::int64_t retry_backoff_min_ns = 1000000000LL;        // first retry after 1 s
  std::int64_t retry_backoff_max_ns = 300LL * 1000000000;  // doubling up to 5 min
};

// The limits from service.json's pin_tracker section (unpin concurrency and retry backoff keep
// their defaults).
TrackerLimits tracker_limits(const PinTrackerConfig& config);

// An IPFS call for the caller to run; report its end with operation_finished(cid, id, ...).
struct TrackerOperation {
  std::uint64_t id = 0;
  TrackerOp op = TrackerOp::none;
  Pin pin;
  // False for the first attempt of a pin new to this peer (nothing was ever recorded for it):
  // IPFS is unlikely to hold it already, so asking first is a wasted call.
  bool known = true;
};

// One pin of the shared pinset by CID (nullopt: not in it), and this peer, to tell whether
// it is allocated here.
struct PinsetLookup {
  std::function<Result<std::optional<Pin>>(const Cid&)> pin_of;
  PeerId self;
};

// Streams the shared pinset in CID order; `visit` returns false to stop.
using SharedPinsetScan = std::function<Status(const std::function<bool(const Pin&)>& visit)>;
// The same from the first CID after `after` (from the start when nullopt), so a long listing can
// be resumed where an earlier one stopped.
using SharedPinsetScanFrom = std::function<Status(const std::optional<Cid>& after,
                                                  const std::function<bool(const Pin&)>& visit)>;

// Where a reconcile with the shared pinset that runs in slices stands (see
// PinTracker::reconcile_shared_slice). A fresh cursor starts a new pass.
struct SharedReconcileCursor {
  enum class Phase : std::uint8_t {
    pinset,   // tracking every shared pin as it should be
    tracked,  // unpinning tracked CIDs that left the pinset
    done,
  };
  Phase phase = Phase::pinset;
  std::optional<Cid> after;  // the last CID handled in the current phase
  std::size_t changes = 0;   // CIDs changed by the pass so far
  std::size_t pins = 0;      // pins of the shared pinset handled by the pass so far
  bool paused = false;       // the last slice stopped because the queues held `max_queued`
  bool done() const { return phase == Phase::done; }

  // Pins allocated here that the tracker has no record of (after a state import, a snapshot
  // install, a lost tracker.db) each cost a pin/add until `list_ipfs_after` of them were found
  // in this pass. Then the slice stops with `wants_ipfs_listing` set (before handling the next
  // one): the caller lists IPFS's recursive pins once, sets `held_by_ipfs` from that listing and
  // calls again; from there on an untracked pin IPFS already holds is recorded pinned without a
  // call (pinned recursively counts for every mode, as in IpfsConnector::pin_add). The caller
  // sets `list_ipfs_after` to SIZE_MAX when it cannot list (the pass goes on with pin/add).
  static constexpr std::size_t kListIpfsAfter = 1000;
  std::size_t list_ipfs_after = kListIpfsAfter;
  std::function<bool(const Cid&)> held_by_ipfs;
  bool wants_ipfs_listing = false;
  std::size_t untracked = 0;        // untracked pins allocated here found by this pass
  std::size_t checked_in_ipfs = 0;  // of those, looked up in the listing
  std::size_t found_in_ipfs = 0;    // of those, held by IPFS: recorded pinned without a call
};

// Memory: only CIDs waiting in a queue (queued, or errored and waiting for their retry) or with an
// operation in IPFS are held in memory, so memory is bounded by the queue limits. Records are
// written through to the store, which answers lookups; pinned, unexpectedly_unpinned and queue-full
// errors live only there (recover brings them back). Remote pins have no record at all: the pinset
// says they are allocated elsewhere, which is all their status needs. One exception keeps a stream
// of new pins cheap: a pin of a CID the tracker never saw is not written while it is only queued
// (the shared pinset already says it must be pinned here; after a restart the reconcile with the
// pinset queues it again; it is written once IPFS is asked), and when the queue is full only its
// CID is appended to the store's waiting list (refill() brings it back once there is room).
class PinTracker {
 public:
  // Loads the unsettled records. Operations that were in progress when the peer stopped are
  // queued again (their outcome is unknown; pinning and unpinning are idempotent in IPFS).
  static Result<PinTracker> open(TrackerStore& store, TrackerLimits limits, UnixNanos now);

  // An applied pin of the shared pinset. Allocated here: pin it unless already pinned with the
  // same mode/depth. Not allocated here: `remote` (no record kept); if this peer had pinned it
  // (or was about to), an unpin is queued first so its disk is freed (unlike IPFS Cluster we
  // never pin/rm a CID we never pinned, which would also unpin a user's own IPFS pin of the same
  // content).
  // `new_to_pinset`: the apply added the CID to the pinset (it was not there before), which
  // spares a store read for a pin allocated here; false when unknown.
  // `was_allocated_here`: the pin the apply replaced was allocated to this peer. A pin moved
  // away from this peer with no record is then unpinned all the same: the caller says so while
  // records may be missing because a kill took the newest tracker.db changes (see TrackerDb),
  // that is until its first reconcile with the pinset has completed (a pin still waiting in the
  // waiting list then gets an unpin IPFS answers with "not pinned", which counts as done).
  void track(const Pin& pin, bool allocated_here, UnixNanos now, bool new_to_pinset = false,
             bool was_allocated_here = false);
  // An applied unpin: queue an unpin unless nothing was ever pinned here (then just forget it).
  // `allocated_here`: the removed pin, when it was allocated to this peer; as for track, an
  // unpin is queued for it even without a record.
  void untrack(const Cid& cid, UnixNanos now, const Pin* allocated_here = nullptr);
  // A CID that an applied entry changed after tracker.db's last commit before a kill (see
  // TrackerDb::applied_index): its record may predate that change (pinned where IPFS unpinned
  // it since, an older mode or depth, a queued unpin of a CID pinned again), so IPFS is asked
  // again. `current`: the pin in the pinset now (nullptr: not in it); `allocated_here`: it is
  // allocated to this peer, and is queued as a pin (pin/add is idempotent). Otherwise an unpin
  // is queued when this peer may hold it: its record says so, or `held_in_window` (an entry of
  // that span allocated it here, or state.db's local unpin row of it: whatever the record says).
  void recheck(const Cid& cid, const Pin* current, bool allocated_here, const Pin* held_in_window,
               UnixNanos now);

  // Operations to start now, at most `max`: due pins (fresh ones first, then old pins and
  // retries) up to concurrent_pins in progress, due unpins up to concurrent_unpins. Each
  // returned operation is in progress (pinning/unpinning) until operation_finished.
  std::vector<TrackerOperation> next_operations(UnixNanos now, std::size_t max = SIZE_MAX);
  // The end of an operation. A result for an operation that has been superseded is ignored.
  // Success: pinned, or unpinned / remote (record erased either way). Failure:
  // pin_error/unpin_error with the message, one more attempt, and a retry after an exponential
  // backoff.
  void operation_finished(const Cid& cid, std::uint64_t id, const Status& result, UnixNanos now);
  // Pin operations still in IPFS that an unpin superseded (their results are ignored), since the
  // last call: the caller cancels them, so that the unpin does not wait up to pin_timeout for a
  // pin that may never end (content nobody provides); IPFS Cluster cancels such a pin too.
  std::vector<std::uint64_t> take_superseded_pins() { return std::exchange(superseded_pins_, {}); }

  // The record of one CID (from memory or the store); nullopt when untracked: unpinned, or
  // pin_queued / remote when the pinset has the CID (see reported_status).
  Result<std::optional<TrackerRecord>> status(const Cid& cid);
  // This peer's leaving CIDs (see TrackerStore::load_leaving): every unpin record is written
  // through to the store (only new pins wait in memory unwritten), so the store answers.
  Result<TrackerStore::LeavingPage> leaving(const std::optional<Cid>& after, std::size_t max,
                                            std::size_t max_scanned) {
    return store_->load_leaving(after, max, max_scanned);
  }

  // Makes an errored or unexpectedly_unpinned CID due now. Returns the record when touched.
  // With `pinset`, an unpin error of a CID that is in the pinset again is not retried as an
  // unpin: the pin is tracked as an apply would (a new pin that waits in the waiting list was
  // queued without reading the record, see track).
  Result<std::optional<TrackerRecord>> recover(const Cid& cid, UnixNanos now,
                                               const PinsetLookup* pinset = nullptr);
  // Recovers at most `limit` CIDs of the unsettled records, in CID order from where the last call
  // stopped (from the lowest again once a call reached the last): called every
  // pin_recover_interval, it bounds the load on IPFS and still reaches every error, however
  // many fail for good ahead of it. Errors parked because a queue is full stay errors until
  // there is room.
  Result<std::vector<TrackerRecord>> recover_all(UnixNanos now, std::size_t limit,
                                                 const PinsetLookup* pinset = nullptr);

  // Sync with IPFS: `pinned_in_ipfs(cid, mode)` answers from one `pin ls` listing whether IPFS
  // holds the CID as that mode asks: recursive only for a recursive pin, either way for a
  // direct one (a recursive pin holds the root too, as IpfsConnector::pin_add counts it).
  // pinned but missing -> unexpectedly_unpinned; pin_error or unexpectedly_unpinned but present
  // -> pinned; unpin_error but not pinned in any way -> done. Records whose status changed at
  // or after `listed_at` (when the listing began) are not judged: the listing may predate their
  // last operation. Returns how many records changed; `on_change` sees each new record.
  // Statuses carry the wall clock: a sync must check with listing_clock_check that the clock
  // did not step meanwhile.
  using InIpfs = std::function<bool(const Cid&, PinMode)>;
  Result<std::size_t> reconcile_ipfs(
      const InIpfs& pinned_in_ipfs, UnixNanos listed_at, UnixNanos now,
      const std::function<void(const TrackerRecord&)>& on_change = {});
  // Sync with the shared pinset: every shared pin is tracked as it should be (pinned here or
  // remote), and every tracked CID missing from it is unpinned. Returns how many CIDs changed.
  Result<std::size_t> reconcile_shared(const SharedPinsetScan& scan_pinset,
                                       const std::function<bool(const Cid&)>& in_pinset,
                                       const PeerId& self, UnixNanos now);
  // How many queued CIDs a reconcile slice fills the queues up to, and new pins wait in memory.
  std::size_t window() const;
  // The same in bounded slices, for a caller that must not block for a whole pass over millions
  // of pins: each call handles at most `max_items` pins or records from where `cursor` stands
  // and advances it; call again until cursor.done(). Pins and unpins applied between slices are
  // not lost (track/untrack handle them; the slices still to come read the pinset as it is
  // then). While the queues (pins and unpins) hold `max_queued` or more CIDs the slice enqueues
  // nothing more and returns with cursor.paused set: call again once they drained, so a first
  // pass over a big pinset holds about `max_queued` queued records, not the whole pinset.
  Status reconcile_shared_slice(SharedReconcileCursor& cursor, const SharedPinsetScanFrom& scan_pinset,
                                const std::function<bool(const Cid&)>& in_pinset,
                                const PeerId& self, UnixNanos now, std::size_t max_items,
                                std::size_t max_queued = SIZE_MAX);

  std::size_t queued_pins() const { return priority_queue_.size() + pin_queue_.size(); }
  std::size_t queued_unpins() const { return unpin_queue_.size(); }
  std::size_t in_progress() const { return pins_running_ + unpins_running_; }
  // CIDs held in memory (queued or with an operation in IPFS): bounded by the queue limits.
  std::size_t in_memory() const { return active_.size(); }
  // Queues waiting new pins, oldest first, at most kRefillBatch a call and while the pin queue
  // holds less than window(): `pinset.pin_of` reads each CID's pin from the shared pinset
  // (nullopt: unpinned since, dropped). Returns how many CIDs left the waiting list; the caller
  // calls again (in a later turn) while may_have_waiting() and there is room. Cheap when
  // nothing waits.
  static constexpr std::size_t kRefillBatch = 4096;
  Result<std::size_t> refill(const PinsetLookup& pinset, UnixNanos now);
  // Whether refill() may find waiting CIDs (true after open: the list persists).
  bool may_have_waiting() const { return may_have_waiting_; }
  const TrackerLimits& limits() const { return limits_; }

 private:
  // Queue order: due time, then arrival, so equal due times run first-come first-served.
  using QueueKey = std::tuple<UnixNanos, std::uint64_t, Cid>;
  enum class Queue : std::uint8_t { none, priority, normal, unpin };
  struct Entry {
    explicit Entry(TrackerRecord r) : record(std::move(r)) {}
    TrackerRecord record;
    std::uint64_t running_id = 0;  // the operation in IPFS now (0: none), maybe superseded
    TrackerOp running_op = TrackerOp::none;
    Queue queue = Queue::none;    // the queue it waits in, under `key`
    std::optional<QueueKey> key;  // set iff queue != none
    // False while the record exists only here: a fresh pin waiting in the queue. Written to the
    // store when its operation starts (before IPFS is asked) or it gets another operation.
    bool stored = true;
  };

  PinTracker(TrackerStore& store, TrackerLimits limits) : store_(&store), limits_(limits) {}

  std::optional<Cid> recover_after_;  // where recover_all goes on (nullopt: from the lowest)

  // Streams every record; the CIDs `pick` chooses are passed to `apply` in chunks of
  // kScanChunk once each listing stops, so memory stays bounded however much drifted.
  Status scan_in_chunks(const std::function<bool(const TrackerRecord&)>& pick,
                        const std::function<Status(const Cid&)>& apply);
  static constexpr std::size_t kScanChunk = 1024;

  Entry* find(const Cid& cid);
  Result<std::optional<TrackerRecord>> lookup(const Cid& cid);
  Result<std::optional<TrackerStore::Brief>> lookup_brief(const Cid& cid);
  void enqueue(TrackerRecord record, TrackerOp op, UnixNanos now, std::int64_t attempts);
  void enqueue_fresh(TrackerRecord record, UnixNanos now);
  void queue_or_park(TrackerRecord record, UnixNanos now, bool stored = true);
  void settle(TrackerRecord record, TrackerStatus status, UnixNanos now);
  void forget(const Cid& cid);
  void dequeue(Entry& entry);
  std::set<QueueKey>& queue_of(Queue queue);
  Queue queue_for(const TrackerRecord& record) const;
  void start(Entry& entry, std::vector<TrackerOperation>& out, UnixNanos now);
  bool is_priority(const Pin& pin, std::int64_t attempts, UnixNanos now) const;
  UnixNanos backoff(std::int64_t attempts) const;
  void release_if_idle(const Cid& cid);
  void check_invariants(const Entry& entry) const;

  TrackerStore* store_;
  TrackerLimits limits_;
  std::unordered_map<Cid, Entry> active_;  // queued or running: what needs attention now
  std::set<QueueKey> priority_queue_;  // fresh pins
  std::set<QueueKey> pin_queue_;       // old pins and retries past priority_pin_max_retries
  std::set<QueueKey> unpin_queue_;
  std::size_t pins_running_ = 0;
  std::size_t unpins_running_ = 0;
  std::uint64_t next_seq_ = 1;
  std::uint64_t next_op_id_ = 1;
  std::vector<std::uint64_t> superseded_pins_;  // see take_superseded_pins
  bool may_have_waiting_ = true;
};

// True when `self` is the XOR-closest of `peers` (plus self) to `cid` (blake2b-256 of each), so
// that exactly one live peer acts on the CID, e.g. proposes the unpin of an expired pin.
bool closest_peer(const Cid& cid, const PeerId& self, const std::vector<PeerId>& peers);

}  // namespace clusterpin
