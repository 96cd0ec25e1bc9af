// The pin tracker's decisions against an in-memory store: statuses, queue order and limits,
// one operation per CID, retries with backoff, recover, reconciling with IPFS and the shared
// pinset, the choice of one peer per expired pin, and restarts from what the store kept.
#define DOCTEST_CONFIG_IMPLEMENT_WITH_MAIN
#include <deque>
#include <doctest/doctest.h>

#include <algorithm>
#include <map>
#include <optional>
#include <random>
#include <set>
#include <string>
#include <vector>

#include "core/tracker.hpp"

using namespace clusterpin;

namespace {

constexpr UnixNanos kSecond = 1000000000;
constexpr UnixNanos kT0 = 1800000000 * kSecond;  // an arbitrary "now"

// Keeps records in a map and counts writes; reads see every write at once.
class MemoryStore final : public TrackerStore {
 public:
  void save(const TrackerRecord& record) override {
    rows.insert_or_assign(record.cid(), record);
    ++writes;
  }
  void erase(const Cid& cid) override {
    rows.erase(cid);
    ++writes;
  }
  Result<std::optional<TrackerRecord>> load(const Cid& cid) override {
    ++loads;
    auto it = rows.find(cid);
    if (it == rows.end()) return std::optional<TrackerRecord>();
    return std::optional<TrackerRecord>(it->second);
  }
  Status load_active(const std::function<bool(TrackerRecord&&)>& visit) override {
    for (const auto& [cid, r] : rows) {
      if (r.status == TrackerStatus::pinned || r.status == TrackerStatus::remote) continue;
      TrackerRecord copy = r;
      if (!visit(std::move(copy))) break;
    }
    return Status::ok_status();
  }
  Status for_each(const std::function<bool(const TrackerRecord&)>& visit,
                  const std::optional<Cid>& after) override {
    for (const auto& [cid, r] : rows) {
      if (after && !(cid > *after)) continue;
      if (!visit(r)) break;
    }
    return Status::ok_status();
  }

  void push_waiting(const Cid& cid) override { waiting.push_back(cid); }
  Result<std::vector<Cid>> pop_waiting(std::size_t max) override {
    std::vector<Cid> out;
    while (!waiting.empty() && out.size() < max) {
      out.push_back(waiting.front());
      waiting.pop_front();
    }
    return out;
  }

  std::map<Cid, TrackerRecord> rows;
  std::deque<Cid> waiting;
  int writes = 0;
  int loads = 0;
};

Cid cid_n(int n) {
  return Cid::from_content(Codec::raw, as_bytes("content " + std::to_string(n)));
}

PeerId peer_n(int n) {
  Ed25519PublicKey key{};
  key[0] = static_cast<std::uint8_t>(n);
  key[1] = static_cast<std::uint8_t>(n >> 8);
  return PeerId::from_ed25519_public_key(key);
}

Pin pin_n(int n, UnixNanos timestamp = kT0) {
  Pin p(cid_n(n));
  p.timestamp = timestamp;
  return p;
}

TrackerLimits small_limits() {
  TrackerLimits l;
  l.concurrent_pins = 2;
  l.concurrent_unpins = 1;
  l.max_pin_queue_size = 100;
  return l;
}

TrackerStatus status_of(PinTracker& t, int n) {
  auto r = t.status(cid_n(n));
  REQUIRE(r.ok());
  return *r ? (*r)->status : TrackerStatus::unpinned;
}

// What the peer reports for CID n while the pinset allocates it elsewhere: the record's status,
// or remote when there is none (remote pins have no record).
TrackerStatus status_elsewhere(PinTracker& t, int n) {
  auto r = t.status(cid_n(n));
  REQUIRE(r.ok());
  Pin elsewhere = pin_n(n);
  elsewhere.allocations = {peer_n(2)};
  return reported_status(*r ? &**r : nullptr, &elsewhere, peer_n(1));
}

TrackerRecord record_of(PinTracker& t, int n) {
  auto r = t.status(cid_n(n));
  REQUIRE(r.ok());
  REQUIRE(r->has_value());
  return **r;
}

PinTracker open_tracker(MemoryStore& store, TrackerLimits limits = small_limits(),
                        UnixNanos now = kT0) {
  auto t = PinTracker::open(store, limits, now);
  REQUIRE(t.ok());
  return std::move(*t);
}

// Runs every due operation to completion with `result`.
void run_all(PinTracker& t, UnixNanos now, const Status& result = Status::ok_status()) {
  while (true) {
    auto ops = t.next_operations(now);
    if (ops.empty()) return;
    for (const auto& op : ops) t.operation_finished(op.pin.cid, op.id, result, now);
  }
}

}  // namespace

TEST_CASE("status names round-trip and filters accept IPFS Cluster's groups") {
  for (int i = 0; i < kTrackerStatusCount; ++i) {
    auto s = static_cast<TrackerStatus>(i);
    auto parsed = parse_status(status_name(s));
    REQUIRE(parsed.ok());
    CHECK(*parsed == s);
  }
  auto f = parse_status_filter("pin_error,queued");
  REQUIRE(f.ok());
  CHECK(f->matches(TrackerStatus::pin_error));
  CHECK(f->matches(TrackerStatus::pin_queued));
  CHECK(f->matches(TrackerStatus::unpin_queued));
  CHECK_FALSE(f->matches(TrackerStatus::pinned));
  CHECK_FALSE(f->matches(TrackerStatus::unpin_error));

  auto errors = parse_status_filter("error");
  REQUIRE(errors.ok());
  CHECK(*errors == StatusFilter::of({TrackerStatus::pin_error, TrackerStatus::unpin_error,
                                     TrackerStatus::cluster_error}));
  CHECK(parse_status_filter("")->matches(TrackerStatus::remote));

  auto bad = parse_status_filter("pinned,pinnned");
  REQUIRE_FALSE(bad.ok());
  CHECK(bad.error().message.find("\"pinnned\"") != std::string::npos);
  CHECK(bad.error().message.find("unexpectedly_unpinned") != std::string::npos);
  CHECK(bad.error().message.find("queued") != std::string::npos);
}

TEST_CASE("a pin allocated here goes pin_queued, pinning, pinned and then leaves memory") {
  MemoryStore store;
  PinTracker t = open_tracker(store);
  t.track(pin_n(1), true, kT0);
  CHECK(status_of(t, 1) == TrackerStatus::pin_queued);
  auto ops = t.next_operations(kT0);
  REQUIRE(ops.size() == 1);
  CHECK(ops[0].op == TrackerOp::pin);
  CHECK(ops[0].pin.cid == cid_n(1));
  CHECK(status_of(t, 1) == TrackerStatus::pinning);
  CHECK(store.writes == 1);  // not while only queued; once IPFS is asked
  t.operation_finished(cid_n(1), ops[0].id, Status::ok_status(), kT0 + kSecond);
  CHECK(status_of(t, 1) == TrackerStatus::pinned);
  CHECK(store.writes == 2);
  CHECK(record_of(t, 1).timestamp == kT0 + kSecond);
  CHECK(t.in_memory() == 0);  // pinned records live only in the store
  CHECK(store.rows.at(cid_n(1)).status == TrackerStatus::pinned);

  // Pinning again with the same mode asks nothing of IPFS and writes nothing.
  int writes = store.writes;
  t.track(pin_n(1), true, kT0 + 2 * kSecond);
  CHECK(status_of(t, 1) == TrackerStatus::pinned);
  CHECK(t.next_operations(kT0 + 2 * kSecond).empty());
  CHECK(store.writes == writes);
  // A new name is recorded without an IPFS call; a new mode pins again.
  Pin renamed = pin_n(1);
  renamed.options.name = "renamed";
  t.track(renamed, true, kT0 + 3 * kSecond);
  CHECK(record_of(t, 1).pin.options.name == "renamed");
  CHECK(t.next_operations(kT0 + 3 * kSecond).empty());
  Pin direct = renamed;
  direct.options.mode = PinMode::direct;
  direct.max_depth = 0;
  t.track(direct, true, kT0 + 4 * kSecond);
  CHECK(status_of(t, 1) == TrackerStatus::pin_queued);
  auto again = t.next_operations(kT0 + 4 * kSecond);
  REQUIRE(again.size() == 1);
  CHECK(again[0].pin.options.mode == PinMode::direct);
}

TEST_CASE("a pin new to the pinset is queued without a store read only when allocated here") {
  MemoryStore store;
  PinTracker t = open_tracker(store);
  // What a full unpin queue parked for a CID that then left the pinset, and a pinned record of a
  // CID whose unpin was applied but whose record a crash kept.
  TrackerRecord parked(pin_n(1));
  parked.op = TrackerOp::unpin;
  parked.status = TrackerStatus::unpin_error;
  parked.error = "pin/unpin operation queue is full";
  store.rows.insert_or_assign(cid_n(1), parked);
  TrackerRecord kept(pin_n(2));
  kept.op = TrackerOp::pin;
  kept.status = TrackerStatus::pinned;
  store.rows.insert_or_assign(cid_n(2), kept);

  int loads = store.loads;
  t.track(pin_n(1), true, kT0, /*new_to_pinset=*/true);
  CHECK(store.loads == loads);
  CHECK(status_of(t, 1) == TrackerStatus::pin_queued);
  auto ops = t.next_operations(kT0);
  REQUIRE(ops.size() == 1);
  CHECK(ops[0].op == TrackerOp::pin);
  t.operation_finished(cid_n(1), ops[0].id, Status::ok_status(), kT0 + kSecond);
  CHECK(store.rows.at(cid_n(1)).status == TrackerStatus::pinned);

  // Allocated elsewhere the record is read: the stale `pinned` one says IPFS may hold the CID,
  // so it is unpinned here before being reported remote.
  loads = store.loads;
  t.track(pin_n(2), false, kT0, /*new_to_pinset=*/true);
  CHECK(store.loads == loads + 1);
  CHECK(status_of(t, 2) == TrackerStatus::unpin_queued);
}

