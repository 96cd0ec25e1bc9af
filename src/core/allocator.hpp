// Where a pin goes: choose allocations for a CID among candidate peers, honouring
// replication_factor_min/max (-1 = every peer), the user's --allocations, and the current
// allocations of a pin that is pinned again. Candidates come ranked (most free space first once
// metrics exist); ties and the no-metrics case fall back to a per-CID hash order, so different
// CIDs spread over different peers.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "core/cid.hpp"
#include "core/peer_id.hpp"
#include "core/result.hpp"

namespace clusterpin {

struct AllocationRequest {
  std::int64_t rmin = -1;
  std::int64_t rmax = -1;
  std::vector<PeerId> current;           // allocations the pin already has
  std::vector<PeerId> user_allocations;  // preferred, in the user's order
  std::vector<PeerId> candidates;        // peers that may receive it, best first
};

// Empty result = everywhere (rmin = rmax = -1). Error when fewer than rmin peers are available:
// "not enough peers to allocate <cid>: need at least N, at most M, have K candidates (...)".
Result<std::vector<PeerId>> allocate(const Cid& cid, const AllocationRequest& request);

// Checks a replication pair: -1/-1, or 1 <= min <= max.
Status check_replication(std::int64_t rmin, std::int64_t rmax);

}  // namespace clusterpin
