// A hand-driven cluster of SimPeers for unit and scenario tests: persistence is immediate,
// messages wait in a queue until the test delivers them, links can be cut one way or both,
// and the InvariantChecker runs after every delivered message and every tick.
#pragma once

#include <functional>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "invariants.hpp"
#include "sim_peer.hpp"

namespace clusterpin::raft::test {

using ConfigTweak = std::function<void(Config&)>;
// Sees every message about to be delivered: returns false to drop it, may also rewrite it.
using MessageFilter = std::function<bool(Message&)>;

Config test_config(const NodeId& id, std::uint64_t seed);

class Cluster {
 public:
  explicit Cluster(std::vector<NodeId> ids, ConfigTweak tweak = {});

  SimPeer& peer(const NodeId& id) { return *peers_.at(id); }
  Node& node(const NodeId& id) { return peers_.at(id)->node(); }
  std::vector<NodeId> ids() const;
  void add_peer(const NodeId& id);  // a fresh peer with an empty store, started

  // Persists every pending Ready at once and queues the messages they release.
  void flush();
  // Delivers queued messages (and those they cause) until none remain; `keep` may drop some.
  void deliver_all(const MessageFilter& keep = {});
  std::vector<Message>& queue() { return queue_; }

  void tick(const NodeId& id, int times = 1);
  void tick_all(int times = 1);
  // Ticks `id` with every message it sends dropped (to let its lease or timers expire).
  void tick_silently(const NodeId& id, int times);

  void cut(const NodeId& a, const NodeId& b);           // both directions
  void cut_one_way(const NodeId& from, const NodeId& to);
  void isolate(const NodeId& id);
  void heal() { cut_.clear(); }

  void crash(const NodeId& id);
  void restart(const NodeId& id);
  // Replaces `id` with a fresh peer of the same identity and an empty store, started: a
  // reprovisioned machine (disk wiped) that joins again under its old peer id.
  void wipe(const NodeId& id);

  // Makes `id` win an election: everyone else's lease is let to expire silently, then `id`
  // campaigns and the votes are delivered. Returns the leader afterwards ("" if none).
  NodeId elect(const NodeId& id, const MessageFilter& keep = {});
  NodeId leader() const;  // the up leader of the highest term, or ""

  InvariantChecker& checker() { return checker_; }
  std::size_t snapshot_installs() const { return snapshot_installs_; }
  std::size_t snapshot_chunks() const { return snapshot_chunks_; }

 private:
  void check();
  bool linked(const NodeId& from, const NodeId& to) const;

  ConfigTweak tweak_;
  std::map<NodeId, std::unique_ptr<SimPeer>> peers_;
  std::vector<Message> queue_;
  std::set<std::pair<NodeId, NodeId>> cut_;
  InvariantChecker checker_;
  std::size_t snapshot_installs_ = 0;
  std::size_t snapshot_chunks_ = 0;
  std::uint64_t next_seed_ = 1;
  bool reported_ = false;
};

}  // namespace clusterpin::raft::test