TEST_CASE("recover retries a parked unpin error as a pin when the CID is in the pinset again") {
  MemoryStore store;
  TrackerLimits limits = small_limits();
  limits.fresh_pin_window = 1;
  PinTracker t = open_tracker(store, limits);
  t.track(pin_n(0), true, kT0);  // fills the window
  TrackerRecord parked(pin_n(1));
  parked.op = TrackerOp::unpin;
  parked.status = TrackerStatus::unpin_error;
  parked.error = "pin/unpin operation queue is full";
  store.rows.insert_or_assign(cid_n(1), parked);
  // Pinned again: new to the pinset, so it waits without its record being read.
  t.track(pin_n(1), true, kT0, /*new_to_pinset=*/true);
  CHECK(store.waiting == std::deque<Cid>{cid_n(1)});

  std::map<Cid, Pin> pinset{{cid_n(0), pin_n(0)}, {cid_n(1), pin_n(1)}};
  auto pin_of = [&](const Cid& c) -> Result<std::optional<Pin>> {
    auto it = pinset.find(c);
    return it == pinset.end() ? std::optional<Pin>() : std::optional(it->second);
  };
  PinsetLookup lookup{pin_of, peer_n(1)};
  auto touched = t.recover_all(kT0 + kSecond, 10, &lookup);
  REQUIRE(touched.ok());
  REQUIRE(touched->size() == 1);
  CHECK((*touched)[0].op == TrackerOp::pin);
  CHECK(status_of(t, 1) == TrackerStatus::pin_queued);

  // Out of the pinset, the parked unpin is what recover retries.
  pinset.erase(cid_n(1));
  store.rows.insert_or_assign(cid_n(2), [&] {
    TrackerRecord r = parked;
    r.pin = pin_n(2);
    return r;
  }());
  auto again = t.recover(cid_n(2), kT0 + kSecond, &lookup);
  REQUIRE(again.ok());
  REQUIRE(again->has_value());
  CHECK((*again)->op == TrackerOp::unpin);
}

TEST_CASE("a pin allocated elsewhere is remote without any IPFS call") {
  MemoryStore store;
  PinTracker t = open_tracker(store);
  t.track(pin_n(1), false, kT0);
  CHECK(status_elsewhere(t, 1) == TrackerStatus::remote);
  CHECK(store.rows.empty());  // remote pins have no record: nothing written
  CHECK(store.writes == 0);
  CHECK(t.next_operations(kT0).empty());
  // An unpin of a remote pin just forgets it.
  t.untrack(cid_n(1), kT0);
  CHECK(status_of(t, 1) == TrackerStatus::unpinned);
  CHECK(store.rows.empty());
  CHECK(t.next_operations(kT0).empty());
}

TEST_CASE("a pinned CID re-allocated elsewhere is unpinned here and then reported remote") {
  MemoryStore store;
  PinTracker t = open_tracker(store);
  t.track(pin_n(1), true, kT0);
  run_all(t, kT0);
  t.track(pin_n(1), false, kT0 + kSecond);
  CHECK(status_of(t, 1) == TrackerStatus::unpin_queued);
  auto ops = t.next_operations(kT0 + kSecond);
  REQUIRE(ops.size() == 1);
  CHECK(ops[0].op == TrackerOp::unpin);
  t.operation_finished(cid_n(1), ops[0].id, Status::ok_status(), kT0 + kSecond);
  CHECK(status_elsewhere(t, 1) == TrackerStatus::remote);
  CHECK(store.rows.empty());  // the record of the pin it held is erased
}

TEST_CASE("a pin moved away from this peer is unpinned even when a crash lost its record") {
  MemoryStore store;
  PinTracker t = open_tracker(store);
  // No record of 1 (tracker.db lost its newest changes), but the pin the apply replaced was
  // allocated here: IPFS may hold it, so it is unpinned, then reported remote.
  t.track(pin_n(1), false, kT0, false, true);
  CHECK(status_of(t, 1) == TrackerStatus::unpin_queued);
  auto ops = t.next_operations(kT0);
  REQUIRE(ops.size() == 1);
  CHECK(ops[0].op == TrackerOp::unpin);
  t.operation_finished(cid_n(1), ops[0].id, Status::ok_status(), kT0);
  CHECK(status_elsewhere(t, 1) == TrackerStatus::remote);
  // The same without the previous allocation here: nothing to undo.
  t.track(pin_n(2), false, kT0, false, false);
  CHECK(status_elsewhere(t, 2) == TrackerStatus::remote);
  CHECK(t.next_operations(kT0).empty());
}

TEST_CASE("a new pin moved away before it reached IPFS is remote without a pin/rm") {
  MemoryStore store;
  PinTracker t = open_tracker(store);
  t.track(pin_n(1), true, kT0, true);
  CHECK(status_of(t, 1) == TrackerStatus::pin_queued);
  t.track(pin_n(1), false, kT0 + kSecond, false, true);
  CHECK(status_elsewhere(t, 1) == TrackerStatus::remote);
  CHECK(t.next_operations(kT0 + kSecond).empty());
  // Once its pin/add was asked for, IPFS may hold it: moved away, it is unpinned.
  t.track(pin_n(2), true, kT0, true);
  auto started = t.next_operations(kT0);
  REQUIRE(started.size() == 1);
  t.track(pin_n(2), false, kT0 + kSecond, false, true);
  t.operation_finished(cid_n(2), started[0].id, Status::ok_status(), kT0 + kSecond);
  auto ops = t.next_operations(kT0 + kSecond);
  REQUIRE(ops.size() == 1);
  CHECK(ops[0].op == TrackerOp::unpin);
}

TEST_CASE("a direct pin made recursive while its pin/add runs is pinned again recursively") {
  MemoryStore store;
  PinTracker t = open_tracker(store);
  Pin direct = pin_n(1);
  direct.options.mode = PinMode::direct;
  t.track(direct, true, kT0, true);
  auto first = t.next_operations(kT0);
  REQUIRE(first.size() == 1);
  CHECK(first[0].pin.options.mode == PinMode::direct);
  t.track(pin_n(1), true, kT0 + kSecond);  // recursive now, while the direct pin/add runs
  t.operation_finished(cid_n(1), first[0].id, Status::ok_status(), kT0 + kSecond);
  CHECK(status_of(t, 1) != TrackerStatus::pinned);
  auto again = t.next_operations(kT0 + kSecond);
  REQUIRE(again.size() == 1);
  CHECK(again[0].op == TrackerOp::pin);
  CHECK(again[0].pin.options.mode == PinMode::recursive);
  t.operation_finished(cid_n(1), again[0].id, Status::ok_status(), kT0 + kSecond);
  CHECK(status_of(t, 1) == TrackerStatus::pinned);
}

TEST_CASE("an applied unpin of a pin allocated here is run even when a crash lost its record") {
  MemoryStore store;
  PinTracker t = open_tracker(store);
  Pin removed = pin_n(1);
  t.untrack(cid_n(1), kT0, &removed);
  CHECK(status_of(t, 1) == TrackerStatus::unpin_queued);
  auto ops = t.next_operations(kT0);
  REQUIRE(ops.size() == 1);
  CHECK(ops[0].op == TrackerOp::unpin);
  t.operation_finished(cid_n(1), ops[0].id, Status::ok_status(), kT0);
  CHECK(status_of(t, 1) == TrackerStatus::unpinned);
  CHECK(store.rows.empty());
  // Without it, an untracked CID is only forgotten.
  t.untrack(cid_n(2), kT0);
  CHECK(t.next_operations(kT0).empty());
  CHECK(store.rows.empty());
}

TEST_CASE("an applied unpin of a pinned CID unpins it and then forgets it") {
  MemoryStore store;
  PinTracker t = open_tracker(store);
  t.track(pin_n(1), true, kT0);
  run_all(t, kT0);
  t.untrack(cid_n(1), kT0);
  CHECK(status_of(t, 1) == TrackerStatus::unpin_queued);
  auto ops = t.next_operations(kT0);
  REQUIRE(ops.size() == 1);
  CHECK(status_of(t, 1) == TrackerStatus::unpinning);
  t.operation_finished(cid_n(1), ops[0].id, Status::ok_status(), kT0);
  CHECK(status_of(t, 1) == TrackerStatus::unpinned);
  CHECK(store.rows.count(cid_n(1)) == 0);
  CHECK(t.in_memory() == 0);
}

TEST_CASE("no more than concurrent_pins pins and concurrent_unpins unpins run at once") {
  MemoryStore store;
  PinTracker t = open_tracker(store);
  for (int i = 0; i < 5; ++i) t.track(pin_n(i), true, kT0);
  for (int i = 10; i < 13; ++i) {
    t.track(pin_n(i), true, kT0);
  }
  // Let 10..12 get pinned first so they can be unpinned.
  run_all(t, kT0);
  for (int i = 0; i < 5; ++i) t.untrack(cid_n(i), kT0);  // make 0..4 unpins instead
  for (int i = 20; i < 25; ++i) t.track(pin_n(i), true, kT0);
  auto ops = t.next_operations(kT0);
  int pins = 0, unpins = 0;
  for (const auto& op : ops) (op.op == TrackerOp::pin ? pins : unpins)++;
  CHECK(pins == 2);
  CHECK(unpins == 1);
  CHECK(t.next_operations(kT0).empty());
  // One pin ends: exactly one more pin may start.
  for (const auto& op : ops) {
    if (op.op != TrackerOp::pin) continue;
    t.operation_finished(op.pin.cid, op.id, Status::ok_status(), kT0);
    break;
  }
  auto more = t.next_operations(kT0);
  REQUIRE(more.size() == 1);
  CHECK(more[0].op == TrackerOp::pin);
}

