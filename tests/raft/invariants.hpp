// Safety invariants of Raft, checked by the simulation and the scenario tests after every event:
// election safety (one leader per term), log matching, leaders append only, leader
// completeness, state machine safety (no two peers apply different entries at one index, a
// restored snapshot agrees with what was applied), commit index monotonic within a lifetime.
// The first violation is kept as a sentence; later ones are ignored.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "sim_peer.hpp"

namespace clusterpin::raft::test {

class InvariantChecker {
 public:
  void on_start(const NodeId& id);                       // a new lifetime of a peer
  // A new lifetime that starts from an empty store (the peer was wiped): its applied index may
  // start over. What it applies again is still compared with what every other peer applied.
  void on_wipe(const NodeId& id);
  void on_ready(const SimPeer& peer, const Ready& ready);  // right after the Ready is taken
  void on_sync(const SimPeer& peer, const SimPeer::SyncResult& result);
  void check(const std::vector<const SimPeer*>& peers);  // after every event

  bool ok() const { return failure_.empty(); }
  const std::string& failure() const { return failure_; }
  std::size_t elections() const { return leaders_.size(); }
  Index max_committed() const { return committed_.empty() ? 0 : committed_.size() - 1; }
  std::optional<Term> committed_term(Index index) const;

 private:
  struct EntryRecord {
    EntryType type;
    std::string data;
    std::optional<Term> prev_term;
  };
  struct Lifetime {
    Index last_commit = 0;
    Index registered_commit = 0;
    Term leader_term = 0;  // term of the leadership being watched (0: none)
    Index leader_last = 0;
    Term leader_last_term = 0;
  };

  void fail(std::string message);
  void check_peer(const SimPeer& peer);
  void register_commits(const NodeId& id, const Node& node, Lifetime& life);
  void check_leader(const NodeId& id, const Node& node, Lifetime& life);
  void check_restore(const NodeId& id, const SnapshotMeta& meta, const StateMachine& sm);

  std::string failure_;
  std::map<Term, NodeId> leaders_;
  std::map<std::pair<Index, Term>, EntryRecord> entries_;  // every entry ever persisted
  std::vector<Term> committed_{0};     // committed_[i]: term of the entry at index i (0: unknown)
  std::vector<Term> committed_in_{0};  // term of the peer that first saw index i committed
  std::map<Index, Entry> applied_;                         // every entry ever applied
  std::map<NodeId, Lifetime> lives_;
  std::map<NodeId, Index> durable_applied_;
};

}  // namespace clusterpin::raft::test
