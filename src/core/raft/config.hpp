// Tunables of one Raft peer, all in abstract ticks (the daemon decides how long a tick is and
// converts service.json durations with ticks_from). validate() says which value is wrong.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <string>

#include "core/raft/types.hpp"
#include "core/result.hpp"

namespace clusterpin::raft {

struct Config {
  NodeId id;
  std::string cluster_id;          // every message carries it; others' messages are refused
  int heartbeat_ticks = 1;         // leader sends heartbeats this often
  int election_ticks = 10;         // follower timeout is drawn from [election, 2*election)
  int lease_ticks = 10;            // leader steps down without a quorum heard within this
  std::size_t max_append_entries = 64;  // entries per Append message
  // Bytes of entry data per Append message (one entry always goes, whatever its size), and the
  // largest entry propose() takes: a message must fit in a peer link's frame (1 MiB).
  std::size_t max_append_bytes = 512 * 1024;
  std::size_t max_inflight = 8;         // Append messages in flight per follower
  Index trailing_logs = 64;        // entries kept before a snapshot when compacting
  Index snapshot_threshold = 1024;  // applied entries since the last snapshot that call for one
  int snapshot_interval_ticks = 0;  // at least this long between snapshots (0: no minimum)
  std::size_t snapshot_chunk_size = 256 * 1024;  // bytes per InstallSnapshot chunk
  bool pre_vote = true;
  bool check_quorum = true;        // leader lease: step down / ignore disruptive votes
  std::uint64_t seed = 1;          // seeds the randomized election timeout
};

Status validate(const Config& config);

// Whole ticks needed to cover `duration` (rounded up, at least one).
inline int ticks_from(std::chrono::milliseconds duration, std::chrono::milliseconds tick) {
  if (tick.count() <= 0) return 1;
  auto ticks = (duration.count() + tick.count() - 1) / tick.count();
  return ticks < 1 ? 1 : static_cast<int>(ticks);
}

}  // namespace clusterpin::raft