TEST_CASE("fresh pins start before old pins and before retries past priority_pin_max_retries") {
  MemoryStore store;
  TrackerLimits limits = small_limits();
  limits.concurrent_pins = 1;
  limits.priority_pin_max_retries = 1;
  PinTracker t = open_tracker(store, limits);
  UnixNanos old = kT0 - limits.priority_pin_max_age_ns - kSecond;
  t.track(pin_n(1, old), true, kT0);  // an old pin, queued first

  // CID 2 fails twice: past the retry limit it loses its priority.
  t.track(pin_n(2), true, kT0);
  UnixNanos now = kT0;
  for (int i = 0; i < 2; ++i) {
    auto ops = t.next_operations(now, 1);
    while (!ops.empty() && ops[0].pin.cid != cid_n(2)) {
      t.operation_finished(ops[0].pin.cid, ops[0].id, make_error("ignored"),
                           now);  // keep 1 failing too
      ops = t.next_operations(now, 1);
    }
    REQUIRE(ops.size() == 1);
    t.operation_finished(cid_n(2), ops[0].id, make_error("ipfs down"), now);
    now += 10 * kSecond;
  }
  CHECK_FALSE(record_of(t, 2).priority);

  t.track(pin_n(3, now), true, now);  // fresh, queued last
  auto ops = t.next_operations(now + 10 * t.limits().retry_backoff_max_ns, 1);
  REQUIRE(ops.size() == 1);
  CHECK(ops[0].pin.cid == cid_n(3));
}

TEST_CASE("a newer operation replaces a queued older one for the same CID") {
  MemoryStore store;
  PinTracker t = open_tracker(store);
  t.track(pin_n(1), true, kT0);
  run_all(t, kT0);  // pinned
  Pin direct = pin_n(1);
  direct.options.mode = PinMode::direct;
  direct.max_depth = 0;
  t.track(direct, true, kT0);  // pinned again as direct: queued
  CHECK(t.queued_pins() == 1);
  t.untrack(cid_n(1), kT0);
  CHECK(status_of(t, 1) == TrackerStatus::unpin_queued);
  CHECK(t.queued_pins() == 0);
  CHECK(t.queued_unpins() == 1);
  auto ops = t.next_operations(kT0);
  REQUIRE(ops.size() == 1);
  CHECK(ops[0].op == TrackerOp::unpin);
}

TEST_CASE("the result of a superseded operation is ignored and the newer one runs after it") {
  MemoryStore store;
  PinTracker t = open_tracker(store);
  t.track(pin_n(1), true, kT0);
  auto ops = t.next_operations(kT0);
  REQUIRE(ops.size() == 1);
  t.untrack(cid_n(1), kT0);
  CHECK(status_of(t, 1) == TrackerStatus::unpin_queued);
  // One operation per CID: the unpin waits for the pin still in IPFS.
  CHECK(t.next_operations(kT0).empty());
  t.operation_finished(cid_n(1), ops[0].id, Status::ok_status(), kT0);
  CHECK(status_of(t, 1) == TrackerStatus::unpin_queued);
  auto next = t.next_operations(kT0);
  REQUIRE(next.size() == 1);
  CHECK(next[0].op == TrackerOp::unpin);
  CHECK(next[0].id != ops[0].id);
  // A late duplicate report of the old operation changes nothing.
  t.operation_finished(cid_n(1), ops[0].id, make_error("late"), kT0);
  CHECK(status_of(t, 1) == TrackerStatus::unpinning);
}

TEST_CASE("a pin still in IPFS that an unpin or a move away supersedes is handed out to cancel") {
  MemoryStore store;
  PinTracker t = open_tracker(store);
  t.track(pin_n(1), true, kT0);
  t.track(pin_n(2), true, kT0);
  auto ops = t.next_operations(kT0);
  REQUIRE(ops.size() == 2);
  CHECK(t.take_superseded_pins().empty());
  t.untrack(cid_n(1), kT0);
  t.track(pin_n(2), false, kT0);  // moved away while its pin runs
  auto superseded = t.take_superseded_pins();
  std::sort(superseded.begin(), superseded.end());
  std::vector<std::uint64_t> ids{ops[0].id, ops[1].id};
  std::sort(ids.begin(), ids.end());
  CHECK(superseded == ids);
  CHECK(t.take_superseded_pins().empty());  // handed out once
  // Cancelled, each pin ends in error, which is ignored: the unpins run next.
  for (const auto& op : ops) t.operation_finished(op.pin.cid, op.id, make_error("cancelled"), kT0);
  auto next = t.next_operations(kT0);
  CHECK(next.size() == 1);  // concurrent_unpins = 1
  CHECK(next[0].op == TrackerOp::unpin);
  // An unpin that supersedes a running unpin, or a pin replacing a pin, cancels nothing.
  t.track(pin_n(3), true, kT0);
  auto pin3 = t.next_operations(kT0);
  REQUIRE(pin3.size() == 1);
  t.track(pin_n(3), true, kT0 + kSecond);
  CHECK(t.take_superseded_pins().empty());
}

TEST_CASE("a failed pin is pin_error with the message and retries with doubling, capped backoff") {
  MemoryStore store;
  TrackerLimits limits = small_limits();
  limits.retry_backoff_min_ns = kSecond;
  limits.retry_backoff_max_ns = 3 * kSecond;
  PinTracker t = open_tracker(store, limits);
  t.track(pin_n(1), true, kT0);
  auto ops = t.next_operations(kT0);
  REQUIRE(ops.size() == 1);
  CHECK_FALSE(ops[0].known);  // the first attempt of a new pin: IPFS is not asked first
  t.operation_finished(cid_n(1), ops[0].id, make_error("connection refused"), kT0);
  TrackerRecord r = record_of(t, 1);
  CHECK(r.status == TrackerStatus::pin_error);
  CHECK(r.error == "connection refused");
  CHECK(r.attempt_count == 1);
  CHECK(r.next_attempt_at == kT0 + kSecond);

  CHECK(t.next_operations(kT0 + kSecond - 1).empty());
  ops = t.next_operations(kT0 + kSecond);
  REQUIRE(ops.size() == 1);
  CHECK(ops[0].known);  // a retry: the failed attempt may have pinned it after all
  t.operation_finished(cid_n(1), ops[0].id, make_error("connection refused"), kT0 + kSecond);
  CHECK(record_of(t, 1).next_attempt_at == kT0 + 3 * kSecond);  // 2 s later
  ops = t.next_operations(kT0 + 3 * kSecond);
  REQUIRE(ops.size() == 1);
  t.operation_finished(cid_n(1), ops[0].id, make_error("connection refused"), kT0 + 3 * kSecond);
  CHECK(record_of(t, 1).next_attempt_at == kT0 + 6 * kSecond);  // 4 s capped to 3 s
  CHECK(record_of(t, 1).attempt_count == 3);
}

TEST_CASE("pins failing while IPFS is down get pinned once it is back, without anyone acting") {
  MemoryStore store;
  PinTracker t = open_tracker(store);
  for (int i = 0; i < 6; ++i) t.track(pin_n(i), true, kT0);
  UnixNanos now = kT0;
  for (int round = 0; round < 5; ++round, now += 60 * kSecond)
    run_all(t, now, make_error("IPFS is down"));
  for (int i = 0; i < 6; ++i) CHECK(status_of(t, i) == TrackerStatus::pin_error);
  now += t.limits().retry_backoff_max_ns;
  run_all(t, now);
  for (int i = 0; i < 6; ++i) CHECK(status_of(t, i) == TrackerStatus::pinned);
  CHECK(t.in_memory() == 0);
}

TEST_CASE(
    "recover makes errors due now, touches at most the limit and returns only what it touched") {
  MemoryStore store;
  TrackerLimits limits = small_limits();
  limits.concurrent_pins = 10;
  limits.retry_backoff_min_ns = 60 * kSecond;
  PinTracker t = open_tracker(store, limits);
  t.track(pin_n(9), true, kT0);
  run_all(t, kT0);  // pinned
  for (int i = 0; i < 3; ++i) t.track(pin_n(i), true, kT0);
  run_all(t, kT0, make_error("boom"));
  for (int i = 0; i < 3; ++i) CHECK(status_of(t, i) == TrackerStatus::pin_error);
  UnixNanos now = kT0 + kSecond;
  CHECK(t.next_operations(now).empty());  // the retries are a minute away

  auto touched = t.recover_all(now, 2);
  REQUIRE(touched.ok());
  CHECK(touched->size() == 2);
  for (const auto& r : *touched) CHECK(r.status == TrackerStatus::pin_queued);
  for (const auto& r : *touched) CHECK(r.attempt_count == 1);  // the count is carried over
  CHECK(t.next_operations(now).size() == 2);

  auto one = t.recover(cid_n(9), now);  // pinned: nothing to recover
  REQUIRE(one.ok());
  CHECK_FALSE(one->has_value());

}

TEST_CASE("recover_all goes on where its last call stopped, so errors that fail for good cannot "
          "hold back the ones after them") {
  MemoryStore store;
  std::vector<Cid> cids;
  for (int i = 0; i < 3; ++i) {
    TrackerRecord r(pin_n(i));
    r.status = TrackerStatus::pin_error;
    r.op = TrackerOp::pin;
    r.attempt_count = 7;
    r.error = "boom";
    store.rows.insert_or_assign(r.cid(), r);
    cids.push_back(r.cid());
  }
  std::sort(cids.begin(), cids.end());
  PinTracker t = open_tracker(store);
  UnixNanos now = kT0 + kSecond;
  auto first = t.recover_all(now, 2);
  REQUIRE(first.ok());
  REQUIRE(first->size() == 2);
  CHECK((*first)[0].cid() == cids[0]);
  CHECK((*first)[1].cid() == cids[1]);
  auto second = t.recover_all(now, 2);
  REQUIRE(second.ok());
  REQUIRE(second->size() == 1);
  CHECK((*second)[0].cid() == cids[2]);
}

