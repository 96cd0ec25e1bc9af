// Ready: everything the core asks the application to do, in this order, before advance():
//   1. write `snapshot_chunks` (bytes of an incoming snapshot) to a staging area;
//   2. if `snapshot` is set: the staged chunks form that complete snapshot; restore the state
//      machine from it (applied = snapshot.index), record its meta, and discard the WHOLE log;
//   3. durably persist `hard_state` (if set) and `entries` in one transaction: delete stored
//      entries with index >= entries.front().index, then insert `entries`; then the store may
//      delete entries with index <= `compact_through` (0: none);
//   4. only now send `messages` (they promise what steps 1-3 made durable); `send_now` may go
//      out before step 1 (see below);
//   5. apply `committed` entries in order (applied index in the same transaction);
//   6. call Node::advance().
// Committed entries through `apply_early_through` may be applied at any time after ready()
// returned, before step 1 (while `entries` persist): they are already durable in this peer's
// log, so a crash cannot leave the state machine ahead of the log.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "core/raft/message.hpp"
#include "core/raft/types.hpp"

namespace clusterpin::raft {

struct SnapshotChunk {
  SnapshotMeta snapshot;
  std::uint64_t offset = 0;  // 0 starts a new staging area (discard any earlier one)
  std::string data;
};

struct Ready {
  std::vector<SnapshotChunk> snapshot_chunks;
  std::optional<SnapshotMeta> snapshot;
  std::optional<HardState> hard_state;
  std::vector<Entry> entries;
  Index compact_through = 0;
  std::vector<Message> messages;
  // A leader's appends and heartbeats of a term that an earlier Ready already made durable:
  // they promise nothing about this peer's disk, so they may be sent while `entries` are being
  // persisted (Raft thesis 10.2.1: the leader writes its log in parallel with replicating it).
  // The commit index they carry counts this peer's entries only once advance() reported them
  // durable, and no other peer can create an entry of this term, so one lost in a crash of this
  // peer can never be contradicted.
  std::vector<Message> send_now;
  std::vector<Entry> committed;
  // The committed entries with an index up to here are durable in this peer's log already (0:
  // none): min(commit, what this peer's log made durable). A leader's usually all are, but a
  // quorum of followers alone may commit entries the leader has not made durable yet (safe in
  // Raft); a follower's that arrived in this Ready are not. Applying them while `entries`
  // persist saves the wait.
  Index apply_early_through = 0;
  // The applied log since the last snapshot exceeds snapshot_threshold: take a snapshot and
  // report it with Node::snapshot_taken.
  bool snapshot_due = false;
};

}  // namespace clusterpin::raft
