// Where a pin goes: choose allocations for a CID among candidate peers, honouring
// replication_factor_min/max (-1 = every peer), the user's --allocations, and the current
// allocations of a pin that is pinned again. Candidates come ranked by balanced_order(): grouped
// by the first allocate_by metric when it is a tag, most free space first, with a per-CID hash
// breaking ties so that different CIDs spread over peers that rank the same.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "core/cid.hpp"
#include "core/metrics.hpp"
#include "core/peer_id.hpp"
#include "core/result.hpp"

namespace clusterpin {

struct AllocationRequest {
  std::int64_t rmin = -1;
  std::int64_t rmax = -1;
  std::vector<PeerId> current;           // allocations the pin already has
  std::vector<PeerId> user_allocations;  // preferred, in the user's order
  std::vector<PeerId> candidates;        // peers that may receive it, best first
  // Re-allocation: `current` are the allocations still up, kept even when they are not
  // candidates now (a peer restarting, a metric that failed once): they hold the pin.
  bool keep_current = false;
};

// A peer that may receive pins, with its metrics: one per allocator.balanced.allocate_by name,
// in that order.
struct CandidateMetrics {
  PeerId peer;
  std::vector<Metric> metrics;
};

// The balanced allocator's ranking. Level by level through the metrics: a partitionable metric
// (tag:*) splits the peers into groups of equal value, groups ordered by their total weight at
// the next level (most free space first), and the result takes one peer from each group in turn,
// so that copies spread over groups; any other metric orders peers by weight, highest first.
// Ties at the last level go by a hash of (cid, peer).
std::vector<PeerId> balanced_order(const Cid& cid, const std::vector<CandidateMetrics>& candidates);

// Empty result = everywhere (rmin = rmax = -1). Error when fewer than rmin peers are available:
// "not enough peers to allocate <cid>: need at least N, at most M, have K candidates (...)".
Result<std::vector<PeerId>> allocate(const Cid& cid, const AllocationRequest& request);

// Checks a replication pair: -1/-1, or 1 <= min <= max.
Status check_replication(std::int64_t rmin, std::int64_t rmax);

}  // namespace clusterpin