TEST_CASE("sync with IPFS marks missing pins unexpectedly_unpinned and present errors pinned") {
  MemoryStore store;
  TrackerLimits limits = small_limits();
  limits.retry_backoff_min_ns = 60 * kSecond;  // no retry during the test
  PinTracker t = open_tracker(store, limits);
  t.track(pin_n(1), true, kT0);
  t.track(pin_n(2), true, kT0);
  run_all(t, kT0);
  t.track(pin_n(3), true, kT0);
  run_all(t, kT0, make_error("timeout"));
  t.track(pin_n(4), true, kT0 + 10 * kSecond);  // pinned after the listing began
  run_all(t, kT0 + 10 * kSecond);

  std::set<Cid> in_ipfs{cid_n(1), cid_n(3)};
  auto changed = t.reconcile_ipfs([&](const Cid& c, PinMode) { return in_ipfs.count(c) > 0; },
                                  kT0 + 5 * kSecond, kT0 + 20 * kSecond);
  REQUIRE(changed.ok());
  CHECK(*changed == 2);
  CHECK(status_of(t, 1) == TrackerStatus::pinned);
  TrackerRecord two = record_of(t, 2);
  CHECK(two.status == TrackerStatus::unexpectedly_unpinned);
  CHECK(two.error == "the item should be pinned but it is not");
  CHECK(status_of(t, 3) == TrackerStatus::pinned);
  CHECK(t.next_operations(kT0 + 60 * kSecond).empty());  // its retry was dropped
  CHECK(status_of(t, 4) == TrackerStatus::pinned);       // too recent to judge

  // Recover pins it again.
  auto r = t.recover(cid_n(2), kT0 + 20 * kSecond);
  REQUIRE(r.ok());
  REQUIRE(r->has_value());
  CHECK((*r)->status == TrackerStatus::pin_queued);
}

TEST_CASE("sync with IPFS counts a recursive pin only when IPFS holds it recursively") {
  MemoryStore store;
  TrackerLimits limits = small_limits();
  limits.retry_backoff_min_ns = 60 * kSecond;
  PinTracker t = open_tracker(store, limits);
  Pin direct = pin_n(3);
  direct.options.mode = PinMode::direct;
  t.track(pin_n(1), true, kT0);  // recursive, pinned
  t.track(direct, true, kT0);    // direct, pinned
  run_all(t, kT0);
  t.track(pin_n(2), true, kT0);  // recursive, failed (its DAG could not be fetched)
  run_all(t, kT0, make_error("timeout"));
  // IPFS holds 1 and 2 only directly (an earlier direct pin of them), 3 recursively.
  auto in_ipfs = [](const Cid& c, PinMode mode) {
    if (c == cid_n(3)) return true;
    return (c == cid_n(1) || c == cid_n(2)) && mode == PinMode::direct;
  };
  auto changed = t.reconcile_ipfs(in_ipfs, kT0 + 5 * kSecond, kT0 + 20 * kSecond);
  REQUIRE(changed.ok());
  CHECK(*changed == 1);
  CHECK(status_of(t, 1) == TrackerStatus::unexpectedly_unpinned);
  CHECK(status_of(t, 2) == TrackerStatus::pin_error);  // not "pinned": the DAG is not there
  CHECK(status_of(t, 3) == TrackerStatus::pinned);
}

TEST_CASE("sync with IPFS handles more drift than one chunk and reports every change") {
  MemoryStore store;
  TrackerLimits limits = small_limits();
  limits.concurrent_pins = 100;
  limits.max_pin_queue_size = 10000;
  PinTracker t = open_tracker(store, limits);
  const int n = 2500;  // more than two chunks of the scan
  for (int i = 0; i < n; ++i) t.track(pin_n(i), true, kT0);
  run_all(t, kT0);
  std::set<Cid> reported;
  auto changed = t.reconcile_ipfs([](const Cid&, PinMode) { return false; }, kT0 + kSecond, kT0 + kSecond,
                                  [&](const TrackerRecord& r) {
                                    CHECK(r.status == TrackerStatus::unexpectedly_unpinned);
                                    reported.insert(r.cid());
                                  });
  REQUIRE(changed.ok());
  CHECK(*changed == static_cast<std::size_t>(n));
  CHECK(reported.size() == static_cast<std::size_t>(n));
  for (int i = 0; i < n; i += 97) CHECK(status_of(t, i) == TrackerStatus::unexpectedly_unpinned);
  CHECK(t.in_memory() == 0);
}

TEST_CASE("sync with the shared pinset tracks what is missing and unpins what left it") {
  MemoryStore store;
  PinTracker t = open_tracker(store);
  PeerId self = peer_n(1);
  t.track(pin_n(3), true, kT0);  // tracked here, no longer in the pinset
  run_all(t, kT0);

  Pin here = pin_n(1);  // everywhere: allocated here
  Pin elsewhere = pin_n(2);
  elsewhere.allocations = {peer_n(2)};
  std::map<Cid, Pin> pinset{{here.cid, here}, {elsewhere.cid, elsewhere}};
  SharedPinsetScan scan = [&](const std::function<bool(const Pin&)>& visit) {
    for (const auto& [cid, pin] : pinset)
      if (!visit(pin)) break;
    return Status::ok_status();
  };
  auto changes = t.reconcile_shared(
      scan, [&](const Cid& c) { return pinset.count(c) > 0; }, self, kT0);
  REQUIRE(changes.ok());
  CHECK(*changes == 2);  // 1 queued, 3 unpinned; 2 is remote, which needs no record
  CHECK(status_of(t, 1) == TrackerStatus::pin_queued);
  CHECK(status_elsewhere(t, 2) == TrackerStatus::remote);
  CHECK(store.rows.count(cid_n(2)) == 0);
  CHECK(status_of(t, 3) == TrackerStatus::unpin_queued);

  // Once in line, a second pass changes nothing.
  auto again = t.reconcile_shared(
      scan, [&](const Cid& c) { return pinset.count(c) > 0; }, self, kT0);
  REQUIRE(again.ok());
  CHECK(*again == 0);
}

// A shared pinset held in a map, listed from a cursor as the state reader does.
struct SlicedPinset {
  std::map<Cid, Pin> pins;
  int listings = 0;
  SharedPinsetScanFrom scan() {
    return [this](const std::optional<Cid>& after, const std::function<bool(const Pin&)>& visit) {
      ++listings;
      for (auto it = after ? pins.upper_bound(*after) : pins.begin(); it != pins.end(); ++it)
        if (!visit(it->second)) break;
      return Status::ok_status();
    };
  }
  std::function<bool(const Cid&)> contains() {
    return [this](const Cid& c) { return pins.count(c) > 0; };
  }
  void add(const Pin& p) { pins.insert_or_assign(p.cid, p); }
};

TEST_CASE("a pinset of several slices is fully reconciled, a few pins per slice") {
  MemoryStore store;
  TrackerLimits limits = small_limits();
  PinTracker t = open_tracker(store, limits);
  PeerId self = peer_n(1);
  for (int n = 100; n < 105; ++n) t.track(pin_n(n), true, kT0);  // tracked, not in the pinset
  run_all(t, kT0);
  SlicedPinset pinset;
  for (int n = 0; n < 40; ++n) {
    Pin p = pin_n(n);
    if (n % 4 == 0) p.allocations = {peer_n(2)};  // 10 remote, 30 here
    pinset.add(p);
  }

  SharedReconcileCursor cursor;
  int slices = 0;
  while (!cursor.done()) {
    std::size_t queued_before = t.queued_pins() + t.queued_unpins();
    REQUIRE(t.reconcile_shared_slice(cursor, pinset.scan(), pinset.contains(), self, kT0, 4).ok());
    CHECK_FALSE(cursor.paused);
    // At most 4 pins or records handled per slice: at most 4 more queued.
    CHECK(t.queued_pins() + t.queued_unpins() <= queued_before + 4);
    REQUIRE(++slices < 100);
  }
  CHECK(slices >= 10);  // 40 pins and 45 records, 4 per slice
  CHECK(cursor.changes == 35);  // 30 queued here, 5 unpins; the 10 remote pins need no record
  for (int n = 0; n < 40; ++n) {
    CAPTURE(n);
    CHECK((n % 4 == 0 ? status_elsewhere(t, n) : status_of(t, n)) ==
          (n % 4 == 0 ? TrackerStatus::remote : TrackerStatus::pin_queued));
  }
  for (int n = 100; n < 105; ++n) CHECK(status_of(t, n) == TrackerStatus::unpin_queued);

  // The same pass in one call per phase agrees: nothing is left to change.
  SharedPinsetScan whole = [&](const std::function<bool(const Pin&)>& visit) {
    return pinset.scan()(std::nullopt, visit);
  };
  auto again = t.reconcile_shared(whole, pinset.contains(), self, kT0);
  REQUIRE(again.ok());
  CHECK(*again == 0);
}

