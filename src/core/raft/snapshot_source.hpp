// How a leader reads the bytes of a snapshot the application took, to stream it in chunks to a
// lagging follower. The application implements it (a file in production, memory in tests); the
// core never does I/O itself. Either call fails when that snapshot no longer exists.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>

#include "core/raft/types.hpp"
#include "core/result.hpp"

namespace clusterpin::raft {

class SnapshotSource {
 public:
  virtual ~SnapshotSource() = default;
  virtual Result<std::uint64_t> size(const SnapshotMeta& snapshot) = 0;
  // Up to `length` bytes starting at `offset` (fewer only at the end).
  virtual Result<std::string> read(const SnapshotMeta& snapshot, std::uint64_t offset,
                                   std::size_t length) = 0;
};

}  // namespace clusterpin::raft
