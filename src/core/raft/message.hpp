// Raft messages exchanged between peers. One struct carries every kind; the fields a kind uses
// are listed next to each field. Messages are plain data: encode/decode live in codec.hpp.
// Every message carries the cluster id so a peer refuses traffic from another cluster.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "core/raft/types.hpp"

namespace clusterpin::raft {

enum class MessageType : std::uint8_t {
  PreVote = 0,            // "would you vote for me at term+1?"; changes nobody's term
  PreVoteResponse = 1,
  Vote = 2,
  VoteResponse = 3,
  Append = 4,             // AppendEntries (may carry no entries: a probe or a commit update)
  AppendResponse = 5,
  Heartbeat = 6,          // keeps followers quiet and carries a safe commit index
  HeartbeatResponse = 7,
  Snapshot = 8,           // one chunk of InstallSnapshot
  SnapshotResponse = 9,
  TimeoutNow = 10,        // leadership transfer: start an election now
};
inline constexpr std::uint8_t kMaxMessageType = 10;

std::string_view to_string(MessageType type);

struct Message {
  MessageType type = MessageType::Append;
  std::string cluster_id;
  NodeId from;
  NodeId to;
  Term term = 0;
  // Vote/PreVote: candidate's last log index. Append: index preceding `entries`.
  // AppendResponse: accepted -> the follower's log matches the leader's through here;
  // rejected -> the `index` of the rejected Append. SnapshotResponse done: matched index.
  Index index = 0;
  // Vote/PreVote: candidate's last log term. Append: term at `index`.
  // AppendResponse rejected: term at `hint`.
  Term log_term = 0;
  Index commit = 0;     // Append, Heartbeat: the leader's commit index (safe for this follower)
  Index hint = 0;       // AppendResponse rejected: highest index that might still match
  bool reject = false;  // responses
  bool transfer = false;  // Vote: election started by a leadership transfer (ignores leases)
  std::vector<Entry> entries;  // Append
  SnapshotMeta snapshot;       // Snapshot, SnapshotResponse: which snapshot the chunk belongs to
  std::uint64_t offset = 0;    // Snapshot: byte offset of `data`; response: bytes held so far
  std::string data;            // Snapshot: chunk bytes
  bool done = false;           // Snapshot: last chunk; response: the snapshot is installed
  bool operator==(const Message&) const = default;
};

}  // namespace clusterpin::raft