TEST_CASE("pins and unpins applied between slices are not lost by the pass") {
  MemoryStore store;
  PinTracker t = open_tracker(store);
  PeerId self = peer_n(1);
  SlicedPinset pinset;
  for (int n = 0; n < 30; ++n) pinset.add(pin_n(n));
  t.track(pin_n(50), true, kT0);  // tracked and pinned, not in the pinset
  run_all(t, kT0);

  SharedReconcileCursor cursor;
  REQUIRE(t.reconcile_shared_slice(cursor, pinset.scan(), pinset.contains(), self, kT0, 5).ok());
  REQUIRE_FALSE(cursor.done());
  REQUIRE(cursor.after.has_value());
  run_all(t, kT0);

  // Raft applies changes both behind and ahead of the cursor before the next slice.
  std::vector<int> behind, ahead;
  for (int n = 0; n < 30; ++n) (cid_n(n) <= *cursor.after ? behind : ahead).push_back(n);
  REQUIRE(behind.size() >= 2);
  REQUIRE(ahead.size() >= 2);
  for (int n : {behind[0], ahead[0]}) {  // unpinned
    pinset.pins.erase(cid_n(n));
    t.untrack(cid_n(n), kT0);
  }
  Pin moved = pin_n(ahead[1]);  // re-allocated elsewhere
  moved.allocations = {peer_n(2)};
  pinset.add(moved);
  t.track(moved, false, kT0);
  for (int n = 60; n < 64; ++n) {  // new pins
    pinset.add(pin_n(n));
    t.track(pin_n(n), true, kT0);
  }
  while (!cursor.done()) {
    REQUIRE(t.reconcile_shared_slice(cursor, pinset.scan(), pinset.contains(), self, kT0, 5).ok());
    run_all(t, kT0);
  }

  CHECK(status_of(t, behind[0]) == TrackerStatus::unpinned);
  CHECK(status_of(t, ahead[0]) == TrackerStatus::unpinned);
  CHECK(status_elsewhere(t, ahead[1]) == TrackerStatus::remote);
  CHECK(status_of(t, 50) == TrackerStatus::unpinned);
  for (const auto& [cid, pin] : pinset.pins) {
    auto r = t.status(cid);
    REQUIRE(r.ok());
    if (pin.allocations.empty()) {
      REQUIRE(r->has_value());
      CHECK((*r)->status == TrackerStatus::pinned);
    } else {
      CHECK_FALSE(r->has_value());  // remote: reported from the pinset, no record
    }
  }
  CHECK(t.in_memory() == 0);
}

TEST_CASE("a pass pauses while the queues hold the window and resumes once they drained") {
  MemoryStore store;
  TrackerLimits limits = small_limits();  // max_pin_queue_size 100: the window is below it
  PinTracker t = open_tracker(store, limits);
  PeerId self = peer_n(1);
  SlicedPinset pinset;
  for (int n = 0; n < 35; ++n) pinset.add(pin_n(n));

  SharedReconcileCursor cursor;
  REQUIRE(t.reconcile_shared_slice(cursor, pinset.scan(), pinset.contains(), self, kT0, 1000, 10)
              .ok());
  CHECK(cursor.paused);
  CHECK_FALSE(cursor.done());
  CHECK(t.queued_pins() == 10);
  CHECK(cursor.changes == 10);

  // Still full: another slice enqueues nothing and stays paused.
  REQUIRE(t.reconcile_shared_slice(cursor, pinset.scan(), pinset.contains(), self, kT0, 1000, 10)
              .ok());
  CHECK(cursor.paused);
  CHECK(t.queued_pins() == 10);
  CHECK(cursor.changes == 10);

  std::size_t most_queued = 0;
  int rounds = 0;
  while (!cursor.done()) {
    run_all(t, kT0);  // IPFS drains the queues
    REQUIRE(t.reconcile_shared_slice(cursor, pinset.scan(), pinset.contains(), self, kT0, 1000, 10)
                .ok());
    most_queued = std::max(most_queued, t.queued_pins());
    REQUIRE(++rounds < 20);
  }
  run_all(t, kT0);
  CHECK(most_queued <= 10);
  CHECK(cursor.changes == 35);
  for (int n = 0; n < 35; ++n) CHECK(status_of(t, n) == TrackerStatus::pinned);
  // No pin was parked as a queue-full error on the way.
  CHECK(t.in_memory() == 0);
}

namespace {

// Runs every operation to success; returns how many went to IPFS.
std::size_t run_counting(PinTracker& t, UnixNanos now) {
  std::size_t calls = 0;
  while (true) {
    auto ops = t.next_operations(now);
    if (ops.empty()) return calls;
    calls += ops.size();
    for (const auto& op : ops) t.operation_finished(op.pin.cid, op.id, Status::ok_status(), now);
  }
}

}  // namespace

TEST_CASE("past list_ipfs_after untracked pins a pass asks for one IPFS listing and records what "
          "IPFS holds as pinned without a call") {
  MemoryStore store;
  PinTracker t = open_tracker(store);
  PeerId self = peer_n(1);
  SlicedPinset pinset;
  for (int n = 0; n < 40; ++n) {
    Pin p = pin_n(n);
    if (n % 10 == 0) p.allocations = {peer_n(2)};  // 4 remote: never counted, never listed
    pinset.add(p);
  }
  t.track(pin_n(1), true, kT0);  // tracked already: not counted
  run_all(t, kT0);

  SharedReconcileCursor cursor;
  cursor.list_ipfs_after = 5;
  REQUIRE(t.reconcile_shared_slice(cursor, pinset.scan(), pinset.contains(), self, kT0, 1000).ok());
  CHECK(cursor.wants_ipfs_listing);
  CHECK_FALSE(cursor.done());
  CHECK(cursor.untracked == 5);
  CHECK(t.queued_pins() == 5);  // the first five each get their pin/add
  REQUIRE(cursor.after.has_value());
  Cid stopped_at = *cursor.after;

  // Without a listing the pass does not go on.
  REQUIRE(t.reconcile_shared_slice(cursor, pinset.scan(), pinset.contains(), self, kT0, 1000).ok());
  CHECK(cursor.wants_ipfs_listing);
  CHECK(*cursor.after == stopped_at);

  std::set<Cid> in_ipfs;  // IPFS holds the pins of even number
  for (int n = 0; n < 40; n += 2) in_ipfs.insert(cid_n(n));
  cursor.held_by_ipfs = [&](const Cid& cid) { return in_ipfs.count(cid) > 0; };
  while (!cursor.done()) {
    REQUIRE(
        t.reconcile_shared_slice(cursor, pinset.scan(), pinset.contains(), self, kT0, 1000).ok());
    CHECK_FALSE(cursor.wants_ipfs_listing);
  }
  // 35 untracked pins here (40 - 4 remote - 1 tracked): 5 before the listing; of the 30 after
  // it, those IPFS holds were recorded without a call.
  CHECK(cursor.untracked == 35);
  CHECK(cursor.pins == 40);
  std::size_t held_after = 0;
  for (int n = 0; n < 40; ++n) {
    bool untracked_here = n % 10 != 0 && n != 1;
    if (untracked_here && n % 2 == 0 && cid_n(n) > stopped_at) ++held_after;
  }
  CHECK(cursor.checked_in_ipfs == 30);
  CHECK(cursor.found_in_ipfs == held_after);
  REQUIRE(held_after >= 5);
  std::size_t calls = run_counting(t, kT0);
  CHECK(calls == 35 - held_after);
  for (int n = 0; n < 40; ++n) {
    CAPTURE(n);
    CHECK((n % 10 == 0 ? status_elsewhere(t, n) : status_of(t, n)) ==
          (n % 10 == 0 ? TrackerStatus::remote : TrackerStatus::pinned));
  }
  CHECK(t.in_memory() == 0);
}

TEST_CASE("a pass whose IPFS listing failed pins every untracked pin with its own call") {
  MemoryStore store;
  PinTracker t = open_tracker(store);
  SlicedPinset pinset;
  for (int n = 0; n < 20; ++n) pinset.add(pin_n(n));
  SharedReconcileCursor cursor;
  cursor.list_ipfs_after = 3;
  REQUIRE(t.reconcile_shared_slice(cursor, pinset.scan(), pinset.contains(), peer_n(1), kT0, 1000)
              .ok());
  REQUIRE(cursor.wants_ipfs_listing);
  cursor.list_ipfs_after = SIZE_MAX;  // what the caller does when IPFS could not be listed
  while (!cursor.done()) {
    REQUIRE(t.reconcile_shared_slice(cursor, pinset.scan(), pinset.contains(), peer_n(1), kT0, 1000)
                .ok());
    CHECK_FALSE(cursor.wants_ipfs_listing);
  }
  CHECK(cursor.checked_in_ipfs == 0);
  CHECK(cursor.found_in_ipfs == 0);
  CHECK(run_counting(t, kT0) == 20);
  for (int n = 0; n < 20; ++n) CHECK(status_of(t, n) == TrackerStatus::pinned);
}

TEST_CASE("unpins of CIDs that left the pinset also wait for room in the queues") {
  MemoryStore store;
  PinTracker t = open_tracker(store);
  PeerId self = peer_n(1);
  for (int n = 0; n < 25; ++n) t.track(pin_n(n), true, kT0);
  run_all(t, kT0);
  SlicedPinset empty;

  SharedReconcileCursor cursor;
  std::size_t most_queued = 0;
  int rounds = 0;
  while (!cursor.done()) {
    REQUIRE(t.reconcile_shared_slice(cursor, empty.scan(), empty.contains(), self, kT0, 1000, 6)
                .ok());
    most_queued = std::max(most_queued, t.queued_unpins());
    if (!cursor.done()) CHECK(cursor.paused);
    run_all(t, kT0);
    REQUIRE(++rounds < 20);
  }
  CHECK(most_queued == 6);
  CHECK(cursor.changes == 25);
  for (int n = 0; n < 25; ++n) CHECK(status_of(t, n) == TrackerStatus::unpinned);
}

TEST_CASE("each expired pin has exactly one closest live peer to unpin it") {
  std::vector<PeerId> peers;
  for (int i = 0; i < 5; ++i) peers.push_back(peer_n(i + 1));
  std::vector<Pin> pins;
  for (int i = 0; i < 30; ++i) pins.push_back(pin_n(i));
  std::map<Cid, int> chosen;
  std::set<int> choosers;
  for (std::size_t i = 0; i < peers.size(); ++i) {
    for (const Pin& p : pins) {
      if (!closest_peer(p.cid, peers[i], peers)) continue;
      chosen[p.cid]++;
      choosers.insert(static_cast<int>(i));
    }
  }
  CHECK(chosen.size() == 30);
  for (const auto& [cid, count] : chosen) CHECK(count == 1);
  CHECK(choosers.size() > 1);  // the work is spread, not all on one peer

  // Without the chosen peer, another one takes over.
  Cid c = pins[0].cid;
  int owner = -1;
  for (std::size_t i = 0; i < peers.size(); ++i)
    if (closest_peer(c, peers[i], peers)) owner = static_cast<int>(i);
  REQUIRE(owner >= 0);
  std::vector<PeerId> rest = peers;
  rest.erase(rest.begin() + owner);
  int others = 0;
  for (const PeerId& p : rest) others += closest_peer(c, p, rest) ? 1 : 0;
  CHECK(others == 1);
}

