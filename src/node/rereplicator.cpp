// Rereplicator (see rereplicator.hpp).
#include "node/rereplicator.hpp"

#include <algorithm>

#include <fmt/core.h>
#include <fmt/ranges.h>

#include "core/pin_version.hpp"

namespace clusterpin::node {

using namespace std::chrono;

Rereplicator::Rereplicator(asio::io_context& io, store::StateDb& state, Hooks hooks,
                           milliseconds interval)
    : io_(io), state_(state), hooks_(std::move(hooks)), interval_(interval), timer_(io) {}

Rereplicator::~Rereplicator() {
  *alive_ = false;
  stop();
}

void Rereplicator::start() {
  running_ = true;
  arm();
}

void Rereplicator::stop() {
  running_ = false;
  timer_.cancel();
}

void Rereplicator::arm() {
  if (!running_) return;
  timer_.expires_after(interval_);
  timer_.async_wait([this, alive = alive_](const std::error_code& ec) {
    if (ec || !*alive || !running_) return;
    tick();
    arm();
  });
}

void Rereplicator::tick() {
  if (in_flight_) return;
  if (!hooks_.leading()) {
    pass_active_ = false;
    pass_done_ = false;
    return;
  }
  // A leader behind its commits (a write to its log under way, as under steady load) waits
  // and keeps the pass where it is.
  if (!hooks_.caught_up()) return;
  View view{hooks_.members(), hooks_.down()};
  if (view != seen_view_) {
    seen_view_ = view;
    settle_index_ = hooks_.last_index();
  }
  if (pass_active_ && view != pass_view_) pass_active_ = false;  // start over with the new view
  if (!pass_active_) {
    bool repeat = !pass_done_ || view != pass_view_ ||
                  (pass_failed_ && steady_clock::now() - pass_finished_at_ >= kRetryAfter);
    if (!repeat) return;
    // Entries appended before this view was seen (a pin prepared before a removal, allocated
    // to the removed peer) are applied first, or the pass could read the pinset without them.
    if (hooks_.applied_index() < settle_index_) return;
    pass_view_ = view;
    pass_active_ = true;
    pass_done_ = false;
    pass_failed_ = false;
    cursor_.clear();
  }

  auto reader = state_.open_reader();
  if (!reader) return hooks_.log("re-replication cannot read the pinset: " + reader.error().message);
  std::vector<PinsetOp> ops;
  const UnixNanos now = hooks_.now();
  std::size_t read = 0, failed = 0;
  std::string first_error;
  bool reached_end = true;
  auto gone = [&](const PeerId& p) {
    std::string id = p.to_string();
    return view.members.count(id) == 0 || view.down.count(id) != 0;
  };
  Status scanned = reader->for_each_pin([&](std::string_view key, std::string_view bytes) {
    if (read >= kScanSlice || ops.size() >= kBatch) {
      reached_end = false;
      return false;
    }
    ++read;
    cursor_.assign(key);
    auto pin = decode_pin(bytes);
    if (!pin || pin->everywhere()) return true;
    // Expired: its unpin is on its way (or waits for this peer's next expiry check); new peers
    // would fetch it for nothing, and a changed pin would make that unpin skip it.
    if (pin->options.expire_at != kZeroTime && pin->options.expire_at <= now) return true;
    // Factors of 0 mean the cluster's defaults (a pin imported without them): judged and
    // allocated by those, as IPFS Cluster's re-pin reads them, and stored as they were.
    const ReplicationFactors factors = pin->options.factors_or(hooks_.default_factors);
    std::vector<PeerId> live, members;
    for (const PeerId& p : pin->allocations) {
      if (!gone(p)) live.push_back(p);
      if (view.members.count(p.to_string()) != 0) members.push_back(p);
    }
    auto rmin = static_cast<std::size_t>(std::max<std::int64_t>(factors.min, 1));
    std::vector<PeerId> allocations;
    if (live.size() >= rmin) {
      // Enough live copies: a peer that is only down keeps its allocation (no churn when it
      // comes back); one that left the cluster is dropped.
      if (members.size() == pin->allocations.size()) return true;
      allocations = std::move(members);
    } else {
      auto chosen = hooks_.reallocate(*pin, factors, live);
      if (chosen) {
        allocations = std::move(chosen).value();
      } else {
        if (failed++ == 0) first_error = chosen.error().message;
        // Too few peers to reach rmin: the pin keeps what it has, but not peers that left the
        // cluster (a removed peer shown allocated for ever, and pinning it if it came back).
        // Never down to no allocation at all, which would mean "every peer".
        if (members.empty() || members.size() == pin->allocations.size()) return true;
        allocations = std::move(members);
      }
    }
    if (allocations == pin->allocations) return true;
    pin->allocations = std::move(allocations);
    // Only if the pin is still the one read here: an unpin or a change committed meanwhile
    // (requests in flight at the leader are not in this reader) stays.
    ops.push_back({PinsetOp::Kind::pin, std::move(pin).value(), pin_version(bytes)});
    return true;
  }, cursor_);
  if (!scanned) {
    pass_active_ = false;
    return hooks_.log("re-replication cannot read the pinset: " + scanned.error().message);
  }
  if (failed > 0) {
    pass_failed_ = true;
    hooks_.log(fmt::format("cannot re-allocate {} pin(s) allocated to peers that are gone ({}): {}",
                           failed, fmt::join(view.down, ", "), first_error));
  }
  if (reached_end) {
    pass_active_ = false;
    pass_done_ = true;
    pass_finished_at_ = steady_clock::now();
  }
  if (ops.empty()) return;
  std::size_t n = ops.size();
  in_flight_ = true;
  hooks_.commit(std::move(ops), [this, n, alive = alive_](Status s) {
    if (!*alive) return;
    in_flight_ = false;
    if (!s) {
      pass_active_ = false;  // start over: what this batch held is read again
      pass_done_ = false;
      return hooks_.log("re-allocating pins failed: " + s.error().message);
    }
    reallocated_ += n;
    hooks_.log(fmt::format("re-allocated {} pin(s) held by peers that are gone", n));
  });
}

}  // namespace clusterpin::node
