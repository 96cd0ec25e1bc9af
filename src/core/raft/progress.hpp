// What a leader knows about one follower's log: how far it matches (match), what to send next
// (next), and how sending is paced: one probe at a time until the follower's position is known,
// then a pipeline of up to max_inflight Append messages, or a chunked snapshot transfer
// (also pipelined: up to max_inflight chunks past the acknowledged offset).
#pragma once

#include <cstdint>
#include <deque>

#include "core/raft/types.hpp"

namespace clusterpin::raft {

enum class ReplicationState : std::uint8_t {
  Probe,      // position unknown: one Append in flight, wait for its answer
  Replicate,  // position known: stream Appends optimistically
  Snapshot,   // the needed entries are compacted: send snapshot chunks
};

struct Progress {
  Index match = 0;  // highest index known to be replicated on the follower
  Index next = 1;   // next index to send
  ReplicationState state = ReplicationState::Probe;
  bool probe_sent = false;        // Probe: a probe is outstanding
  std::deque<Index> inflight;     // Replicate: last index of each unacknowledged Append
  bool recent_active = false;     // heard from since the last quorum check
  int idle_heartbeats = 0;        // heartbeats answered since replication last progressed
  int farewell_heartbeats = 0;    // heartbeats sent since this peer's removal committed
  // Snapshot transfer.
  SnapshotMeta snapshot;
  std::uint64_t snapshot_offset = 0;  // bytes the follower acknowledged
  std::uint64_t snapshot_sent = 0;    // bytes sent (chunks past the offset are in flight)

  void become_probe() {
    state = ReplicationState::Probe;
    probe_sent = false;
    inflight.clear();
    next = match + 1;
    idle_heartbeats = 0;
  }
  void become_replicate() {
    state = ReplicationState::Replicate;
    probe_sent = false;
    inflight.clear();
    next = match + 1;
  }
};

}  // namespace clusterpin::raft