TEST_CASE("new pins past the window wait in the store's list and refill queues them in order") {
  MemoryStore store;
  TrackerLimits limits = small_limits();
  limits.fresh_pin_window = 2;
  PinTracker t = open_tracker(store, limits);
  for (int i = 0; i < 6; ++i) t.track(pin_n(i), true, kT0);
  CHECK(t.queued_pins() == 2);
  CHECK(t.in_memory() == 2);
  CHECK(store.waiting == std::deque<Cid>{cid_n(2), cid_n(3), cid_n(4), cid_n(5)});
  CHECK(store.writes == 0);  // no tracker record for the queued nor the waiting pins
  for (int i = 2; i < 6; ++i) CHECK(status_of(t, i) == TrackerStatus::unpinned);  // untracked
  // The pinset as it is when they are queued: 4 was unpinned meanwhile, 5 moved elsewhere.
  std::map<Cid, Pin> pinset;
  for (int i : {0, 1, 2, 3, 5}) pinset.emplace(cid_n(i), pin_n(i));
  pinset.at(cid_n(5)).allocations = {peer_n(2)};
  std::vector<Cid> asked;
  auto pin_of = [&](const Cid& c) -> Result<std::optional<Pin>> {
    asked.push_back(c);
    auto it = pinset.find(c);
    return it == pinset.end() ? std::optional<Pin>() : std::optional<Pin>(it->second);
  };
  auto none = t.refill({pin_of, peer_n(1)}, kT0);  // the queue is full: nothing moves
  REQUIRE(none.ok());
  CHECK(*none == 0);
  auto ops = t.next_operations(kT0);  // 0 and 1 start: the queue is empty
  REQUIRE(ops.size() == 2);
  auto taken = t.refill({pin_of, peer_n(1)}, kT0);  // as many as there is room for
  REQUIRE(taken.ok());
  CHECK(*taken == 2);
  CHECK(asked == std::vector<Cid>{cid_n(2), cid_n(3)});
  CHECK(status_of(t, 2) == TrackerStatus::pin_queued);
  CHECK(status_of(t, 3) == TrackerStatus::pin_queued);
  CHECK(t.may_have_waiting());
  for (const auto& op : ops) t.operation_finished(op.pin.cid, op.id, Status::ok_status(), kT0);
  run_all(t, kT0);
  taken = t.refill({pin_of, peer_n(1)}, kT0);
  REQUIRE(taken.ok());
  CHECK(*taken == 2);  // 4 was dropped (unpinned), 5 is remote
  CHECK(asked.size() == 4);
  taken = t.refill({pin_of, peer_n(1)}, kT0);  // one batch a call: this one finds the list dry
  REQUIRE(taken.ok());
  CHECK(*taken == 0);
  CHECK_FALSE(t.may_have_waiting());
  CHECK(status_of(t, 4) == TrackerStatus::unpinned);
  CHECK(status_elsewhere(t, 5) == TrackerStatus::remote);
  for (int i = 0; i < 4; ++i) CHECK(status_of(t, i) == TrackerStatus::pinned);
  CHECK(store.waiting.empty());
}

TEST_CASE("a refill reads one bounded batch a call, however many waiting CIDs queue nothing") {
  MemoryStore store;
  TrackerLimits limits = small_limits();
  limits.max_pin_queue_size = 100000;
  limits.fresh_pin_window = 20000;
  PinTracker t = open_tracker(store, limits);
  // CIDs that waited, then were unpinned: popping them queues nothing, so a refill that went on
  // until the queue was full read the whole list in one call.
  const std::size_t waiting = 2 * PinTracker::kRefillBatch + 10;
  for (std::size_t i = 0; i < waiting; ++i) store.waiting.push_back(cid_n(static_cast<int>(i)));
  std::size_t asked = 0;
  auto pin_of = [&](const Cid&) -> Result<std::optional<Pin>> {
    ++asked;
    return std::optional<Pin>();
  };
  int calls = 0;
  while (t.may_have_waiting()) {
    auto taken = t.refill({pin_of, peer_n(1)}, kT0);
    REQUIRE(taken.ok());
    CHECK(*taken <= PinTracker::kRefillBatch);
    REQUIRE(++calls <= 4);
  }
  CHECK(calls == 3);
  CHECK(asked == waiting);
  CHECK(t.queued_pins() == 0);
}

TEST_CASE("an untracked pin a reconcile queues before listing IPFS is stored: an unpin reaches IPFS") {
  // After a kill took its record, a pin allocated here may be held by IPFS already; if it were
  // queued in memory only, an unpin before its pin/add would forget it and leave it in IPFS.
  MemoryStore store;
  PinTracker t = open_tracker(store);
  PeerId self = peer_n(1);
  SlicedPinset pinset;
  pinset.add(pin_n(1));
  SharedReconcileCursor cursor;
  REQUIRE(t.reconcile_shared_slice(cursor, pinset.scan(), pinset.contains(), self, kT0, 1000).ok());
  CHECK(store.rows.count(cid_n(1)) == 1);
  CHECK(status_of(t, 1) == TrackerStatus::pin_queued);
  t.untrack(cid_n(1), kT0);
  auto ops = t.next_operations(kT0);
  REQUIRE(ops.size() == 1);
  CHECK(ops[0].op == TrackerOp::unpin);
  CHECK(ops[0].pin.cid == cid_n(1));
}

TEST_CASE("a sync's listing is refused when the wall clock stepped back while IPFS listed") {
  using std::chrono::milliseconds;
  // Both clocks advanced alike, or within the slack (NTP slews at most 0.5 ms a second).
  CHECK(listing_clock_check(kT0, kT0 + 30 * kSecond, std::chrono::seconds(30)).ok());
  CHECK(listing_clock_check(kT0, kT0 + 30 * kSecond, std::chrono::seconds(30) - kListingClockSlack).ok());
  CHECK(listing_clock_check(kT0, kT0 + 30 * kSecond, std::chrono::seconds(30) + kListingClockSlack).ok());
  // Stepped back: a status set during the listing would look older than the listing.
  Status back = listing_clock_check(kT0, kT0 + 28 * kSecond, std::chrono::seconds(30));
  REQUIRE_FALSE(back.ok());
  CHECK(back.error().message.find("stepped back by 2.0 s") != std::string::npos);
  Status before_start = listing_clock_check(kT0, kT0 - 3600 * kSecond, milliseconds(200));
  REQUIRE_FALSE(before_start.ok());
  CHECK(before_start.error().message.find("stepped back by 3600.2 s") != std::string::npos);
  // Stepped forward: what changed meanwhile is still dated after the listing began.
  CHECK(listing_clock_check(kT0, kT0 + 100 * kSecond, std::chrono::seconds(30)).ok());
}

TEST_CASE("a reconcile pins again a pin recorded pinned in another mode or depth") {
  // A snapshot install replaces the pinset without entries: a pin whose mode or depth changed
  // meanwhile shows only as a difference between its record and the pinset.
  MemoryStore store;
  TrackerLimits limits = small_limits();
  limits.concurrent_pins = 10;
  PinTracker t = open_tracker(store, limits);
  PeerId self = peer_n(1);
  for (int n : {1, 2, 3}) t.track(pin_n(n), true, kT0);
  run_all(t, kT0);
  for (int n : {1, 2, 3}) REQUIRE(status_of(t, n) == TrackerStatus::pinned);

  SlicedPinset pinset;
  Pin direct = pin_n(1);
  direct.options.mode = PinMode::direct;
  direct.max_depth = 0;
  Pin shallow = pin_n(2);
  shallow.max_depth = 2;
  Pin renamed = pin_n(3);
  renamed.options.name = "only the name changed";
  for (const Pin& p : {direct, shallow, renamed}) pinset.add(p);
  SharedReconcileCursor cursor;
  REQUIRE(t.reconcile_shared_slice(cursor, pinset.scan(), pinset.contains(), self, kT0, 1000).ok());
  std::map<Cid, TrackerOperation> ops;
  for (auto& op : t.next_operations(kT0)) ops.emplace(op.pin.cid, op);
  REQUIRE(ops.size() == 2);
  CHECK(ops.at(cid_n(1)).op == TrackerOp::pin);
  CHECK(ops.at(cid_n(1)).pin.options.mode == PinMode::direct);
  CHECK(ops.at(cid_n(2)).op == TrackerOp::pin);
  CHECK(ops.at(cid_n(2)).pin.max_depth == 2);
  CHECK(ops.count(cid_n(3)) == 0);  // a name is not IPFS's business
}

