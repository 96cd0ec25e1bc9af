// PinWorker (see pin_worker.hpp). IPFS calls come back on the io thread; their results go to the
// tracker, which decides retries. tracker.db writes are flushed after each burst of changes.
#include "node/pin_worker.hpp"

#include <fmt/core.h>

#include <map>

#include "core/cid_set.hpp"
#include "core/command.hpp"
#include "core/pin_version.hpp"
#include "node/fault.hpp"

namespace clusterpin::node {
namespace {

using namespace std::chrono;

constexpr milliseconds kRetryTick{500};
constexpr std::size_t kRecoverBatch = 10000;
// Reconciling with the shared state: pins (or tracker records) handled per turn of the io
// thread (each costs a tracker.db lookup; a slice of this size keeps the turn well under the
// Raft heartbeat). A pass pauses while the queues hold the tracker's window() and resumes once
// they drained to half of it.
constexpr std::size_t kReconcileSlice = 2000;
constexpr std::string_view kUnpinFault = "unpin-before-tracker-commit";
// The crash tests' "tracker-commits-held": tracker.db commits nothing in this run (the test
// ends it with a kill), as if every change came within the last commit interval.
constexpr std::string_view kHeldFault = "tracker-commits-held";
bool tracker_commits_held() { return fault_armed(kUnpinFault) || fault_armed(kHeldFault); }


}  // namespace

PinWorker::PinWorker(asio::io_context& io, const ServiceConfig& config, PeerId self,
                     store::StateDb& state)
    : io_(io), config_(config), self_(std::move(self)), state_(state), retry_timer_(io),
      sync_timer_(io), recover_timer_(io), reconcile_timer_(io), ipfs_timer_(io),
      slice_timer_(io), flush_timer_(io), pump_soon_(io, [this] { pump(); }) {}

PinWorker::~PinWorker() {
  *alive_ = false;
  stop();
}

UnixNanos PinWorker::now() const {
  return duration_cast<nanoseconds>(system_clock::now().time_since_epoch()).count();
}

Status PinWorker::open(const std::filesystem::path& data_dir,
                       const std::vector<raft::Entry>& log, bool state_from_snapshot) {
  auto db = store::TrackerDb::open(data_dir);
  if (!db) return db.error();
  db_ = std::move(db).value();
  // An unpin state.db would commit before tracker.db recorded the pin it undoes is recorded in
  // state.db's own transaction (see StateDb::set_unpin_guard).
  state_.set_unpin_guard(
      [this](std::string_view cid, std::string_view pin) { return guard_unpin(cid, pin); });
  auto tracker = PinTracker::open(*db_, tracker_limits(config_.tracker), now());
  if (!tracker) return tracker.error();
  tracker_.emplace(std::move(tracker).value());
  recheck_unrecorded(log, state_from_snapshot);
  // tracker.db records what IPFS was asked to do for applied entries: those entries are
  // committed to state.db first (a crash must not leave the tracker ahead of the pinset), and
  // the applied index goes with tracker.db's commit: after a kill, the entries above it may
  // have changed records the kill took (recheck_unrecorded). Set only now, so that nothing
  // records a newer index before the re-checked records are buffered: they are committed
  // together.
  db_->set_before_commit([this]() -> Result<std::uint64_t> {
    if (Status s = state_.commit(); !s) return s.error();
    auto applied = state_.applied();
    if (!applied) return applied.error();
    return applied->index;
  });
  net::IpfsConnectorOptions options;
  options.node_multiaddress = config_.ipfshttp.node_multiaddress;
  options.request_timeout = duration_cast<milliseconds>(config_.ipfshttp.ipfs_request_timeout);
  options.pin_timeout = duration_cast<milliseconds>(config_.ipfshttp.pin_timeout);
  options.unpin_timeout = duration_cast<milliseconds>(config_.ipfshttp.unpin_timeout);
  options.unpin_disable = config_.ipfshttp.unpin_disable;
  options.repogc_timeout = duration_cast<milliseconds>(config_.ipfshttp.repogc_timeout);
  connector_ = std::make_unique<net::IpfsConnector>(io_, options);
  return {};
}

void PinWorker::recheck_unrecorded(const std::vector<raft::Entry>& entries, bool state_from_snapshot) {
  std::optional<std::uint64_t> recorded = db_->applied_index();
  auto applied = state_.applied();
  if (!applied) {
    fmt::print(stderr, "clusterpin daemon: reading state.db's applied index failed: {}\n",
               applied.error().message);
    return;
  }
  // No index recorded: a new tracker.db (the first reconcile builds it) or one written before
  // the index was kept.
  if (!recorded || *recorded >= applied->index) return;
  if (state_from_snapshot) {
    fmt::print(stderr,
               "clusterpin daemon: tracker.db recorded entries up to {}, and state.db was restored "
               "from a received snapshot at {} before this peer stopped: the entries between were "
               "not applied here, so the start's reconcile compares the pinset with what this "
               "peer holds\n",
               *recorded, applied->index);
    return;
  }
  const raft::Index from = *recorded + 1, to = applied->index;
  // Each CID the span names, with the last of its pins there that was allocated here.
  std::map<Cid, std::optional<Pin>> touched;
  bool complete = !entries.empty() && entries.front().index <= from;
  for (const raft::Entry& entry : entries) {
    if (entry.index < from || entry.index > to || entry.type != raft::EntryType::Normal) continue;
    auto command = decode_command(entry.data);
    if (!command) continue;  // it was applied, so it decoded then; nothing to learn from it
    const auto* ops = std::get_if<std::vector<PinsetOp>>(&*command);
    if (ops == nullptr) continue;
    for (const PinsetOp& op : *ops) {
      auto& held = touched[op.pin.cid];
      if (op.kind == PinsetOp::Kind::pin && op.pin.allocated_to(self_)) held = op.pin;
    }
  }
  for (const auto& [cid, held] : touched) {
    auto current = decode_stored_pin(state_.get_pin(as_chars(cid.bytes())));
    if (!current) {
      fmt::print(stderr, "clusterpin daemon: re-checking {} failed: {}\n", cid.to_string(),
                 current.error().message);
      continue;
    }
    const Pin* pin = *current ? &**current : nullptr;
    tracker_->recheck(cid, pin, pin != nullptr && pin->allocated_to(self_),
                      held ? &*held : nullptr, now());
  }
  fmt::print(stderr,
             "clusterpin daemon: tracker.db recorded entries up to {} and state.db up to {} when "
             "this peer last stopped (a kill): the {} CID(s) entries {} to {} changed are "
             "checked with IPFS again\n",
             *recorded, to, touched.size(), from, to);
  if (!complete) {
    fmt::print(stderr,
               "clusterpin daemon: entries {} to {} are no longer in the Raft log "
               "(consensus.raft.trailing_logs is lower than what a kill can leave): the CIDs "
               "they changed are not re-checked now (the next sync with IPFS finds pins it "
               "lacks)\n",
               from, entries.empty() ? to : entries.front().index - 1);
  }
}

void PinWorker::start() {
  running_ = true;
  replay_local_unpins();
  check_ipfs();
  schedule(retry_timer_, kRetryTick, &PinWorker::retry_tick);
  schedule(sync_timer_, config_.cluster.ipfs_sync_interval, &PinWorker::sync_tick);
  schedule(recover_timer_, config_.cluster.pin_recover_interval, &PinWorker::recover_tick);
  schedule(reconcile_timer_, config_.cluster.state_sync_interval, &PinWorker::reconcile_tick);
  // What the shared state asks for, whatever happened while this peer was down.
  asio::post(io_, [this, alive = alive_] {
    if (*alive) reconcile_tick();
  });
  pump();
}

void PinWorker::stop() {
  running_ = false;
  if (db_) state_.set_unpin_guard(nullptr);
  end_reconcile();
  for (auto* t : {&retry_timer_, &sync_timer_, &recover_timer_, &reconcile_timer_, &ipfs_timer_,
                  &slice_timer_, &flush_timer_}) {
    t->cancel();
  }
  // A clean stop commits tracker.db, so the local unpins it records now need no check at the
  // next start (the rows left after a kill do).
  if (!db_ || tracker_commits_held()) return;
  if (auto s = db_->flush_now(); !s) {
    fmt::print(stderr, "clusterpin daemon: tracker.db: {}\n", s.error().message);
    return;
  }
  forget_recorded_unpins();
}

void PinWorker::schedule(asio::steady_timer& timer, nanoseconds every, void (PinWorker::*what)()) {
  if (!running_ || every.count() <= 0) return;
  timer.expires_after(every);
  timer.async_wait([this, &timer, every, what, alive = alive_](const std::error_code& ec) {
    if (ec || !*alive || !running_) return;
    (this->*what)();
    schedule(timer, every, what);
  });
}

void PinWorker::check_ipfs() {
  if (ipfs_checking_) return;
  ipfs_checking_ = true;
  connector_->id([this, alive = alive_](Result<net::IpfsId> id) {
    if (!*alive) return;
    ipfs_checking_ = false;
    if (id) {
      ipfs_id_ = std::move(id).value();
      ipfs_error_.clear();
    } else {
      ipfs_error_ = id.error().message;
    }
    for (auto& waiter : std::exchange(ipfs_waiters_, {})) waiter();
    if (!running_) return;
    ipfs_timer_.expires_after(ipfs_error_.empty() ? seconds(30) : seconds(2));
    ipfs_timer_.async_wait([this, alive](const std::error_code& ec) {
      if (!ec && *alive) check_ipfs();
    });
  });
}

void PinWorker::refresh_ipfs(std::chrono::milliseconds max_wait, std::function<void(bool)> done) {
  if (!running_ || !connector_) return done(false);
  // Called once: by the answer or by the timer, whichever comes first.
  auto once = std::make_shared<std::function<void(bool)>>(std::move(done));
  auto call = [once](bool answered) {
    if (!*once) return;
    auto f = std::exchange(*once, nullptr);
    f(answered);
  };
  auto timer = std::make_shared<asio::steady_timer>(io_, max_wait);
  timer->async_wait([call, timer](const std::error_code& ec) {
    if (!ec) call(false);
  });
  ipfs_waiters_.push_back([call, timer] {
    timer->cancel();
    call(true);
  });
  check_ipfs();
}

void PinWorker::flush() {
  if (!db_) return;
  // The crash test of a kill between state.db's commit of an unpin and tracker.db's commit of
  // the pin it undoes: tracker.db commits nothing, and the next applied unpin ends the process
  // right after state.db committed it.
  if (tracker_commits_held()) return;
  if (auto s = db_->flush(); !s) {
    // The changes stay buffered; the next burst or retry tick tries again.
    fmt::print(stderr, "clusterpin daemon: tracker.db: {}\n", s.error().message);
    return;
  }
  forget_recorded_unpins();
  if (db_->pending() == 0 || flush_armed_ || !running_) return;
  flush_armed_ = true;
  flush_timer_.expires_after(store::TrackerDb::kFlushInterval);
  flush_timer_.async_wait([this, alive = alive_](const std::error_code& ec) {
    if (!*alive) return;
    flush_armed_ = false;
    if (!ec) flush();
  });
}

// The pin an apply replaced or removed, when it was allocated to this peer (decoded only then:
// moves and unpins are rare next to new pins).
std::optional<Pin> PinWorker::allocated_here(std::string_view replaced) const {
  auto pin = decode_pin(replaced);
  if (!pin || !pin->allocated_to(self_)) return std::nullopt;
  return std::move(pin).value();
}

void PinWorker::pin_applied(const Pin& pin, bool new_to_pinset, const std::string* replaced) {
  bool here = pin.allocated_to(self_);
  bool was_here =
      !here && !records_rebuilt_ && replaced != nullptr && allocated_here(*replaced).has_value();
  tracker_->track(pin, here, now(), new_to_pinset, was_here);
  foreground_->last_change = steady_clock::now();
  pump_soon_.request();
}

void PinWorker::unpin_applied(const Cid& cid, const std::string* replaced) {
  std::optional<Pin> was_here =
      records_rebuilt_ || replaced == nullptr ? std::nullopt : allocated_here(*replaced);
  tracker_->untrack(cid, now(), was_here ? &*was_here : nullptr);
  foreground_->last_change = steady_clock::now();
  pump_soon_.request();
  if (fault_armed(kUnpinFault)) {
    (void)state_.commit();
    fault_point(kUnpinFault);
  }
}

// An unpin or a move away of `cid` is recorded in state.db's transaction when the tracker would
// unpin it (see PinTracker::untrack) but tracker.db has not committed what says so: a record
// that is not remote or unexpectedly_unpinned, waiting in tracker.db's buffer. Until the first
// reconcile of this run completed, tracker.db may also lack records a kill took (see
// records_rebuilt_): a pin that was allocated here is guarded then.
bool PinWorker::guard_unpin(std::string_view cid_bytes, std::string_view replaced) {
  auto cid = Cid::from_bytes(as_bytes(cid_bytes));
  if (!cid) return false;
  const std::optional<TrackerRecord>* change = db_->pending_change(*cid);
  bool guard = change != nullptr && change->has_value() &&
               (*change)->status != TrackerStatus::remote &&
               (*change)->status != TrackerStatus::unexpectedly_unpinned;
  if (!guard && !records_rebuilt_) guard = allocated_here(replaced).has_value();
  if (guard) guarded_.push_back(std::move(cid).value());
  return guard;
}

void PinWorker::forget_recorded_unpins() {
  if (guarded_.empty() || db_->commits() == guarded_checked_at_) return;
  guarded_checked_at_ = db_->commits();
  std::vector<std::string> recorded;
  std::erase_if(guarded_, [&](const Cid& cid) {
    if (db_->pending_change(cid) != nullptr) return false;
    recorded.emplace_back(as_chars(cid.bytes()));
    return true;
  });
  // A row left behind (this fails only with state.db failing) costs an unpin check at the start.
  if (auto s = state_.forget_local_unpins(recorded); !s)
    fmt::print(stderr, "clusterpin daemon: state.db: {}\n", s.error().message);
}

void PinWorker::replay_local_unpins() {
  auto rows = state_.local_unpins();
  if (!rows) {
    fmt::print(stderr, "clusterpin daemon: reading local unpins from state.db failed: {}\n",
               rows.error().message);
    return;
  }
  std::vector<std::string> unreadable;
  for (const store::LocalUnpin& row : *rows) {
    auto cid = Cid::from_bytes(as_bytes(row.cid));
    auto removed = decode_pin(row.pin);
    if (!cid || !removed) {
      unreadable.push_back(row.cid);  // not a CID and a pin: nothing can be done with it
      continue;
    }
    auto current = decode_stored_pin(state_.get_pin(row.cid));
    auto record = db_->load_brief(*cid);
    if (!current || !record) {
      fmt::print(stderr, "clusterpin daemon: checking the local unpin of {} failed: {}; kept for "
                 "the next start\n", cid->to_string(),
                 (!current ? current.error() : record.error()).message);
      continue;
    }
    if (*current && (*current)->allocated_to(self_)) {
      // Back in the pinset for this peer. Without a record the tracker would hold it as a new
      // pin in memory only, and an unpin before its pin/add would forget it while IPFS still
      // holds it from before: the row stays until a start finds a record.
      tracker_->track(**current, true, now());
      if (!record->has_value()) continue;
    } else {
      // Removed, or moved away (unpinned here, then remote). The row says IPFS may hold it
      // whatever tracker.db committed: it was written because a change that says so (a pin/add
      // after an `unexpectedly_unpinned` record, say) was still in tracker.db's buffer, so the
      // committed record is not asked whether there is anything to unpin.
      const Pin* moved_to = *current ? &**current : nullptr;
      tracker_->recheck(*cid, moved_to, false, &*removed, now());
    }
    guarded_.push_back(std::move(cid).value());
  }
  if (!rows->empty()) {
    fmt::print(stderr,
               "clusterpin daemon: re-checked {} unpin(s) of pins held here that tracker.db had "
               "not recorded when this peer last stopped (each is unpinned, or kept if the "
               "pinset allocates it here again)\n",
               rows->size());
  }
  if (!unreadable.empty()) (void)state_.forget_local_unpins(unreadable);
}

// The reader of a running pass may show the replaced state: start over.
void PinWorker::state_replaced() { begin_reconcile(); }

Status PinWorker::make_durable() { return db_ ? db_->flush_now() : Status::ok_status(); }

void PinWorker::retry_tick() { pump(); }

void PinWorker::pump() {
  if (!running_) return;
  if (below_half_window() && tracker_->may_have_waiting()) refill();
  std::vector<TrackerOperation> fresh;
  for (TrackerOperation& op : tracker_->next_operations(now())) {
    if (op.op == TrackerOp::pin && !op.known && op.pin.options.mode == PinMode::recursive &&
        (!op.pin.options.pin_update || *op.pin.options.pin_update == op.pin.cid)) {
      fresh.push_back(std::move(op));
    } else {
      run(std::move(op));
    }
  }
  run_fresh(std::move(fresh));
  cancel_superseded_pins();
  flush();
  if (reconcile_paused_ && below_half_window()) {
    reconcile_paused_ = false;
    post_reconcile_slice();
  }
}

// On the io thread, like the applies: state.db's own connection reads the pins.
PinsetLookup PinWorker::pinset_lookup() {
  auto pin_of = [this](const Cid& cid) {
    return decode_stored_pin(state_.get_pin(as_chars(cid.bytes())));
  };
  return {pin_of, self_};
}

// New pins that found the queue full wait in tracker.db's waiting list; they are queued, oldest
// first, once the queue drained to half the window.
void PinWorker::refill() {
  auto taken = tracker_->refill(pinset_lookup(), now());
  if (!taken) {
    fmt::print(stderr, "clusterpin daemon: queuing waiting pins failed: {}\n", taken.error().message);
    return;
  }
  // The next batch in a later turn of the io thread (Raft and the API run in between).
  if (*taken > 0 && tracker_->may_have_waiting() && below_half_window()) pump_soon_.request();
}

std::function<void(Status)> PinWorker::finisher(Cid cid, std::uint64_t id) {
  return [this, cid = std::move(cid), id, alive = alive_](Status result) {
    if (!*alive || !tracker_) return;
    running_pins_.erase(id);
    tracker_->operation_finished(cid, id, result, now());
    pump();
  };
}

constexpr const char* kSupersededPin = "cancelled: an unpin of this CID replaced the pin";

std::shared_ptr<net::HttpCancel> PinWorker::cancel_token(std::uint64_t id) {
  auto token = std::make_shared<net::HttpCancel>();
  running_pins_[id].own = token;
  return token;
}

void PinWorker::cancel_superseded_pins() {
  for (std::uint64_t id : tracker_->take_superseded_pins()) {
    auto it = running_pins_.find(id);
    if (it == running_pins_.end()) continue;
    it->second.cancelled = true;
    for (const auto& token : {it->second.own, it->second.batch}) {
      if (token) token->cancel(kSupersededPin);
    }
  }
}

void PinWorker::run(TrackerOperation op) {
  const Cid& cid = op.pin.cid;
  auto finished = finisher(cid, op.id);
  if (op.op == TrackerOp::unpin) return connector_->pin_rm(cid, finished);
  const auto& update = op.pin.options.pin_update;
  // pin/update pins recursively: a direct pin of the new CID is a pin/add of that CID alone.
  if (update && *update != cid && op.pin.options.mode == PinMode::recursive) {
    return connector_->pin_update(*update, cid, finished, cancel_token(op.id));
  }
  connector_->pin_add(cid, op.pin.options.mode, finished, op.known, cancel_token(op.id));
}

void PinWorker::run_fresh(std::vector<TrackerOperation> ops) {
  auto at = steady_clock::now();
  if (ops.size() < 2 || at < singles_until_) {
    for (TrackerOperation& op : ops) run(std::move(op));
    return;
  }
  for (std::size_t first = 0; first < ops.size(); first += kPinAddBatch) {
    std::size_t end = std::min(ops.size(), first + kPinAddBatch);
    std::vector<Cid> cids;
    std::vector<std::pair<Cid, std::uint64_t>> batch;  // (CID, operation id)
    // Cancelling one pin of the batch ends the call; the others are then asked on their own.
    auto batch_cancel = std::make_shared<net::HttpCancel>();
    for (std::size_t i = first; i < end; ++i) {
      cids.push_back(ops[i].pin.cid);
      batch.emplace_back(ops[i].pin.cid, ops[i].id);
      running_pins_[ops[i].id].batch = batch_cancel;
    }
    connector_->pin_add_many(std::move(cids), [this, batch = std::move(batch), at,
                                               alive = alive_](Status result) {
      if (!*alive || !tracker_) return;
      if (!result || steady_clock::now() - at > kSlowPinAddBatch) {
        singles_until_ = steady_clock::now() + kSinglesAfterSlowBatch;
      }
      if (result) {
        for (const auto& [cid, id] : batch) {
          running_pins_.erase(id);
          tracker_->operation_finished(cid, id, {}, now());
        }
        pump();
        return;
      }
      // One answer for all says nothing about each: every CID is asked again on its own (those
      // IPFS pinned before the failure are found by pin/ls), and those answers decide.
      for (const auto& [cid, id] : batch) {
        if (running_pins_[id].cancelled) {
          finisher(cid, id)(make_error(kSupersededPin));
          continue;
        }
        running_pins_[id].batch = nullptr;
        connector_->pin_add(cid, PinMode::recursive, finisher(cid, id), true, cancel_token(id));
      }
    }, batch_cancel);
  }
}

Result<std::optional<TrackerRecord>> PinWorker::status(const Cid& cid) { return tracker_->status(cid); }

Result<TrackerStore::LeavingPage> PinWorker::leaving(const std::optional<Cid>& after,
                                                     std::size_t max, std::size_t max_scanned) {
  return tracker_->leaving(after, max, max_scanned);
}

Result<std::optional<TrackerRecord>> PinWorker::recover(const Cid& cid) {
  // The tests' "recover-fails": this peer's own recover fails as a tracker.db read error would.
  if (fault_armed("recover-fails")) return make_error("tracker.db: recover failed (fault injection)");
  PinsetLookup pinset = pinset_lookup();
  auto r = tracker_->recover(cid, now(), &pinset);
  pump();
  return r;
}

Result<std::vector<TrackerRecord>> PinWorker::recover_all() {
  PinsetLookup pinset = pinset_lookup();
  auto r = tracker_->recover_all(now(), kRecoverBatch, &pinset);
  pump();
  return r;
}

void PinWorker::recover_tick() { (void)recover_all(); }

void PinWorker::sync(std::function<void(Result<std::size_t>)> done) {
  if (syncing_) return done(make_error("a sync with IPFS is already running"));
  syncing_ = true;
  // One streamed listing of recursive and direct pins, kept apart as 64-bit fingerprints: an
  // IPFS holding 10M pins costs 80-160 MB here for the length of the sync, not ~1 GB.
  struct Listed {
    CompactCidSet recursive, direct;
  };
  auto listed = std::make_shared<Listed>();
  UnixNanos listed_at = now();
  auto listing_began = steady_clock::now();
  connector_->pin_ls("all",
      [listed](const Cid& cid, std::string_view type) {
        (type == "direct" ? listed->direct : listed->recursive).add(cid.bytes());
        return true;
      },
      [this, listed, listed_at, listing_began, done, alive = alive_](Status s) {
        if (!*alive) return;
        syncing_ = false;
        if (!s) return done(s.error());
        // The tests' "sync-clock-steps-back": the wall clock went back an hour meanwhile.
        UnixNanos ended_at = now() - (fault_armed("sync-clock-steps-back") ? 3600 * 1'000'000'000LL : 0);
        auto took = steady_clock::now() - listing_began;
        if (Status clock = listing_clock_check(listed_at, ended_at, took); !clock)
          return done(clock.error());
        listed->recursive.seal();
        listed->direct.seal();
        // A recursive pin counts only as a recursive one; a direct pin either way.
        auto in_ipfs = [&](const Cid& cid, PinMode mode) {
          return listed->recursive.contains(cid.bytes()) ||
                 (mode == PinMode::direct && listed->direct.contains(cid.bytes()));
        };
        auto changed = tracker_->reconcile_ipfs(in_ipfs, listed_at, now());
        pump();
        done(std::move(changed));
      },
      ipfs_listing_pace());
}

void PinWorker::sync_tick() {
  sync([](Result<std::size_t> r) {
    if (!r) fmt::print(stderr, "clusterpin daemon: sync with IPFS failed: {}\n", r.error().message);
  });
}

void PinWorker::reconcile_tick() {
  if (reconcile_) {
    reconcile_again_ = true;
    return;
  }
  begin_reconcile();
}


void PinWorker::begin_reconcile() {
  end_reconcile();
  if (!tracker_ || !running_) return;
  reconcile_.emplace();
  reconcile_->id = ++reconcile_passes_;
  post_reconcile_slice();
}

void PinWorker::end_reconcile() {
  reconcile_.reset();
  reconcile_paused_ = false;
}

void PinWorker::post_reconcile_slice() {
  if (!reconcile_) return;
  asio::post(io_, [this, pass = reconcile_->id, alive = alive_] {
    if (*alive) reconcile_slice(pass);
  });
}

void PinWorker::reconcile_slice(std::uint64_t pass) {
  if (!reconcile_ || reconcile_->id != pass || reconcile_paused_ || reconcile_->listing) return;
  if (!running_ || !tracker_) return end_reconcile();
  auto started = steady_clock::now();
  ReconcilePass& p = *reconcile_;
  // A reader per slice, closed before the io thread turns: a snapshot restore ends the readers
  // open at that moment. Each slice so reads the pinset as it is now.
  auto opened = state_.open_reader();
  Status began = opened ? opened->begin_snapshot() : Status(opened.error());
  if (!began) {
    fmt::print(stderr, "clusterpin daemon: reconciling with the shared state failed: {}\n",
               began.error().message);
    return end_reconcile();
  }
  std::optional<store::StateReader> reader(std::move(opened).value());
  UnixNanos at = now();
  // Expired pins are found in the same listing: exactly one live peer (the XOR-closest to each
  // CID) proposes each unpin, at most kRecoverBatch per pass.
  bool expiry = cluster_.live_peers && cluster_.commit;
  std::vector<PeerId> peers = expiry ? cluster_.live_peers() : std::vector<PeerId>{};
  std::vector<PinsetOp> expired;
  SharedPinsetScanFrom scan = [&](const std::optional<Cid>& after,
                                  const std::function<bool(const Pin&)>& visit) {
    std::string from = after ? std::string(as_chars(after->bytes())) : std::string();
    return reader->for_each_pin(
        [&](std::string_view, std::string_view bytes) {
          auto pin = decode_pin(bytes);
          if (!pin) return true;
          if (expiry && (!p.expiry_after || *p.expiry_after < pin->cid)) {
            p.expiry_after = pin->cid;
            UnixNanos expire = pin->options.expire_at;
            if (expire != kZeroTime && expire <= at && p.expired < kRecoverBatch &&
                closest_peer(pin->cid, self_, peers)) {
              ++p.expired;
              // Only if still this pin: one renewed (a new expiry) meanwhile stays.
              expired.push_back({PinsetOp::Kind::unpin, Pin(pin->cid), pin_version(bytes)});
            }
          }
          return visit(*pin);
        },
        from);
  };
  auto in_pinset = [&](const Cid& cid) {
    auto found = reader->get_pin(as_chars(cid.bytes()));
    return found && found->has_value();
  };
  Status s = tracker_->reconcile_shared_slice(p.cursor, scan, in_pinset, self_, at,
                                              kReconcileSlice, tracker_->window());
  reader.reset();
  if (!s) {
    fmt::print(stderr, "clusterpin daemon: reconciling with the shared state failed: {}\n",
               s.error().message);
  }
  bool finished = !s || p.cursor.done();
  bool paused = !finished && p.cursor.paused;
  if (finished && p.cursor.checked_in_ipfs > 0) {
    fmt::print(stderr,
               "clusterpin daemon: {} pins were new to this peer's tracker; {} of the {} checked "
               "against one pin/ls listing of IPFS were already pinned there (no pin/add each)\n",
               p.cursor.untracked, p.cursor.found_in_ipfs, p.cursor.checked_in_ipfs);
  }
  if (finished && s) {
    records_rebuilt_ = true;
    auto took = duration_cast<duration<double>>(steady_clock::now() - p.started).count();
    // Quiet when there is nothing to tell: a pass every state_sync_interval is routine.
    if (p.cursor.changes > 0 || took >= 10) {
      fmt::print(stderr,
                 "clusterpin daemon: reconciled with the shared state: {} pins checked in "
                 "{:.1f} s, {} CIDs changed\n",
                 p.cursor.pins, took, p.cursor.changes);
    }
  }
  if (finished) end_reconcile();
  if (!expired.empty()) cluster_.commit(std::move(expired));
  pump();
  if (finished) {
    if (reconcile_again_) {
      reconcile_again_ = false;
      begin_reconcile();
    }
    return;
  }
  if (!reconcile_ || reconcile_->id != pass) return;  // replaced meanwhile
  if (reconcile_->cursor.wants_ipfs_listing) return list_ipfs_for_reconcile();
  if (paused) {
    // Resumed by pump once the queues drained to half the window.
    reconcile_paused_ = true;
    pump();
    return;
  }
  pace_reconcile_slice(steady_clock::now() - started);
}

std::shared_ptr<void> PinWorker::listing_started() {
  ++foreground_->listings;
  // A token that points at nothing: its deleter runs when the last copy is dropped.
  return std::shared_ptr<void>(nullptr, [fg = foreground_](void*) { --fg->listings; });
}

void PinWorker::pace_reconcile_slice(steady_clock::duration last_slice) {
  slice_timer_.expires_after(foreground_->pause_after(last_slice, kBackgroundPause));
  slice_timer_.async_wait([this, pass = reconcile_->id, alive = alive_](const std::error_code& ec) {
    if (!ec && *alive) reconcile_slice(pass);
  });
}

net::ReadPace PinWorker::ipfs_listing_pace() const {
  return [fg = foreground_](steady_clock::duration took) { return fg->pause_after(took, 0); };
}

void PinWorker::list_ipfs_for_reconcile() {
  ReconcilePass& p = *reconcile_;
  p.listing = true;
  // Fingerprints as for sync: 8-16 bytes per IPFS pin for the rest of the pass.
  auto pinned = std::make_shared<CompactCidSet>();
  connector_->pin_ls("recursive",
      [pinned](const Cid& cid, std::string_view) {
        pinned->add(cid.bytes());
        return true;
      },
      [this, pinned, pass = p.id, alive = alive_](Status s) {
        if (!*alive || !reconcile_ || reconcile_->id != pass) return;
        ReconcilePass& p = *reconcile_;
        p.listing = false;
        if (s) {
          pinned->seal();
          p.cursor.held_by_ipfs = [pinned](const Cid& cid) {
            return pinned->contains(cid.bytes());
          };
          return post_reconcile_slice();
        }
        if (++p.listing_failures >= kListingAttempts) {
          fmt::print(stderr,
                     "clusterpin daemon: listing IPFS's pins failed {} times ({}); pins new to "
                     "this peer's tracker are each pinned with pin/add\n",
                     p.listing_failures, s.error().message);
          p.cursor.list_ipfs_after = SIZE_MAX;
          return post_reconcile_slice();
        }
        auto wait = seconds(5) * (1 << (p.listing_failures - 1));
        fmt::print(stderr,
                   "clusterpin daemon: listing IPFS's pins failed ({}); trying again in {} s\n",
                   s.error().message, wait.count());
        p.listing = true;  // the pass keeps waiting for its listing
        slice_timer_.expires_after(wait);
        slice_timer_.async_wait([this, pass, alive](const std::error_code& ec) {
          if (ec || !*alive || !reconcile_ || reconcile_->id != pass) return;
          list_ipfs_for_reconcile();
        });
      },
      ipfs_listing_pace());
}

}  // namespace clusterpin::node
