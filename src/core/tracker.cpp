// The pin tracker's decisions (see tracker.hpp): which operation each applied pinset change
// needs, the order operations start in, and what their results mean. Every record change is
// written through to the TrackerStore before the call returns, except for new pins that are
// only queued (see `Entry::stored`); memory otherwise only indexes the queues.
#include "core/tracker.hpp"

#include <algorithm>
#include <array>
#include <cassert>
#include <initializer_list>
#include <utility>

#include <fmt/format.h>

#include "core/multihash.hpp"

namespace clusterpin {

namespace {

constexpr std::array<std::string_view, kTrackerStatusCount> kStatusNames = {
    "undefined",
    "pin_queued",
    "pinning",
    "pinned",
    "pin_error",
    "unpin_queued",
    "unpinning",
    "unpinned",
    "unpin_error",
    "remote",
    "unexpectedly_unpinned",
    "cluster_error",
};

constexpr std::string_view kNotPinnedError = "the item should be pinned but it is not";

[[maybe_unused]] bool is_settled(TrackerStatus s) {
  return s == TrackerStatus::pinned || s == TrackerStatus::remote || s == TrackerStatus::unpinned;
}

TrackerStatus queued_status(TrackerOp op) {
  return op == TrackerOp::pin ? TrackerStatus::pin_queued : TrackerStatus::unpin_queued;
}
TrackerStatus running_status(TrackerOp op) {
  return op == TrackerOp::pin ? TrackerStatus::pinning : TrackerStatus::unpinning;
}
TrackerStatus error_status(TrackerOp op) {
  return op == TrackerOp::pin ? TrackerStatus::pin_error : TrackerStatus::unpin_error;
}

std::string queue_full_error(std::int64_t max) {
  return fmt::format("pin/unpin operation queue is full (max_pin_queue_size {})", max);
}

// blake2b-256(cid) XOR blake2b-256(peer), compared as big-endian numbers: the distance IPFS
// Cluster uses to pick one peer per CID without talking to the others.
Bytes xor_distance(const Bytes& cid_digest, const PeerId& peer) {
  Multihash peer_hash = Multihash::compute(HashFunction::blake2b_256, peer.bytes());
  ByteView pd = peer_hash.digest();
  Bytes out(cid_digest.size());
  for (std::size_t i = 0; i < out.size(); ++i) out[i] = cid_digest[i] ^ pd[i];
  return out;
}

}  // namespace

std::string_view status_name(TrackerStatus status) {
  auto i = static_cast<std::size_t>(status);
  return i < kStatusNames.size() ? kStatusNames[i] : "undefined";
}

Result<TrackerStatus> parse_status(std::string_view name) {
  for (std::size_t i = 0; i < kStatusNames.size(); ++i)
    if (kStatusNames[i] == name) return static_cast<TrackerStatus>(i);
  return make_error(fmt::format("\"{}\" is not a tracker status; accepted: {}", name,
                                fmt::join(kStatusNames, ", ")));
}

StatusFilter StatusFilter::all() {
  return StatusFilter((1U << kTrackerStatusCount) - 1);
}

StatusFilter StatusFilter::of(std::initializer_list<TrackerStatus> statuses) {
  StatusFilter f = none();
  for (TrackerStatus s : statuses) f = f.with(s);
  return f;
}

std::string status_filter_names() {
  return fmt::format("{}, error, queued", fmt::join(kStatusNames, ", "));
}

Result<StatusFilter> parse_status_filter(std::string_view text) {
  if (text.empty()) return StatusFilter::all();
  StatusFilter filter = StatusFilter::none();
  while (true) {
    std::size_t comma = text.find(',');
    std::string_view name = text.substr(0, comma);
    if (name == "error") {
      filter = filter.with(TrackerStatus::pin_error)
                   .with(TrackerStatus::unpin_error)
                   .with(TrackerStatus::cluster_error);
    } else if (name == "queued") {
      filter = filter.with(TrackerStatus::pin_queued).with(TrackerStatus::unpin_queued);
    } else {
      auto status = parse_status(name);
      if (!status)
        return make_error(
            fmt::format("status filter: \"{}\" is not a status; accepted: {}", name,
                        status_filter_names()));
      filter = filter.with(*status);
    }
    if (comma == std::string_view::npos) break;
    text.remove_prefix(comma + 1);
  }
  return filter;
}

TrackerLimits tracker_limits(const PinTrackerConfig& config) {
  TrackerLimits limits;
  limits.concurrent_pins = config.concurrent_pins;
  limits.max_pin_queue_size = config.max_pin_queue_size;
  limits.priority_pin_max_age_ns = config.priority_pin_max_age.count();
  limits.priority_pin_max_retries = config.priority_pin_max_retries;
  return limits;
}

// ---- opening ---------------------------------------------------------------------------------

Result<PinTracker> PinTracker::open(TrackerStore& store, TrackerLimits limits, UnixNanos now) {
  assert(limits.concurrent_pins > 0 && limits.concurrent_unpins > 0 &&
         limits.max_pin_queue_size > 0);
  PinTracker tracker(store, limits);
  // Collected first (the store may not be written while it streams), but only what goes back
  // into a queue: unexpectedly_unpinned records and errors parked for a full queue wait in the
  // store for recover, and there may be millions of them (IPFS lost its pins): holding them all
  // here took 2.4 GB at 10M pins.
  std::vector<TrackerRecord> unsettled;
  Status loaded = store.load_active([&](TrackerRecord&& r) {
    bool waits_for_recover =
        r.status == TrackerStatus::unexpectedly_unpinned ||
        ((r.status == TrackerStatus::pin_error || r.status == TrackerStatus::unpin_error) &&
         r.error.rfind("pin/unpin operation queue is full", 0) == 0);
    if (!waits_for_recover) unsettled.push_back(std::move(r));
    return true;
  });
  if (!loaded) return loaded.error();
  for (TrackerRecord& r : unsettled) {
    switch (r.status) {
      case TrackerStatus::pinning:
      case TrackerStatus::unpinning:
        // Interrupted by the stop: its outcome is unknown, so it runs again.
        r.status = queued_status(r.op);
        r.next_attempt_at = now;
        r.timestamp = now;
        r.priority = r.op == TrackerOp::pin && tracker.is_priority(r.pin, r.attempt_count, now);
        store.save(r);
        tracker.queue_or_park(std::move(r), now);
        break;
      case TrackerStatus::pin_queued:
      case TrackerStatus::unpin_queued:
      case TrackerStatus::pin_error:
      case TrackerStatus::unpin_error:
        // Pins may have aged past priority_pin_max_age while the peer was down.
        r.priority = r.op == TrackerOp::pin && tracker.is_priority(r.pin, r.attempt_count, now);
        tracker.queue_or_park(std::move(r), now);
        break;
      default:
        break;
    }
  }
  return tracker;
}

// ---- applied pinset changes ------------------------------------------------------------------

void PinTracker::track(const Pin& pin, bool allocated_here, UnixNanos now, bool new_to_pinset,
                       bool was_allocated_here) {
  Entry* e = find(pin.cid);
  // A CID new to the pinset, allocated here and not in memory: whatever the store may still
  // hold of it (a parked unpin error, a record a crash left) is about a pin that left the
  // pinset, and the worst a fresh pin does is an idempotent pin/add, so the store is not read.
  if (allocated_here && new_to_pinset && e == nullptr)
    return enqueue_fresh(TrackerRecord(pin), now);
  auto prev = e != nullptr ? Result<std::optional<TrackerRecord>>(std::optional(e->record))
                           : store_->load(pin.cid);
  // A store read failure leaves us unsure of the past: act as if the CID were new (pinning an
  // already pinned CID and recording remote are both harmless).
  std::optional<TrackerRecord> rec = prev ? std::move(*prev) : std::nullopt;

  if (allocated_here) {
    if (!rec) return enqueue_fresh(TrackerRecord(pin), now);
    TrackerRecord r = std::move(*rec);
    // Pinned the same way by IPFS: other changes (name, metadata) need no IPFS call.
    bool same = PinIpfsForm::of(r.pin) == PinIpfsForm::of(pin);
    bool changed = r.remote || encode_pin(r.pin) != encode_pin(pin);
    r.pin = pin;
    r.remote = false;
    if (r.op == TrackerOp::pin) {
      if (e != nullptr && (r.status == TrackerStatus::pin_queued ||
                           (r.status == TrackerStatus::pinning && same))) {
        // The same operation is already coming (a queued one starts with the pin as it is
        // then): only its options change. A pin/add under way in another mode or depth (direct
        // while recursive is now asked) would settle as pinned without what is asked: a new
        // operation supersedes it (below).
        e->record.pin = pin;
        e->record.remote = false;
        if (e->stored) store_->save(e->record);
        return;
      }
      if (r.status == TrackerStatus::pinned && same) {
        if (changed) store_->save(r);  // e.g. a new name; a repeated pin writes nothing
        return;
      }
      std::int64_t attempts = r.status == TrackerStatus::pinned ? 0 : r.attempt_count;
      return enqueue(std::move(r), TrackerOp::pin, now, attempts);
    }
    return enqueue(std::move(r), TrackerOp::pin, now, 0);
  }

  // Not allocated here.
  if (!rec) {
    if (!was_allocated_here) return;  // remote, which needs no record (see settle)
    TrackerRecord r(pin);
    r.remote = true;
    return enqueue(std::move(r), TrackerOp::unpin, now, 0);
  }
  TrackerRecord r = std::move(*rec);
  if (r.status == TrackerStatus::remote && encode_pin(r.pin) == encode_pin(pin))
    return;  // nothing new
  r.pin = pin;
  r.remote = true;
  if (r.status == TrackerStatus::remote || r.status == TrackerStatus::unexpectedly_unpinned ||
      (e != nullptr && !e->stored)) {
    // Nothing of it is pinned here (or a new pin that never reached IPFS, see start()): a
    // pin/rm would remove what someone else pinned in this IPFS.
    return settle(std::move(r), TrackerStatus::remote, now);
  }
  if (r.op == TrackerOp::unpin && e != nullptr) {
    // The unpin under way already frees the disk; it now ends as `remote`.
    e->record.pin = pin;
    e->record.remote = true;
    e->stored = true;
    store_->save(e->record);
    return;
  }
  std::int64_t attempts = r.op == TrackerOp::unpin ? r.attempt_count : 0;
  enqueue(std::move(r), TrackerOp::unpin, now, attempts);
}

void PinTracker::untrack(const Cid& cid, UnixNanos now, const Pin* allocated_here) {
  auto prev = lookup(cid);
  std::optional<TrackerRecord> rec = prev ? std::move(*prev) : std::nullopt;
  if (!rec) {
    if (allocated_here != nullptr) enqueue(TrackerRecord(*allocated_here), TrackerOp::unpin, now, 0);
    return;
  }
  TrackerRecord r = std::move(*rec);
  r.remote = false;
  if (r.status == TrackerStatus::remote || r.status == TrackerStatus::unexpectedly_unpinned) {
    // Never pinned here, or already gone from IPFS: nothing to ask IPFS.
    forget(cid);
    return;
  }
  Entry* e = find(cid);
  if (e != nullptr && !e->stored) {
    forget(cid);  // a new pin that never reached IPFS (see start()): nothing to undo
    return;
  }
  if (r.op == TrackerOp::unpin && e != nullptr) {
    e->record.remote = false;  // the unpin under way now ends with the CID forgotten
    e->stored = true;
    store_->save(e->record);
    return;
  }
  std::int64_t attempts = r.op == TrackerOp::unpin ? r.attempt_count : 0;
  enqueue(std::move(r), TrackerOp::unpin, now, attempts);
}

void PinTracker::recheck(const Cid& cid, const Pin* current, bool allocated_here,
                         const Pin* held_in_window, UnixNanos now) {
  auto prev = lookup(cid);
  std::optional<TrackerRecord> rec = prev ? std::move(*prev) : std::nullopt;
  if (current != nullptr && allocated_here) {
    TrackerRecord r = rec ? std::move(*rec) : TrackerRecord(*current);
    std::int64_t attempts =
        r.op == TrackerOp::pin && r.status != TrackerStatus::pinned ? r.attempt_count : 0;
    r.pin = *current;
    r.remote = false;
    // Stored, not held in memory only: an unpin before its pin/add must still reach IPFS.
    return enqueue(std::move(r), TrackerOp::pin, now, attempts);
  }
  bool maybe_held = held_in_window != nullptr ||
                    (rec && rec->status != TrackerStatus::remote &&
                     rec->status != TrackerStatus::unexpectedly_unpinned);
  if (!maybe_held) return;
  TrackerRecord r = rec ? std::move(*rec) : TrackerRecord(*held_in_window);
  std::int64_t attempts = r.op == TrackerOp::unpin ? r.attempt_count : 0;
  if (current != nullptr) r.pin = *current;  // otherwise the record's, or the span's, pin
  r.remote = current != nullptr;
  enqueue(std::move(r), TrackerOp::unpin, now, attempts);
}

// ---- running operations ----------------------------------------------------------------------

std::vector<TrackerOperation> PinTracker::next_operations(UnixNanos now, std::size_t max) {
  std::vector<TrackerOperation> out;
  auto drain = [&](std::set<QueueKey>& queue, std::size_t& running, std::int64_t limit) {
    auto it = queue.begin();
    while (it != queue.end() && std::get<0>(*it) <= now && out.size() < max &&
           running < static_cast<std::size_t>(limit)) {
      auto next = std::next(it);
      Entry& entry = active_.at(std::get<2>(*it));
      // One operation per CID: a superseded one still in IPFS must end first.
      if (entry.running_id == 0) start(entry, out, now);
      it = next;
    }
  };
  drain(priority_queue_, pins_running_, limits_.concurrent_pins);
  drain(pin_queue_, pins_running_, limits_.concurrent_pins);
  drain(unpin_queue_, unpins_running_, limits_.concurrent_unpins);
  return out;
}

void PinTracker::start(Entry& entry, std::vector<TrackerOperation>& out, UnixNanos now) {
  assert(entry.running_id == 0);  // one operation per CID in IPFS at a time
  dequeue(entry);
  TrackerRecord& r = entry.record;
  entry.running_id = next_op_id_++;
  entry.running_op = r.op;
  (r.op == TrackerOp::pin ? pins_running_ : unpins_running_)++;
  r.status = running_status(r.op);
  r.timestamp = now;
  // Written before IPFS is asked, so anything IPFS may hold has a record (for a new pin this is
  // its first write; with a fast IPFS it coalesces with `pinned` in one commit).
  bool known = entry.stored;
  entry.stored = true;
  store_->save(r);
  out.push_back(TrackerOperation{entry.running_id, r.op, r.pin, known});
  check_invariants(entry);
}

void PinTracker::operation_finished(const Cid& cid, std::uint64_t id, const Status& result,
                                    UnixNanos now) {
  Entry* e = find(cid);
  if (e == nullptr || e->running_id != id || id == 0) return;  // unknown or already reported
  TrackerOp op = e->running_op;
  (op == TrackerOp::pin ? pins_running_ : unpins_running_)--;
  e->running_id = 0;
  e->running_op = TrackerOp::none;
  bool current =
      e->queue == Queue::none && e->record.status == running_status(op) && e->record.op == op;
  if (!current) {
    // Superseded: a newer operation (or a decision that needs none) replaced it while it ran.
    release_if_idle(cid);
    return;
  }
  TrackerRecord r = e->record;
  if (result.ok()) {
    r.error.clear();
    r.attempt_count = 0;
    if (op == TrackerOp::pin) return settle(std::move(r), TrackerStatus::pinned, now);
    if (r.remote) return settle(std::move(r), TrackerStatus::remote, now);
    forget(cid);
    return;
  }
  r.status = error_status(op);
  r.error = result.error().message;
  r.attempt_count += 1;
  r.timestamp = now;
  r.next_attempt_at = now + backoff(r.attempt_count);
  r.priority = op == TrackerOp::pin && is_priority(r.pin, r.attempt_count, now);
  store_->save(r);
  active_.erase(cid);
  queue_or_park(std::move(r), now);
}

// ---- reading ---------------------------------------------------------------------------------

Result<std::optional<TrackerRecord>> PinTracker::status(const Cid& cid) {
  return lookup(cid);
}


// ---- recovering ------------------------------------------------------------------------------

Result<std::optional<TrackerRecord>> PinTracker::recover(const Cid& cid, UnixNanos now,
                                                         const PinsetLookup* pinset) {
  auto prev = lookup(cid);
  if (!prev) return prev.error();
  if (!*prev) return std::optional<TrackerRecord>();
  TrackerRecord r = std::move(**prev);
  bool errored = r.status == TrackerStatus::pin_error || r.status == TrackerStatus::unpin_error ||
                 r.status == TrackerStatus::unexpectedly_unpinned;
  if (!errored) return std::optional<TrackerRecord>();
  if (r.status == TrackerStatus::unpin_error && pinset != nullptr) {
    auto pin = pinset->pin_of(cid);
    if (!pin) return pin.error();
    if (*pin) {
      track(**pin, (*pin)->allocated_to(pinset->self), now);
      return lookup(cid);
    }
  }
  TrackerOp op = r.status == TrackerStatus::unpin_error ? TrackerOp::unpin : TrackerOp::pin;
  std::int64_t attempts = r.status == TrackerStatus::unexpectedly_unpinned ? 0 : r.attempt_count;
  enqueue(std::move(r), op, now, attempts);
  return lookup(cid);
}

Result<std::vector<TrackerRecord>> PinTracker::recover_all(UnixNanos now, std::size_t limit,
                                                           const PinsetLookup* pinset) {
  std::vector<Cid> chosen;
  Status scanned = store_->load_active([&](TrackerRecord&& r) {
    if (chosen.size() >= limit) return false;
    if (recover_after_ && !(*recover_after_ < r.cid())) return true;
    if (r.status == TrackerStatus::pin_error || r.status == TrackerStatus::unpin_error ||
        r.status == TrackerStatus::unexpectedly_unpinned)
      chosen.push_back(r.cid());
    return chosen.size() < limit;
  });
  if (!scanned) return scanned.error();
  // A full batch may have stopped short of the last record: the next call goes on after it.
  recover_after_ = chosen.size() >= limit && limit > 0 ? std::optional<Cid>(chosen.back()) : std::nullopt;
  std::vector<TrackerRecord> touched;
  for (const Cid& cid : chosen) {
    auto r = recover(cid, now, pinset);
    if (!r) return r.error();
    if (*r) touched.push_back(std::move(**r));
  }
  return touched;
}

// ---- reconciling -----------------------------------------------------------------------------

Status PinTracker::scan_in_chunks(const std::function<bool(const TrackerRecord&)>& pick,
                                  const std::function<Status(const Cid&)>& apply) {
  std::optional<Cid> after;
  while (true) {
    std::vector<Cid> picked;
    std::optional<Cid> last;
    bool more = false;
    Status scanned = store_->for_each(
        [&](const TrackerRecord& r) {
          last = r.cid();
          if (pick(r)) picked.push_back(r.cid());
          more = picked.size() >= kScanChunk;
          return !more;
        },
        after);
    if (!scanned) return scanned;
    // The listing has ended: the store may be written again.
    for (const Cid& cid : picked)
      if (Status s = apply(cid); !s) return s;
    if (!more) return Status::ok_status();
    after = last;
  }
}

Status listing_clock_check(UnixNanos wall_start, UnixNanos wall_end,
                           std::chrono::nanoseconds monotonic_elapsed) {
  const std::int64_t back = monotonic_elapsed.count() - (wall_end - wall_start);
  if (back <= std::chrono::nanoseconds(kListingClockSlack).count()) return Status::ok_status();
  return make_error(fmt::format(
      "the system clock stepped back by {:.1f} s while IPFS listed its pins: statuses set "
      "meanwhile cannot be told from older ones, so nothing was judged from this listing (run "
      "sync again)",
      static_cast<double>(back) / 1e9));
}

Result<std::size_t> PinTracker::reconcile_ipfs(
    const InIpfs& pinned_in_ipfs, UnixNanos listed_at, UnixNanos now,
    const std::function<void(const TrackerRecord&)>& on_change) {
  std::size_t changes = 0;
  auto drifted = [&](const TrackerRecord& r) {
    if (r.timestamp != kZeroTime && r.timestamp >= listed_at) return false;
    if (r.status == TrackerStatus::unpin_error) return !pinned_in_ipfs(r.cid(), PinMode::direct);
    bool in_ipfs = pinned_in_ipfs(r.cid(), r.pin.options.mode);
    return (r.status == TrackerStatus::pinned && !in_ipfs) ||
           (r.status == TrackerStatus::pin_error && in_ipfs) ||
           (r.status == TrackerStatus::unexpectedly_unpinned && in_ipfs);
  };
  auto repair = [&](const Cid& cid) -> Status {
    auto prev = lookup(cid);
    if (!prev) return prev.error();
    if (!*prev) return Status::ok_status();
    TrackerRecord r = std::move(**prev);
    r.timestamp = now;
    switch (r.status) {
      case TrackerStatus::pinned:
        r.status = TrackerStatus::unexpectedly_unpinned;
        r.error = std::string(kNotPinnedError);
        store_->save(r);
        break;
      case TrackerStatus::pin_error:
      case TrackerStatus::unexpectedly_unpinned:
        r.error.clear();
        r.attempt_count = 0;
        r.status = TrackerStatus::pinned;
        settle(r, TrackerStatus::pinned, now);
        break;
      case TrackerStatus::unpin_error:
        r.error.clear();
        r.attempt_count = 0;
        if (r.remote) {
          r.status = TrackerStatus::remote;
          settle(r, TrackerStatus::remote, now);
        } else {
          r.status = TrackerStatus::unpinned;
          forget(cid);
        }
        break;
      default:
        return Status::ok_status();  // changed since the scan
    }
    ++changes;
    if (on_change) on_change(r);
    return Status::ok_status();
  };
  if (Status s = scan_in_chunks(drifted, repair); !s) return s.error();
  return changes;
}

Result<std::size_t> PinTracker::reconcile_shared(const SharedPinsetScan& scan_pinset,
                                                 const std::function<bool(const Cid&)>& in_pinset,
                                                 const PeerId& self, UnixNanos now) {
  // One unbounded slice per phase: the pinset is listed once.
  SharedPinsetScanFrom from = [&](const std::optional<Cid>& after,
                                  const std::function<bool(const Pin&)>& visit) {
    return scan_pinset([&](const Pin& pin) { return (after && pin.cid <= *after) || visit(pin); });
  };
  SharedReconcileCursor cursor;
  cursor.list_ipfs_after = SIZE_MAX;  // no IPFS here: every untracked pin gets its pin/add
  while (!cursor.done()) {
    Status s = reconcile_shared_slice(cursor, from, in_pinset, self, now, SIZE_MAX);
    if (!s) return s.error();
  }
  return cursor.changes;
}

Status PinTracker::reconcile_shared_slice(SharedReconcileCursor& cursor,
                                          const SharedPinsetScanFrom& scan_pinset,
                                          const std::function<bool(const Cid&)>& in_pinset,
                                          const PeerId& self, UnixNanos now,
                                          std::size_t max_items, std::size_t max_queued) {
  using Phase = SharedReconcileCursor::Phase;
  cursor.paused = false;
  cursor.wants_ipfs_listing = false;
  max_items = std::max<std::size_t>(max_items, 1);
  max_queued = std::max<std::size_t>(max_queued, 1);
  auto queued = [&] { return queued_pins() + queued_unpins(); };
  std::size_t handled = 0;

  if (cursor.phase == Phase::pinset) {
    Status failed;
    bool stopped = false;
    // The shared pinset and the tracker are different stores: writing the tracker while the
    // pinset streams is allowed.
    Status scanned = scan_pinset(cursor.after, [&](const Pin& pin) {
      if (handled >= max_items) {
        stopped = true;
        return false;
      }
      if (queued() >= max_queued) {
        cursor.paused = stopped = true;
        return false;
      }
      bool here = pin.allocated_to(self);
      auto prev = lookup_brief(pin.cid);
      if (!prev) {
        failed = prev.error();
        return false;
      }
      const std::optional<TrackerStore::Brief>& r = *prev;
      // Elsewhere, no record is right: remote pins have none (see settle). Here, a record of
      // the pin in another mode or depth is not (a snapshot install may have changed it):
      // track() pins it again as it is now asked.
      bool right = here ? (r && !r->remote && r->op != TrackerOp::unpin &&
                           r->status != TrackerStatus::remote && r->form == PinIpfsForm::of(pin))
                        : (!r || r->remote);
      if (!right) {
        if (here && !r) {
          if (cursor.held_by_ipfs) {
            ++cursor.checked_in_ipfs;
            if (cursor.held_by_ipfs(pin.cid)) {
              ++cursor.found_in_ipfs;
              TrackerRecord fresh(pin);
              fresh.op = TrackerOp::pin;
              settle(std::move(fresh), TrackerStatus::pinned, now);
            } else {
              track(pin, here, now);
            }
          } else if (cursor.untracked >= cursor.list_ipfs_after) {
            cursor.wants_ipfs_listing = stopped = true;
            return false;
          } else {
            // Not looked up in IPFS: a kill may have taken its record after its pin/add ran, so
            // it is queued as a stored record, not as a new pin held in memory only, which an
            // unpin before its pin/add would forget while IPFS still holds it.
            enqueue(TrackerRecord(pin), TrackerOp::pin, now, 0);
          }
          ++cursor.untracked;
        } else {
          track(pin, here, now);
        }
        ++cursor.changes;
      }
      cursor.after = pin.cid;
      ++cursor.pins;
      ++handled;
      return true;
    });
    if (!scanned) return scanned;
    if (!failed) return failed;
    if (stopped) return Status::ok_status();
    cursor.phase = Phase::tracked;
    cursor.after.reset();
    if (handled >= max_items) return Status::ok_status();
  }

  if (cursor.phase == Phase::tracked && !cursor.after) {
    // New pins held only in memory are not in the store's listing below (e.g. after a snapshot
    // replaced the pinset, some may have left it).
    std::vector<Cid> left;
    for (const auto& [cid, e] : active_)
      if (!e.stored && !in_pinset(cid)) left.push_back(cid);
    for (const Cid& cid : left) {
      untrack(cid, now);
      ++cursor.changes;
    }
  }

  if (cursor.phase == Phase::tracked) {
    auto gone = [&](const TrackerRecord& r) {
      bool leaving = r.op == TrackerOp::unpin && !r.remote;
      return !leaving && !in_pinset(r.cid());
    };
    while (true) {
      if (queued() >= max_queued) {
        cursor.paused = true;
        return Status::ok_status();
      }
      // Picked CIDs are unpinned once the listing stopped (the store must not be written while
      // it lists), at most as many as the queues have room for.
      std::size_t room = std::min(kScanChunk, max_queued - queued());
      std::vector<Cid> picked;
      std::optional<Cid> last;
      bool more = false;
      Status scanned = store_->for_each(
          [&](const TrackerRecord& r) {
            if (handled >= max_items || picked.size() >= room) {
              more = true;
              return false;
            }
            last = r.cid();
            ++handled;
            if (gone(r)) picked.push_back(r.cid());
            return true;
          },
          cursor.after);
      if (!scanned) return scanned;
      for (const Cid& cid : picked) {
        untrack(cid, now);
        ++cursor.changes;
      }
      if (last) cursor.after = std::move(last);
      if (!more) {
        cursor.phase = Phase::done;
        cursor.after.reset();
        return Status::ok_status();
      }
      if (handled >= max_items) return Status::ok_status();
    }
  }
  return Status::ok_status();
}

Result<std::size_t> PinTracker::refill(const PinsetLookup& pinset, UnixNanos now) {
  if (!may_have_waiting_ || queued_pins() >= window()) return 0;
  // One bounded batch a call: waiting CIDs that were unpinned or moved away meanwhile queue
  // nothing, and looping until the queue is full read a million of them in one turn of the io
  // thread (seconds, past the election timeout). The caller comes back for the next batch.
  std::size_t want = std::min(window() - queued_pins(), kRefillBatch);
  auto cids = store_->pop_waiting(want);
  if (!cids) {
    may_have_waiting_ = false;  // tried again after the next push; the reconcile also finds them
    return cids.error();
  }
  if (cids->size() < want) may_have_waiting_ = false;
  for (const Cid& cid : *cids) {
    auto pin = pinset.pin_of(cid);
    if (!pin) return pin.error();  // the rest of this batch is found by the next reconcile
    if (*pin) track(**pin, (*pin)->allocated_to(pinset.self), now);
  }
  return cids->size();
}

std::size_t PinTracker::window() const {
  return static_cast<std::size_t>(
      std::max<std::int64_t>(std::min(limits_.fresh_pin_window, limits_.max_pin_queue_size), 1));
}

TrackerStatus reported_status(const TrackerRecord* record, const Pin* pin, const PeerId& self) {
  if (record != nullptr) return record->status;
  if (pin == nullptr) return TrackerStatus::unpinned;
  return pin->allocated_to(self) ? TrackerStatus::pin_queued : TrackerStatus::remote;
}

bool is_leaving(TrackerStatus status, TrackerOp op, bool remote) {
  return op == TrackerOp::unpin && !remote &&
         (status == TrackerStatus::unpin_queued || status == TrackerStatus::unpinning ||
          status == TrackerStatus::unpin_error);
}

Result<TrackerStore::LeavingPage> TrackerStore::load_leaving(const std::optional<Cid>& after,
                                                             std::size_t max,
                                                             std::size_t max_scanned) {
  LeavingPage page;
  std::size_t scanned = 0;
  std::optional<Cid> last;
  bool stopped = false;
  Status s = load_active([&](TrackerRecord&& r) {
    if (after && !(*after < r.cid())) return true;
    if (page.cids.size() >= max || scanned >= max_scanned) {
      stopped = true;
      return false;
    }
    ++scanned;
    last = r.cid();
    if (is_leaving(r)) page.cids.push_back(r.cid());
    return true;
  });
  if (!s) return s.error();
  if (stopped) page.resume = last;
  return page;
}

// ---- bookkeeping -----------------------------------------------------------------------------

PinTracker::Entry* PinTracker::find(const Cid& cid) {
  auto it = active_.find(cid);
  return it == active_.end() ? nullptr : &it->second;
}

Result<std::optional<TrackerRecord>> PinTracker::lookup(const Cid& cid) {
  if (Entry* e = find(cid)) return std::optional<TrackerRecord>(e->record);
  return store_->load(cid);
}

Result<std::optional<TrackerStore::Brief>> TrackerStore::load_brief(const Cid& cid) {
  auto r = load(cid);
  if (!r) return r.error();
  if (!*r) return std::optional<Brief>();
  return std::optional<Brief>(Brief::of(**r));
}

Result<std::optional<TrackerStore::Brief>> PinTracker::lookup_brief(const Cid& cid) {
  if (Entry* e = find(cid)) return std::optional<TrackerStore::Brief>(TrackerStore::Brief::of(e->record));
  return store_->load_brief(cid);
}

// Makes `record` the CID's current operation, queued and due now, replacing any queued one. An
// operation of the CID still in IPFS stays counted; the new one starts after it ends.
void PinTracker::enqueue(TrackerRecord record, TrackerOp op, UnixNanos now, std::int64_t attempts) {
  if (op == TrackerOp::unpin) {
    const Entry* e = find(record.cid());
    if (e != nullptr && e->running_id != 0 && e->running_op == TrackerOp::pin) {
      superseded_pins_.push_back(e->running_id);
    }
  }
  record.op = op;
  record.status = queued_status(op);
  record.error.clear();
  record.attempt_count = attempts;
  record.timestamp = now;
  record.next_attempt_at = now;
  record.priority = op == TrackerOp::pin && is_priority(record.pin, attempts, now);
  store_->save(record);
  queue_or_park(std::move(record), now);
}

// A pin of a CID the tracker knows nothing about: queued in memory only, not written to the
// store until its operation starts (see `Entry::stored`). When the queue is full only the CID is
// appended to the waiting list: it has no record, so it reports pin_queued from the pinset, and
// refill() queues it once there is room.
void PinTracker::enqueue_fresh(TrackerRecord record, UnixNanos now) {
  if (queued_pins() >= window()) {
    store_->push_waiting(record.cid());
    may_have_waiting_ = true;
    return;
  }
  record.op = TrackerOp::pin;
  record.status = TrackerStatus::pin_queued;
  record.timestamp = now;
  record.next_attempt_at = now;
  record.priority = is_priority(record.pin, 0, now);
  queue_or_park(std::move(record), now, false);
}

// Puts a queued or errored record (already saved, unless `stored` is false) in its queue, or,
// when that queue is full, stores it as an error that waits for recover and keeps nothing of it
// in memory.
void PinTracker::queue_or_park(TrackerRecord record, UnixNanos now, bool stored) {
  Cid cid = record.cid();
  Entry* e = find(cid);
  if (e != nullptr) dequeue(*e);
  Queue queue = queue_for(record);
  bool full = queue == Queue::unpin
                  ? unpin_queue_.size() >= static_cast<std::size_t>(limits_.max_pin_queue_size)
                  : queued_pins() >= static_cast<std::size_t>(limits_.max_pin_queue_size);
  if (full) {
    record.status = error_status(record.op);
    record.error = queue_full_error(limits_.max_pin_queue_size);
    record.timestamp = now;
    store_->save(record);
    if (e != nullptr) {
      e->record = std::move(record);
      e->stored = true;
      release_if_idle(cid);
    }
    return;
  }
  if (e == nullptr) {
    e = &active_.emplace(cid, Entry(record)).first->second;
  } else {
    assert(stored || !e->stored);  // a stored row is never left behind by a newer unsaved one
  }
  e->stored = stored;
  e->record = std::move(record);
  e->queue = queue;
  e->key = QueueKey(e->record.next_attempt_at, next_seq_++, cid);
  queue_of(queue).insert(*e->key);
  check_invariants(*e);
}

// Records a settled status, and drops the CID from memory unless an older operation of it is
// still in IPFS. `pinned` is stored; `remote` is not: a pin the pinset allocates elsewhere and
// that has no record is reported remote (Peer::local_status_json), so its row, if any, is
// erased. Peers that a pin is not allocated to thus write nothing for it.
void PinTracker::settle(TrackerRecord record, TrackerStatus status, UnixNanos now) {
  assert(is_settled(status));
  record.status = status;
  record.timestamp = now;
  record.next_attempt_at = kZeroTime;
  record.priority = false;
  Cid cid = record.cid();
  Entry* e = find(cid);
  const bool stored = status != TrackerStatus::remote;
  if (stored) {
    store_->save(record);
  } else if (e == nullptr || e->stored) {
    store_->erase(cid);
  }
  if (e != nullptr) {
    dequeue(*e);
    e->stored = stored;
    e->record = std::move(record);
    release_if_idle(cid);
  }
}

// The CID is no longer tracked (unpinned): erased from the store and, once idle, from memory.
void PinTracker::forget(const Cid& cid) {
  Entry* e = find(cid);
  if (e == nullptr || e->stored) store_->erase(cid);
  if (e != nullptr) {
    dequeue(*e);
    e->record.status = TrackerStatus::unpinned;
    release_if_idle(cid);
  }
}

void PinTracker::release_if_idle(const Cid& cid) {
  Entry* e = find(cid);
  if (e != nullptr && e->running_id == 0 && e->queue == Queue::none) active_.erase(cid);
}

void PinTracker::dequeue(Entry& entry) {
  if (entry.queue == Queue::none) return;
  [[maybe_unused]] std::size_t erased = queue_of(entry.queue).erase(*entry.key);
  assert(erased == 1);  // an entry's queue and key always name its place
  entry.queue = Queue::none;
  entry.key.reset();
}

std::set<PinTracker::QueueKey>& PinTracker::queue_of(Queue queue) {
  assert(queue != Queue::none);
  if (queue == Queue::priority) return priority_queue_;
  if (queue == Queue::normal) return pin_queue_;
  return unpin_queue_;
}

PinTracker::Queue PinTracker::queue_for(const TrackerRecord& record) const {
  if (record.op == TrackerOp::unpin) return Queue::unpin;
  return record.priority ? Queue::priority : Queue::normal;
}

bool PinTracker::is_priority(const Pin& pin, std::int64_t attempts, UnixNanos now) const {
  // IPFS Cluster's rule: a pin proposed recently that has not failed too often.
  bool fresh = pin.timestamp != kZeroTime && now - pin.timestamp < limits_.priority_pin_max_age_ns;
  return fresh && attempts <= limits_.priority_pin_max_retries;
}

UnixNanos PinTracker::backoff(std::int64_t attempts) const {
  std::int64_t delay = limits_.retry_backoff_min_ns;
  for (std::int64_t i = 1; i < attempts && delay < limits_.retry_backoff_max_ns; ++i) delay *= 2;
  return std::min(delay, limits_.retry_backoff_max_ns);
}

void PinTracker::check_invariants([[maybe_unused]] const Entry& entry) const {
  // A queued entry's status says it waits; a running current operation says it runs.
  assert(entry.queue == Queue::none || entry.record.status == queued_status(entry.record.op) ||
         entry.record.status == error_status(entry.record.op));
  assert(entry.queue != Queue::none || entry.running_id != 0);  // memory holds only what needs work
  assert(pins_running_ <= static_cast<std::size_t>(limits_.concurrent_pins));
  assert(unpins_running_ <= static_cast<std::size_t>(limits_.concurrent_unpins));
}

// ---- expiry ----------------------------------------------------------------------------------

bool closest_peer(const Cid& cid, const PeerId& self, const std::vector<PeerId>& peers) {
  Multihash cid_hash = Multihash::compute(HashFunction::blake2b_256, cid.bytes());
  Bytes cid_digest(cid_hash.digest().begin(), cid_hash.digest().end());
  Bytes mine = xor_distance(cid_digest, self);
  for (const PeerId& p : peers) {
    if (p == self) continue;
    if (xor_distance(cid_digest, p) < mine) return false;
  }
  return true;
}

}  // namespace clusterpin
