// Raft value types shared by the pure core (src/core/raft) and the SQLite log store (src/store).
// Plain data only: no behaviour lives here.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace clusterpin::raft {

using Term = std::uint64_t;
using Index = std::uint64_t;
// A node is named by its peer id string (e.g. "12D3KooW..."); simulations use short names.
using NodeId = std::string;

enum class EntryType : std::uint8_t {
  Normal = 0,      // application command (opaque bytes for the pinset state machine)
  Noop = 1,        // appended by a new leader to commit entries of earlier terms
  ConfChange = 2,  // membership change; data holds the encoded change
};

struct Entry {
  Term term = 0;
  Index index = 0;
  EntryType type = EntryType::Normal;
  std::string data;
  bool operator==(const Entry&) const = default;
};

// What must be durable before any message that depends on it is sent.
struct HardState {
  Term term = 0;
  NodeId vote;  // empty: voted for nobody in `term`
  Index commit = 0;
  bool operator==(const HardState&) const = default;
};

// Membership at some log position.
struct ConfState {
  std::vector<NodeId> voters;
  std::vector<NodeId> learners;  // non-voters catching up before promotion
  bool operator==(const ConfState&) const = default;
};

// Describes a snapshot: the state after applying every entry up to `index`.
struct SnapshotMeta {
  Index index = 0;
  Term term = 0;
  ConfState conf;
  bool operator==(const SnapshotMeta&) const = default;
};

// A single-server membership change, carried by an EntryType::ConfChange entry together with
// the configuration that results from it (see codec.hpp: encode_conf_entry).
enum class ConfChangeType : std::uint8_t {
  Bootstrap = 0,       // the initial configuration written at index 1 when a cluster is created
  AddLearner = 1,      // a new peer joins as a non-voter and receives the log
  PromoteLearner = 2,  // a caught-up learner becomes a voter (proposed by the leader itself)
  RemoveNode = 3,      // a voter or learner leaves
};

struct ConfChange {
  ConfChangeType type = ConfChangeType::AddLearner;
  NodeId node;
  std::string context;  // opaque to Raft; the daemon stores the peer's multiaddress here
  bool operator==(const ConfChange&) const = default;
};

// Everything a peer needs to restart: what was durable when it stopped. `entries` are contiguous
// and may begin before `snapshot.index` (trailing logs kept after compaction); `applied` is the
// state machine's applied index (at least snapshot.index).
struct DurableState {
  HardState hard;
  SnapshotMeta snapshot;
  std::vector<Entry> entries;
  Index applied = 0;
};

}  // namespace clusterpin::raft
