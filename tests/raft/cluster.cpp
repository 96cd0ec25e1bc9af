// Cluster: the deterministic, manual driver behind raft_unit and raft_scenarios.
#include "cluster.hpp"

#include <doctest/doctest.h>

#include <algorithm>

#include "core/raft/codec.hpp"

namespace clusterpin::raft::test {

Config test_config(const NodeId& id, std::uint64_t seed) {
  Config c;
  c.id = id;
  c.cluster_id = "test-cluster";
  c.heartbeat_ticks = 1;
  c.election_ticks = 10;
  c.lease_ticks = 10;
  c.max_append_entries = 64;
  c.max_inflight = 4;
  c.trailing_logs = 2;
  c.snapshot_threshold = 0;
  c.snapshot_chunk_size = 16;
  c.seed = seed;
  return c;
}

Cluster::Cluster(std::vector<NodeId> ids, ConfigTweak tweak) : tweak_(std::move(tweak)) {
  DurableState boot = bootstrap_state(ids);
  for (const auto& id : ids) {
    Config c = test_config(id, next_seed_++);
    if (tweak_) tweak_(c);
    DurableStore store;
    store.hard = boot.hard;
    store.log = boot.entries;
    auto peer = std::make_unique<SimPeer>(c, store);
    REQUIRE(peer->start().ok());
    checker_.on_start(id);
    peers_.emplace(id, std::move(peer));
  }
}

std::vector<NodeId> Cluster::ids() const {
  std::vector<NodeId> out;
  for (const auto& [id, p] : peers_) out.push_back(id);
  return out;
}

void Cluster::add_peer(const NodeId& id) {
  Config c = test_config(id, next_seed_++);
  if (tweak_) tweak_(c);
  auto peer = std::make_unique<SimPeer>(c, DurableStore{});
  REQUIRE(peer->start().ok());
  checker_.on_start(id);
  peers_.emplace(id, std::move(peer));
}

bool Cluster::linked(const NodeId& from, const NodeId& to) const {
  return cut_.count({from, to}) == 0;
}

void Cluster::check() {
  std::vector<const SimPeer*> all;
  for (const auto& [id, p] : peers_) all.push_back(p.get());
  checker_.check(all);
  if (!checker_.ok() && !reported_) {
    reported_ = true;  // the first violation explains; the ones it causes would only repeat it
    FAIL_CHECK(checker_.failure());
  }
}

void Cluster::flush() {
  bool more = true;
  while (more) {
    more = false;
    for (auto& [id, p] : peers_) {
      if (!p->take_ready()) continue;
      more = true;
      checker_.on_ready(*p, p->unsynced());
      checker_.on_sync(*p, p->take_early());
      for (const Message& m : p->unsynced().send_now) queue_.push_back(m);
      snapshot_chunks_ += p->unsynced().snapshot_chunks.size();
      auto result = p->sync();
      checker_.on_sync(*p, result);
      if (result.restored) ++snapshot_installs_;
      for (auto& m : result.messages) queue_.push_back(std::move(m));
    }
  }
  check();
}

void Cluster::deliver_all(const MessageFilter& keep) {
  flush();
  for (int round = 0; round < 10000 && !queue_.empty(); ++round) {
    std::vector<Message> batch = std::move(queue_);
    queue_.clear();
    for (Message& m : batch) {
      if (keep && !keep(m)) continue;
      if (!linked(m.from, m.to)) continue;
      auto it = peers_.find(m.to);
      if (it == peers_.end() || !it->second->up()) continue;
      auto decoded = decode(encode(m));  // every message crosses the wire format
      REQUIRE(decoded.ok());
      CHECK(it->second->node().step(*decoded).ok());
      flush();
    }
  }
}

void Cluster::tick(const NodeId& id, int times) {
  for (int i = 0; i < times; ++i) {
    if (peers_.at(id)->up()) peers_.at(id)->node().tick();
    flush();
  }
}

void Cluster::tick_all(int times) {
  for (int i = 0; i < times; ++i) {
    for (auto& [id, p] : peers_)
      if (p->up()) p->node().tick();
    flush();
  }
}

void Cluster::tick_silently(const NodeId& id, int times) {
  for (int i = 0; i < times; ++i) {
    tick(id);
    std::erase_if(queue_, [&](const Message& m) { return m.from == id; });
  }
}

void Cluster::cut(const NodeId& a, const NodeId& b) {
  cut_.insert({a, b});
  cut_.insert({b, a});
}

void Cluster::cut_one_way(const NodeId& from, const NodeId& to) { cut_.insert({from, to}); }

void Cluster::isolate(const NodeId& id) {
  for (const auto& [other, p] : peers_)
    if (other != id) cut(id, other);
}

void Cluster::crash(const NodeId& id) {
  // Entries applied early by a Ready a test took by hand are applied for good: reported first.
  checker_.on_sync(*peers_.at(id), peers_.at(id)->take_early());
  peers_.at(id)->crash();
  std::erase_if(queue_, [&](const Message& m) { return m.from == id; });
}

void Cluster::restart(const NodeId& id) {
  REQUIRE(peers_.at(id)->start().ok());
  checker_.on_start(id);
  check();
}

void Cluster::wipe(const NodeId& id) {
  crash(id);
  Config c = peers_.at(id)->config();
  peers_.at(id) = std::make_unique<SimPeer>(c, DurableStore{});
  REQUIRE(peers_.at(id)->start().ok());
  checker_.on_wipe(id);
  check();
}

NodeId Cluster::elect(const NodeId& id, const MessageFilter& keep) {
  int quiet = 2 * peers_.at(id)->config().election_ticks;
  for (auto& [other, p] : peers_)
    if (other != id && p->up()) tick_silently(other, quiet);
  auto campaigning = [&] {
    return std::any_of(queue_.begin(), queue_.end(), [&](const Message& m) {
      return m.from == id && (m.type == MessageType::PreVote || m.type == MessageType::Vote);
    });
  };
  for (int i = 0; i < 4 * quiet && !campaigning() && node(id).role() != Role::Leader; ++i)
    tick(id);
  deliver_all(keep);
  return leader();
}

NodeId Cluster::leader() const {
  NodeId best;
  Term best_term = 0;
  for (const auto& [id, p] : peers_) {
    if (p->up() && p->node().role() == Role::Leader && p->node().term() >= best_term) {
      best = id;
      best_term = p->node().term();
    }
  }
  return best;
}

}  // namespace clusterpin::raft::test
