// Rereplicator: brings pins back to replication_factor_min live copies when allocated peers stay
// down past cluster.repin_grace_period, or leave the cluster.
//
// One peer decides: the Raft leader, and only once it has applied everything committed (a tick
// that finds it behind waits; only a lost leadership ends the pass under way). Leases
// keep two leaders from deciding at once, and the decision is idempotent (a pin whose live
// allocations already reach rmin is left alone), so a leader change mid-way cannot re-allocate a
// pin twice. Only pins left with fewer than replication_factor_min live allocations get new
// peers; a peer that is merely down keeps its allocations on pins that still have enough copies,
// and allocations to peers that left the cluster are dropped. The leader walks the pinset in CID order, a bounded slice per tick, and commits the
// new allocations in batches of at most kBatch pins, one batch in flight and at most one per
// tick: re-allocation is rate-bounded, never a storm. A re-allocated pin keeps its live peers and
// loses the down ones, so a peer that comes back finds those pins allocated elsewhere and unpins
// them: nothing stays above replication_factor_max.
#pragma once

#include <chrono>
#include <functional>
#include <memory>
#include <set>
#include <string>
#include <vector>

#include <asio.hpp>

#include "core/pin.hpp"
#include "store/state_db.hpp"

namespace clusterpin::node {

class Rereplicator {
 public:
  static constexpr std::size_t kBatch = 1000;      // pins per commit
  static constexpr std::size_t kScanSlice = 20000;  // pins read per tick

  struct Hooks {
    std::function<bool()> leading;                          // this peer is the Raft leader
    std::function<bool()> caught_up;                        // it applied everything committed
    // Its log's last index, and the index it has applied: a pass for a new view starts once
    // every entry appended before the view was seen is applied, since pins prepared before a
    // removal may still allocate the removed peer.
    std::function<std::uint64_t()> last_index;
    std::function<std::uint64_t()> applied_index;
    std::function<std::set<std::string>()> members;         // current members
    std::function<std::set<std::string>()> down;            // members down past the grace
    // New allocations for `pin` by `factors` (its own, defaults read for 0), keeping `live` (its
    // allocations that are still up).
    std::function<Result<std::vector<PeerId>>(const Pin& pin, ReplicationFactors factors,
                                              const std::vector<PeerId>& live)> reallocate;
    std::function<void(std::vector<PinsetOp>, std::function<void(Status)>)> commit;
    std::function<void(const std::string&)> log;
    std::function<UnixNanos()> now;  // wall clock: an expired pin is not re-allocated
    // The cluster's replication factors, for pins stored without them (0: imported from a
    // state that had none), as IPFS Cluster's re-pin reads them.
    ReplicationFactors default_factors{-1, -1};
  };

  Rereplicator(asio::io_context& io, store::StateDb& state, Hooks hooks,
               std::chrono::milliseconds interval = std::chrono::seconds(1));
  ~Rereplicator();
  void start();
  void stop();
  // Pins re-allocated since start (for logs and tests).
  std::uint64_t reallocated() const { return reallocated_; }

 private:
  void tick();
  void arm();

  asio::io_context& io_;
  store::StateDb& state_;
  Hooks hooks_;
  std::chrono::milliseconds interval_;
  asio::steady_timer timer_;
  bool running_ = false;
  bool in_flight_ = false;
  // A pass walks the whole pinset for one view of the cluster (members, and who is down); a
  // finished pass is not repeated until that view changes, or after kRetryAfter when some pins
  // could not be re-allocated (too few live peers).
  static constexpr std::chrono::seconds kRetryAfter{30};
  struct View {
    std::set<std::string> members;
    std::set<std::string> down;
    friend bool operator==(const View&, const View&) = default;
  };
  View pass_view_;
  View seen_view_;                // the view last seen by a tick
  std::uint64_t settle_index_ = 0;  // last_index when seen_view_ was first seen
  bool pass_active_ = false;
  bool pass_done_ = false;
  bool pass_failed_ = false;
  std::string cursor_;  // key of the last pin read by the pass
  std::chrono::steady_clock::time_point pass_finished_at_{};
  std::uint64_t reallocated_ = 0;
  std::shared_ptr<bool> alive_ = std::make_shared<bool>(true);
};

}  // namespace clusterpin::node