TEST_CASE("recheck asks IPFS again about CIDs whose records a kill may have left behind") {
  MemoryStore store;
  TrackerLimits limits = small_limits();
  limits.concurrent_pins = 10;
  limits.concurrent_unpins = 10;
  Pin elsewhere_pin = pin_n(4);
  elsewhere_pin.allocations = {peer_n(2)};
  {
    PinTracker before = open_tracker(store, limits);
    for (int n : {1, 2, 4}) before.track(pin_n(n), true, kT0);
    run_all(before, kT0);
  }
  // What tracker.db kept: 1, 2 and 4 pinned, and an unpin of 5 that was still queued.
  TrackerRecord queued_unpin(pin_n(5));
  queued_unpin.op = TrackerOp::unpin;
  queued_unpin.status = TrackerStatus::unpin_queued;
  store.rows.insert_or_assign(cid_n(5), queued_unpin);
  PinTracker t = open_tracker(store, limits);
  // 1: pinned again after an unpin whose pin/rm ran, in another mode.
  Pin direct = pin_n(1);
  direct.options.mode = PinMode::direct;
  t.recheck(cid_n(1), &direct, true, &direct, kT0);
  // 5: pinned again while its unpin waited: the unpin is replaced, not run.
  Pin five = pin_n(5);
  t.recheck(cid_n(5), &five, true, &five, kT0);
  // 2: unpinned (its record says pinned); 4: moved to another peer.
  t.recheck(cid_n(2), nullptr, false, nullptr, kT0);
  t.recheck(cid_n(4), &elsewhere_pin, false, nullptr, kT0);
  // 6: pinned here and unpinned again inside the span, no record: it may be in IPFS.
  Pin six = pin_n(6);
  t.recheck(cid_n(6), nullptr, false, &six, kT0);
  // 7: never allocated here, no record: nothing to ask.
  t.recheck(cid_n(7), nullptr, false, nullptr, kT0);

  std::map<Cid, TrackerOperation> ops;
  for (auto& op : t.next_operations(kT0)) ops.emplace(op.pin.cid, op);
  REQUIRE(ops.size() == 5);
  CHECK(ops.at(cid_n(1)).op == TrackerOp::pin);
  CHECK(ops.at(cid_n(1)).pin.options.mode == PinMode::direct);
  CHECK(ops.at(cid_n(5)).op == TrackerOp::pin);
  CHECK(ops.at(cid_n(2)).op == TrackerOp::unpin);
  CHECK(ops.at(cid_n(4)).op == TrackerOp::unpin);
  CHECK(ops.at(cid_n(6)).op == TrackerOp::unpin);
  CHECK(ops.count(cid_n(7)) == 0);
  for (const auto& [cid, op] : ops) t.operation_finished(cid, op.id, Status::ok_status(), kT0);
  run_all(t, kT0);
  CHECK(status_of(t, 1) == TrackerStatus::pinned);
  CHECK(status_of(t, 5) == TrackerStatus::pinned);
  CHECK(status_of(t, 2) == TrackerStatus::unpinned);
  CHECK(status_elsewhere(t, 4) == TrackerStatus::remote);
  CHECK(status_of(t, 6) == TrackerStatus::unpinned);
}

TEST_CASE("new pins that left the pinset before reaching IPFS are forgotten by the reconcile") {
  MemoryStore store;
  PinTracker t = open_tracker(store);
  for (int i = 0; i < 4; ++i) t.track(pin_n(i), true, kT0);
  auto ops = t.next_operations(kT0);  // 0 and 1 start (concurrent_pins 2); 2 and 3 wait
  REQUIRE(ops.size() == 2);
  // A snapshot replaced the pinset with one that holds none of them.
  SharedPinsetScan empty = [](const std::function<bool(const Pin&)>&) { return Status::ok_status(); };
  auto changed = t.reconcile_shared(empty, [](const Cid&) { return false; }, peer_n(1), kT0);
  REQUIRE(changed.ok());
  CHECK(*changed == 4);
  for (const auto& op : ops) {
    CHECK(t.status(op.pin.cid)->value().status == TrackerStatus::unpin_queued);
    t.operation_finished(op.pin.cid, op.id, Status::ok_status(), kT0);  // pinned meanwhile
  }
  int queued_unpins = 0;
  for (int i = 0; i < 4; ++i) {
    TrackerStatus s = status_of(t, i);
    if (s == TrackerStatus::unpin_queued) ++queued_unpins;
    else CHECK(s == TrackerStatus::unpinned);  // never asked of IPFS: just forgotten
  }
  CHECK(queued_unpins == 2);  // the two that ran are unpinned in IPFS
  run_all(t, kT0);
  for (int i = 0; i < 4; ++i) CHECK(status_of(t, i) == TrackerStatus::unpinned);
  CHECK(t.in_memory() == 0);
}

TEST_CASE("a retry that meets a full queue is parked as an error and recover queues it") {
  MemoryStore store;
  TrackerLimits limits = small_limits();
  limits.max_pin_queue_size = 2;
  PinTracker t = open_tracker(store, limits);
  t.track(pin_n(0), true, kT0);
  t.track(pin_n(1), true, kT0);
  auto ops = t.next_operations(kT0);  // both start (concurrent_pins 2)
  REQUIRE(ops.size() == 2);
  t.track(pin_n(2), true, kT0);
  t.track(pin_n(3), true, kT0);  // the queue is full again
  t.operation_finished(ops[0].pin.cid, ops[0].id, make_error("ipfs down"), kT0);
  TrackerRecord parked = **t.status(ops[0].pin.cid);
  CHECK(parked.status == TrackerStatus::pin_error);
  CHECK(parked.error == "pin/unpin operation queue is full (max_pin_queue_size 2)");
  CHECK(store.rows.at(ops[0].pin.cid).status == TrackerStatus::pin_error);
  t.operation_finished(ops[1].pin.cid, ops[1].id, Status::ok_status(), kT0);
  run_all(t, kT0);
  CHECK(t.status(ops[0].pin.cid)->value().status == TrackerStatus::pin_error);  // waits for recover
  auto r = t.recover(ops[0].pin.cid, kT0);
  REQUIRE(r.ok());
  REQUIRE(r->has_value());
  CHECK((*r)->status == TrackerStatus::pin_queued);
  run_all(t, kT0);
  for (int i = 0; i < 4; ++i) CHECK(status_of(t, i) == TrackerStatus::pinned);
}

TEST_CASE("a restart keeps statuses, errors and attempts; the reconcile queues again what was new") {
  MemoryStore store;
  {
    TrackerLimits limits = small_limits();
    limits.retry_backoff_min_ns = 1000 * kSecond;
    PinTracker t = open_tracker(store, limits);
    t.track(pin_n(1), true, kT0);
    run_all(t, kT0);  // pinned
    t.track(pin_n(2), true, kT0);
    run_all(t, kT0, make_error("no space left"));  // pin_error
    t.track(pin_n(3), true, kT0 + 100 * kSecond);
    auto ops = t.next_operations(kT0 + 100 * kSecond);  // pinning 3 (2 is not due yet)
    REQUIRE(ops.size() == 1);
    CHECK(status_of(t, 3) == TrackerStatus::pinning);
    t.track(pin_n(4), false, kT0);  // remote
    t.track(pin_n(6), true, kT0 + 100 * kSecond);
    run_all(t, kT0 + 100 * kSecond);  // pinned
    t.untrack(cid_n(6), kT0 + 100 * kSecond);
    auto unpins = t.next_operations(kT0 + 100 * kSecond);  // unpinning 6
    REQUIRE(unpins.size() == 1);
    CHECK(status_of(t, 6) == TrackerStatus::unpinning);
    t.track(pin_n(5), true, kT0 + 100 * kSecond);  // new, only queued
  }  // the peer stops with the pin of 3 and the unpin of 6 in IPFS
  PinTracker t = open_tracker(store, small_limits(), kT0 + 200 * kSecond);
  // 5 was new and only queued, so only in memory: untracked until the start's reconcile.
  CHECK(status_of(t, 5) == TrackerStatus::unpinned);
  std::map<Cid, Pin> pins;  // listed in CID order, as the state is
  for (int i = 1; i <= 5; ++i) pins.emplace(cid_n(i), pin_n(i));
  pins.at(cid_n(4)).allocations = {peer_n(2)};
  SharedPinsetScan pinset = [&](const std::function<bool(const Pin&)>& visit) {
    for (const auto& [cid, pin] : pins)
      if (!visit(pin)) break;
    return Status::ok_status();
  };
  auto changed = t.reconcile_shared(pinset, [](const Cid&) { return true; }, peer_n(1),
                                    kT0 + 200 * kSecond);
  REQUIRE(changed.ok());
  CHECK(*changed == 1);  // only 5
  CHECK(status_of(t, 1) == TrackerStatus::pinned);
  TrackerRecord two = record_of(t, 2);
  CHECK(two.status == TrackerStatus::pin_error);
  CHECK(two.error == "no space left");
  CHECK(two.attempt_count == 1);
  CHECK(status_of(t, 3) == TrackerStatus::pin_queued);
  CHECK(status_elsewhere(t, 4) == TrackerStatus::remote);
  CHECK(status_of(t, 5) == TrackerStatus::pin_queued);
  CHECK(status_of(t, 6) == TrackerStatus::unpin_queued);  // its outcome is unknown: again
  CHECK(t.in_memory() == 4);  // only 2 (retry), 3, 5 and 6 (queued)
  run_all(t, kT0 + 200 * kSecond);
  CHECK(status_of(t, 2) == TrackerStatus::pin_error);  // its retry time survived the restart
  CHECK(status_of(t, 3) == TrackerStatus::pinned);
  run_all(t, kT0 + 2000 * kSecond);
  for (int i : {1, 2, 3, 5}) CHECK(status_of(t, i) == TrackerStatus::pinned);
  CHECK(status_of(t, 6) == TrackerStatus::unpinned);
}

