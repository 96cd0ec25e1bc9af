// Who proposed a pinset entry, so that applying it twice is seen (Raft dissertation 6.3). A peer
// that does not hear how its proposal ended (a timeout, a lost answer from the leader, a leader
// change) proposes the same bytes again; when both copies commit, the second must change
// nothing: between the two another request may have changed the same pin. Each peer process
// numbers its proposals within a random session; done_below says that every proposal of the
// session numbered lower has ended for its proposer (answered or given up), so the pinset keeps
// per session only the numbers at or above it. Carried in entries by core/command.hpp (format
// 3), recorded by store::StateDb.
#pragma once

#include <cstdint>

namespace clusterpin {

struct RequestId {
  std::uint64_t session = 0;
  std::uint64_t seq = 0;
  std::uint64_t done_below = 0;
  bool operator==(const RequestId&) const = default;
};

}  // namespace clusterpin