// Random pins, unpins, re-allocations, failures, late results, full queues, syncs and restarts;
// after every step one operation per CID and the concurrency limits hold, and once IPFS works
// again everything converges without help: allocated here = pinned in IPFS, elsewhere = remote
// and not in IPFS, unpinned = forgotten and not in IPFS.
TEST_CASE("random histories keep one operation per CID and converge to the pinset") {
  for (unsigned seed = 1; seed <= 30; ++seed) {
    CAPTURE(seed);
    std::mt19937 rng(seed);
    auto pick = [&](int n) { return static_cast<int>(rng() % static_cast<unsigned>(n)); };
    MemoryStore store;
    TrackerLimits limits = small_limits();
    limits.concurrent_pins = 3;
    limits.concurrent_unpins = 2;
    limits.max_pin_queue_size = 6;
    limits.retry_backoff_max_ns = 8 * kSecond;
    std::optional<PinTracker> t;
    t.emplace(open_tracker(store, limits));
    std::map<Cid, bool> pinset;  // CID -> allocated here
    std::set<Cid> ipfs;
    std::vector<TrackerOperation> running;
    UnixNanos now = kT0;
    PeerId self = peer_n(1);
    SharedReconcileCursor sliced;

    auto check_step = [&] {
      std::set<Cid> busy;
      int pins = 0, unpins = 0;
      for (const auto& op : running) {
        CHECK(busy.insert(op.pin.cid).second);  // one operation per CID
        (op.op == TrackerOp::pin ? pins : unpins)++;
      }
      CHECK(pins <= limits.concurrent_pins);
      CHECK(unpins <= limits.concurrent_unpins);
      CHECK(t->in_memory() <= t->queued_pins() + t->queued_unpins() + t->in_progress());
    };
    auto contains = [&](const Cid& c) { return pinset.count(c) > 0; };
    // A whole pass, as the worker runs one at start and once new pins met a full queue.
    auto reconcile_now = [&] {
      SharedPinsetScan scan = [&](const std::function<bool(const Pin&)>& visit) {
        for (const auto& [cid, here] : pinset) {
          Pin p(cid);
          if (!here) p.allocations = {peer_n(2)};
          if (!visit(p)) break;
        }
        return Status::ok_status();
      };
      REQUIRE(t->reconcile_shared(scan, contains, self, now).ok());
    };
    PinsetLookup lookup{[&](const Cid& c) -> Result<std::optional<Pin>> {
                          auto it = pinset.find(c);
                          if (it == pinset.end()) return std::optional<Pin>();
                          Pin p(c);
                          if (!it->second) p.allocations = {peer_n(2)};
                          return std::optional<Pin>(p);
                        },
                        self};
    // What the worker does on every turn: queue waiting pins once the queue drained to half.
    auto refill = [&] {
      if (t->queued_pins() + t->queued_unpins() >= t->window() / 2 + 1) return;
      auto taken = t->refill(lookup, now);
      REQUIRE(taken.ok());
    };
    auto finish = [&](std::size_t i, bool ok) {
      TrackerOperation op = running[i];
      running.erase(running.begin() + static_cast<long>(i));
      if (ok) {
        if (op.op == TrackerOp::pin)
          ipfs.insert(op.pin.cid);
        else
          ipfs.erase(op.pin.cid);
      }
      t->operation_finished(op.pin.cid, op.id, ok ? Status() : Status(make_error("ipfs down")),
                            now);
    };

    for (int step = 0; step < 400; ++step) {
      int n = pick(12);
      Pin pin = pin_n(n, now);
      switch (pick(10)) {
        case 0:
        case 1: {
          bool here = pick(3) != 0;
          if (!here) pin.allocations = {peer_n(2)};
          bool is_new = pinset.count(pin.cid) == 0;  // what the apply tells
          pinset[pin.cid] = here;
          t->track(pin, here, now, is_new);
          break;
        }
        case 2:
          pinset.erase(pin.cid);
          t->untrack(pin.cid, now);
          break;
        case 3:
        case 4:
          for (auto& op : t->next_operations(now)) running.push_back(op);
          break;
        case 5:
        case 6:
          if (!running.empty())
            finish(static_cast<std::size_t>(pick(static_cast<int>(running.size()))), pick(3) != 0);
          break;
        case 7:
          now += pick(5) * kSecond;
          if (pick(4) == 0) REQUIRE(t->recover_all(now, 3, &lookup).ok());
          break;
        case 8:
          if (pick(2) == 0) {
            REQUIRE(
                t->reconcile_ipfs([&](const Cid& c, PinMode) { return ipfs.count(c) > 0; }, now, now).ok());
          } else {
            if (pick(2) == 0) {
              reconcile_now();
            } else {
              // One slice of a pass that goes on across the other steps.
              SharedPinsetScanFrom from = [&](const std::optional<Cid>& after,
                                              const std::function<bool(const Pin&)>& visit) {
                for (auto it = after ? pinset.upper_bound(*after) : pinset.begin();
                     it != pinset.end(); ++it) {
                  Pin p(it->first);
                  if (!it->second) p.allocations = {peer_n(2)};
                  if (!visit(p)) break;
                }
                return Status::ok_status();
              };
              if (sliced.done()) sliced = SharedReconcileCursor();
              REQUIRE(t->reconcile_shared_slice(sliced, from, contains, self, now,
                                                static_cast<std::size_t>(1 + pick(4)),
                                                static_cast<std::size_t>(1 + pick(8)))
                          .ok());
            }
          }
          break;
        case 9:
          if (pick(8) == 0) {
            // Restart: operations in IPFS may or may not have happened; their results are lost.
            for (const auto& op : running) {
              if (pick(2) == 0) continue;
              if (op.op == TrackerOp::pin)
                ipfs.insert(op.pin.cid);
              else
                ipfs.erase(op.pin.cid);
            }
            running.clear();
            t.reset();
            t.emplace(open_tracker(store, limits, now));
            reconcile_now();
          }
          break;
      }
      refill();
      check_step();
    }

    // IPFS works again: finish what runs, then let time pass with periodic recovers and the
    // worker's refills from the waiting list.
    while (!running.empty()) finish(0, true);
    for (int round = 0; round < 40; ++round) {
      now += limits.retry_backoff_max_ns;
      REQUIRE(t->recover_all(now, 100, &lookup).ok());
      refill();
      for (auto ops = t->next_operations(now); !ops.empty(); ops = t->next_operations(now)) {
        running = ops;
        check_step();
        while (!running.empty()) finish(0, true);
      }
    }
    for (int n = 0; n < 12; ++n) {
      Cid c = cid_n(n);
      CAPTURE(n);
      auto it = pinset.find(c);
      TrackerStatus s = status_of(*t, n);
      if (it == pinset.end()) {
        CHECK(s == TrackerStatus::unpinned);
        CHECK(ipfs.count(c) == 0);
      } else if (it->second) {
        CHECK(s == TrackerStatus::pinned);
        CHECK(ipfs.count(c) == 1);
      } else {
        CHECK(status_elsewhere(*t, n) == TrackerStatus::remote);
        CHECK(ipfs.count(c) == 0);
      }
    }
    CHECK(t->in_memory() == 0);
  }
}

namespace {
// Every leaving CID the tracker lists, page after page of at most `max` CIDs and `max_scanned`
// records.
std::vector<Cid> all_leaving(PinTracker& t, std::size_t max, std::size_t max_scanned) {
  std::vector<Cid> out;
  std::optional<Cid> after;
  for (int pages = 0; pages < 100; ++pages) {
    auto page = t.leaving(after, max, max_scanned);
    REQUIRE(page.ok());
    CHECK(page->cids.size() <= max);
    out.insert(out.end(), page->cids.begin(), page->cids.end());
    if (!page->resume) return out;
    if (after) REQUIRE(*after < *page->resume);
    after = page->resume;
  }
  FAIL("the listing of leaving CIDs does not end");
  return out;
}
}  // namespace

TEST_CASE("the leaving CIDs are the unpins of CIDs that left the pinset, queued, running or failed") {
  MemoryStore store;
  PinTracker t = open_tracker(store);
  for (int i = 1; i <= 7; ++i) t.track(pin_n(i), true, kT0);
  run_all(t, kT0);
  t.track(pin_n(8), true, kT0);
  run_all(t, kT0, make_error("IPFS is down"));
  REQUIRE(status_of(t, 8) == TrackerStatus::pin_error);
  // 3: its unpin failed; 2: its unpin runs; 1 and 8 (a pin that had failed): unpins queued.
  t.untrack(cid_n(3), kT0);
  run_all(t, kT0, make_error("IPFS is down"));
  REQUIRE(status_of(t, 3) == TrackerStatus::unpin_error);
  t.untrack(cid_n(2), kT0);
  auto ops = t.next_operations(kT0);
  REQUIRE(ops.size() == 1);
  REQUIRE(status_of(t, 2) == TrackerStatus::unpinning);
  t.untrack(cid_n(1), kT0);
  t.untrack(cid_n(8), kT0);
  REQUIRE(status_of(t, 1) == TrackerStatus::unpin_queued);
  REQUIRE(status_of(t, 8) == TrackerStatus::unpin_queued);
  // Not leaving: 7 moved to other peers (still in the pinset), 4-6 pinned, 9 a new pin.
  t.track(pin_n(7), false, kT0);
  REQUIRE(status_of(t, 7) == TrackerStatus::unpin_queued);
  t.track(pin_n(9), true, kT0, true);

  std::vector<Cid> expected = {cid_n(1), cid_n(2), cid_n(3), cid_n(8)};
  std::sort(expected.begin(), expected.end());
  auto page = t.leaving(std::nullopt, 100, 100);
  REQUIRE(page.ok());
  CHECK(page->cids == expected);
  CHECK_FALSE(page->resume.has_value());
  CHECK(all_leaving(t, 1, 100) == expected);
  CHECK(all_leaving(t, 100, 1) == expected);
  CHECK(all_leaving(t, 3, 2) == expected);

  // 7 leaves the pinset while its move away is queued: leaving now.
  t.untrack(cid_n(7), kT0);
  expected.push_back(cid_n(7));
  std::sort(expected.begin(), expected.end());
  CHECK(all_leaving(t, 2, 100) == expected);
  // 2's unpin ends: unpinned, no longer listed; 3 is pinned again: no longer leaving.
  t.operation_finished(cid_n(2), ops[0].id, Status::ok_status(), kT0);
  t.track(pin_n(3), true, kT0);
  std::erase(expected, cid_n(2));
  std::erase(expected, cid_n(3));
  CHECK(all_leaving(t, 100, 100) == expected);
}
