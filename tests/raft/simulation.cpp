// Simulation: a discrete-event loop over virtual time (10 units per tick). Events are message
// deliveries, store syncs and ticks, ordered by (time, sequence) so a seed replays exactly.
// Faults are drawn from the same seeded generator at every tick of the faulty phase.
#include "simulation.hpp"

#include <algorithm>
#include <cstdio>
#include <map>
#include <memory>
#include <queue>
#include <set>
#include <vector>

#include <fmt/format.h>
#include <fmt/ranges.h>

#include "core/raft/codec.hpp"
#include "core/raft/rng.hpp"
#include "invariants.hpp"
#include "sim_peer.hpp"

namespace clusterpin::raft::test {

namespace {

constexpr std::uint64_t kTick = 10;

struct Event {
  enum class Kind { Tick, Deliver, Sync };
  std::uint64_t time = 0;
  std::uint64_t seq = 0;
  Kind kind = Kind::Tick;
  NodeId node;
  std::uint64_t epoch = 0;  // Sync: the peer's incarnation that took the Ready
  std::string bytes;        // Deliver: the encoded message
  bool operator>(const Event& o) const { return time != o.time ? time > o.time : seq > o.seq; }
};

struct Proposal {
  NodeId node;
  Index index = 0;
};

class Simulation {
 public:
  explicit Simulation(const SimOptions& options) : opt_(options), rng_(options.seed) {}
  SimOutcome run();

 private:
  // Set-up.
  void draw_parameters();
  Config config_for(const NodeId& id);
  void add_peer(const NodeId& id, DurableStore store);

  // Event handling.
  void schedule(Event e);
  void handle(Event& e);
  void on_tick();
  void deliver(const std::string& bytes);
  void on_sync(const NodeId& id, std::uint64_t epoch);
  void note_applied(SimPeer& peer, const SimPeer::SyncResult& result);
  void pump(SimPeer& peer);
  void send(const Message& m);
  bool linked(const NodeId& from, const NodeId& to) const;
  void check();

  // Faults and clients (faulty phase only).
  void inject_faults();
  void crash(const NodeId& id);
  void restart(const NodeId& id);
  void partition();
  void cut(const NodeId& a, const NodeId& b) {
    cut_.insert({a, b});
    cut_.insert({b, a});
  }
  void propose(const NodeId& id);
  void change_membership();
  NodeId leader() const;
  std::vector<NodeId> up_peers() const;

  // Liveness phase.
  void heal_all();
  bool liveness();
  bool everything_applied(const std::vector<std::string>& commands, const NodeId& leader);
  void describe_peers() const;

  SimOptions opt_;
  Rng rng_;
  SimOutcome out_;
  InvariantChecker checker_;
  std::map<NodeId, std::unique_ptr<SimPeer>> peers_;
  std::map<NodeId, std::uint64_t> epoch_;
  std::map<NodeId, std::uint64_t> restart_at_;  // crashed peers and when they come back
  std::set<std::pair<NodeId, NodeId>> cut_;
  std::uint64_t heal_at_ = 0;
  std::priority_queue<Event, std::vector<Event>, std::greater<>> events_;
  std::uint64_t now_ = 0;
  std::uint64_t seq_ = 0;
  bool faulty_ = true;

  // Per-seed parameters.
  Config base_;
  std::size_t founders_ = 3;
  std::uint64_t loss_ = 0;       // per mille
  std::uint64_t duplicate_ = 0;  // per mille
  std::uint64_t max_delay_ = 20;
  std::uint64_t max_persist_ = 10;
  std::uint64_t leader_faults_ = 10;  // per mille per tick
  int added_ = 0;

  std::map<std::string, Proposal> proposals_;
  std::set<std::string> acked_;
  std::set<Index> conf_indexes_;
  std::uint64_t next_command_ = 0;
};

void Simulation::draw_parameters() {
  founders_ = rng_.chance(500) ? 3 : 5;
  base_.cluster_id = "sim";
  base_.heartbeat_ticks = 1 + static_cast<int>(rng_.below(2));
  base_.election_ticks = 8 + static_cast<int>(rng_.below(7));
  base_.lease_ticks = base_.election_ticks - static_cast<int>(rng_.below(3));
  base_.max_append_entries = rng_.chance(500) ? 1 : 1 + rng_.below(8);
  base_.max_inflight = 1 + rng_.below(4);
  base_.trailing_logs = rng_.below(5);
  base_.snapshot_threshold = rng_.chance(100) ? 0 : 4 + rng_.below(22);
  base_.snapshot_interval_ticks = rng_.chance(300) ? static_cast<int>(rng_.below(20)) : 0;
  base_.snapshot_chunk_size = 32 + rng_.below(200);
  base_.pre_vote = true;
  base_.check_quorum = rng_.chance(850);
  loss_ = rng_.below(100);
  duplicate_ = rng_.below(50);
  max_delay_ = 5 + rng_.below(25);
  max_persist_ = rng_.below(20);
  leader_faults_ = 5 + rng_.below(60);
}

Config Simulation::config_for(const NodeId& id) {
  Config c = base_;
  c.id = id;
  c.seed = rng_.next();
  return c;
}

void Simulation::add_peer(const NodeId& id, DurableStore store) {
  auto peer = std::make_unique<SimPeer>(config_for(id), std::move(store));
  auto s = peer->start();
  if (!s) out_.failure = fmt::format("{} cannot start: {}", id, s.error().message);
  checker_.on_start(id);
  epoch_[id] = 0;
  peers_[id] = std::move(peer);
}

void Simulation::schedule(Event e) {
  e.seq = seq_++;
  events_.push(std::move(e));
}

bool Simulation::linked(const NodeId& from, const NodeId& to) const {
  return cut_.count({from, to}) == 0;
}

void Simulation::send(const Message& m) {
  ++out_.messages;
  std::string bytes = encode(m);
  int copies = 1;
  if (faulty_ && rng_.chance(loss_)) copies = 0;
  if (faulty_ && rng_.chance(duplicate_)) ++copies;
  for (int i = 0; i < copies; ++i) {
    std::uint64_t delay = 1 + rng_.below(max_delay_);
    if (faulty_ && rng_.chance(30)) delay += rng_.below(20 * kTick);  // a straggler: reordering
    Event e;
    e.kind = Event::Kind::Deliver;
    e.time = now_ + delay;
    e.node = m.to;
    e.bytes = bytes;
    schedule(std::move(e));
  }
}

void Simulation::pump(SimPeer& peer) {
  if (!peer.take_ready()) return;
  checker_.on_ready(peer, peer.unsynced());
  // Applied while the Ready persists (as the daemon does): a crash before the sync keeps them.
  note_applied(peer, peer.take_early());
  // Sent before the persist below, which a crash may still lose.
  for (const Message& m : peer.unsynced().send_now) send(m);
  Event e;
  e.kind = Event::Kind::Sync;
  e.time = now_ + rng_.below(max_persist_ + 1);
  e.node = peer.id();
  e.epoch = epoch_[peer.id()];
  schedule(std::move(e));
}

void Simulation::on_sync(const NodeId& id, std::uint64_t epoch) {
  SimPeer& peer = *peers_.at(id);
  if (!peer.up() || epoch != epoch_[id] || !peer.has_unsynced()) return;  // lost in a crash
  auto result = peer.sync();
  note_applied(peer, result);
  if (result.restored) ++out_.snapshot_installs;
  if (result.snapshot_taken) ++out_.snapshots_taken;
  for (const Message& m : result.messages) send(m);
  pump(peer);
}

void Simulation::note_applied(SimPeer& peer, const SimPeer::SyncResult& result) {
  checker_.on_sync(peer, result);
  for (const Entry& e : result.applied) {
    if (e.type == EntryType::ConfChange) conf_indexes_.insert(e.index);
    if (e.type != EntryType::Normal) continue;
    auto it = proposals_.find(e.data);
    // Acknowledged: the peer that accepted the proposal applied it at the promised index.
    if (it != proposals_.end() && it->second.node == peer.id() && it->second.index == e.index)
      acked_.insert(e.data);
  }
}

void Simulation::deliver(const std::string& bytes) {
  auto m = decode(bytes);
  if (!m) {
    out_.failure = "decode failed on an encoded message: " + m.error().message;
    return;
  }
  auto it = peers_.find(m->to);
  if (it == peers_.end() || !it->second->up() || !linked(m->from, m->to)) return;
  auto s = it->second->node().step(*m);
  if (!s) out_.failure = "step refused a message: " + s.error().message;
  pump(*it->second);
}

void Simulation::on_tick() {
  for (auto& [id, peer] : peers_) {
    if (!peer->up()) continue;
    if (faulty_ && rng_.chance(10)) continue;  // a slow clock misses a tick now and then
    peer->node().tick();
    pump(*peer);
  }
  if (faulty_) inject_faults();
  Event e;
  e.kind = Event::Kind::Tick;
  e.time = now_ + kTick;
  schedule(std::move(e));
}

void Simulation::handle(Event& e) {
  now_ = e.time;
  switch (e.kind) {
    case Event::Kind::Tick: on_tick(); break;
    case Event::Kind::Deliver: deliver(e.bytes); break;
    case Event::Kind::Sync: on_sync(e.node, e.epoch); break;
  }
}

void Simulation::check() {
  std::vector<const SimPeer*> all;
  for (const auto& [id, p] : peers_) all.push_back(p.get());
  checker_.check(all);
  if (!checker_.ok() && out_.failure.empty()) out_.failure = checker_.failure();
}

std::vector<NodeId> Simulation::up_peers() const {
  std::vector<NodeId> out;
  for (const auto& [id, p] : peers_)
    if (p->up()) out.push_back(id);
  return out;
}

NodeId Simulation::leader() const {
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

void Simulation::crash(const NodeId& id) {
  peers_.at(id)->crash();
  ++epoch_[id];
  ++out_.crashes;
  restart_at_[id] = now_ + (5 + rng_.below(60)) * kTick;
}

void Simulation::restart(const NodeId& id) {
  SimPeer& peer = *peers_.at(id);
  peer.config().seed = rng_.next();
  auto s = peer.start();
  if (!s) out_.failure = fmt::format("{} cannot restart from its durable state: {}", id,
                                     s.error().message);
  checker_.on_start(id);
  restart_at_.erase(id);
}

void Simulation::partition() {
  cut_.clear();
  auto ids = up_peers();
  if (ids.size() < 2) return;
  if (rng_.chance(500)) {
    // Symmetric: a random group against the rest.
    std::set<NodeId> group;
    for (const auto& id : ids)
      if (rng_.chance(500)) group.insert(id);
    for (const auto& a : ids)
      for (const auto& b : ids)
        if (group.count(a) != group.count(b)) cut_.insert({a, b});
  } else {
    // One-way: a few directed links fail.
    int links = 1 + static_cast<int>(rng_.below(3));
    for (int i = 0; i < links; ++i) {
      const NodeId& a = ids[rng_.below(ids.size())];
      const NodeId& b = ids[rng_.below(ids.size())];
      if (a != b) cut_.insert({a, b});
    }
  }
  heal_at_ = now_ + (10 + rng_.below(80)) * kTick;
}

void Simulation::propose(const NodeId& id) {
  SimPeer& peer = *peers_.at(id);
  if (!peer.up()) return;
  std::string command = fmt::format("c{}", next_command_++);
  auto r = peer.node().propose(command);
  if (r) proposals_[command] = Proposal{id, *r};
  pump(peer);
}

void Simulation::change_membership() {
  NodeId l = leader();
  if (l.empty()) return;
  SimPeer& peer = *peers_.at(l);
  const ConfState& conf = peer.node().conf();
  std::size_t members = conf.voters.size() + conf.learners.size();
  if (members < 6 && added_ < 3 && rng_.chance(600)) {
    NodeId id = fmt::format("n{}", founders_ + 1 + static_cast<std::size_t>(added_++));
    add_peer(id, DurableStore{});
    (void)peer.node().propose_conf_change({ConfChangeType::AddLearner, id, "/sim/" + id});
  } else if (conf.voters.size() > 3 || (!conf.learners.empty() && rng_.chance(300))) {
    std::vector<NodeId> candidates = conf.voters.size() > 3 ? conf.voters : conf.learners;
    NodeId victim = candidates[rng_.below(candidates.size())];
    (void)peer.node().propose_conf_change({ConfChangeType::RemoveNode, victim, ""});
  } else if (rng_.chance(300)) {
    const NodeId& target = conf.voters[rng_.below(conf.voters.size())];
    (void)peer.node().transfer_leadership(target);
  }
  pump(peer);
}

void Simulation::inject_faults() {
  for (auto it = restart_at_.begin(); it != restart_at_.end();) {
    NodeId id = it->first;
    bool due = it->second <= now_;
    ++it;
    if (due) restart(id);
  }
  if (heal_at_ != 0 && heal_at_ <= now_) {
    cut_.clear();
    heal_at_ = 0;
  }
  auto ids = up_peers();
  if (!ids.empty() && rng_.chance(12)) crash(ids[rng_.below(ids.size())]);
  if (heal_at_ == 0 && rng_.chance(15)) partition();
  // Leaders are where the hard cases start (Figure 8, stale tails): hit them more often.
  NodeId l = leader();
  if (!l.empty() && rng_.chance(leader_faults_)) {
    if (rng_.chance(500)) {
      crash(l);
    } else {
      cut_.clear();
      for (const auto& id : ids)
        if (id != l) cut(l, id);
      heal_at_ = now_ + (5 + rng_.below(40)) * kTick;
    }
  }
  if (!ids.empty() && rng_.chance(150)) propose(ids[rng_.below(ids.size())]);
  if (rng_.chance(250)) {
    NodeId l = leader();
    if (!l.empty()) propose(l);
  }
  if (rng_.chance(20)) change_membership();
}

void Simulation::heal_all() {
  faulty_ = false;
  cut_.clear();
  heal_at_ = 0;
  std::vector<NodeId> down;
  for (const auto& [id, at] : restart_at_) down.push_back(id);
  for (const auto& id : down) restart(id);
}

bool Simulation::everything_applied(const std::vector<std::string>& commands, const NodeId& l) {
  const ConfState& conf = peers_.at(l)->node().conf();
  std::vector<NodeId> members = conf.voters;
  members.insert(members.end(), conf.learners.begin(), conf.learners.end());
  for (const auto& id : members) {
    auto it = peers_.find(id);
    if (it == peers_.end() || !it->second->up()) return false;
    for (const auto& c : commands)
      if (!it->second->state().has(c)) return false;
  }
  return true;
}

bool Simulation::liveness() {
  heal_all();
  const std::uint64_t bound = static_cast<std::uint64_t>(60 * base_.election_ticks + 400);
  const std::uint64_t deadline = now_ + bound * kTick;
  std::vector<std::string> commands;
  Term proposed_term = 0;
  NodeId proposed_at;
  while (!events_.empty() && now_ < deadline && out_.failure.empty()) {
    Event e = events_.top();
    events_.pop();
    handle(e);
    check();
    if (e.kind != Event::Kind::Tick) continue;
    NodeId l = leader();
    if (l.empty()) continue;
    Node& n = peers_.at(l)->node();
    // Propose once the leader has committed an entry of its term; propose again (new commands,
    // as a client would retry) if leadership moved before they were acknowledged.
    bool settled = n.term_at(n.commit_index()) == n.term();
    if (settled && (proposed_at != l || proposed_term != n.term())) {
      bool all_acked = !commands.empty() &&
                       std::all_of(commands.begin(), commands.end(),
                                   [&](const std::string& c) { return acked_.count(c) > 0; });
      if (!all_acked) {
        commands.clear();
        for (int i = 0; i < 3; ++i) {
          std::string c = fmt::format("live{}", next_command_++);
          auto r = n.propose(c);
          if (r) {
            proposals_[c] = Proposal{l, *r};
            commands.push_back(c);
          }
        }
        pump(*peers_.at(l));
      }
      if (!commands.empty()) {  // refused (e.g. a transfer in progress): try again next tick
        proposed_at = l;
        proposed_term = n.term();
      }
    }
    if (!commands.empty() && everything_applied(commands, l)) {
      // Every acknowledged proposal is applied on every live member (exactly once: a second
      // apply would have failed the state machine).
      std::vector<std::string> acked(acked_.begin(), acked_.end());
      if (!everything_applied(acked, l)) {
        out_.failure = "an acknowledged proposal is missing on a live member after healing";
        return false;
      }
      return true;
    }
  }
  if (out_.failure.empty()) {
    NodeId l = leader();
    if (opt_.verbose) describe_peers();
    out_.failure = fmt::format(
        "liveness: {} ticks after healing, {} (leader: {})", bound,
        commands.empty() ? "no leader committed an entry of its term"
                         : "fresh proposals are not applied on every member",
        l.empty() ? "none" : l);
  }
  return false;
}

void Simulation::describe_peers() const {
  for (const auto& [id, p] : peers_) {
    if (!p->up()) {
      fmt::print("  {}: down\n", id);
      continue;
    }
    NodeStatus s = p->node().status();
    fmt::print("  {}: {} term {} leader {} commit {} applied {} log {}..{} voters {} learners {}\n",
               id, to_string(s.role), s.term, s.leader, s.commit, s.applied, s.first_index,
               s.last_index, fmt::join(s.conf.voters, ","), fmt::join(s.conf.learners, ","));
    for (const auto& [peer, pr] : s.peers)
      fmt::print("      {} match {} next {} state {}\n", peer, pr.match, pr.next,
                 static_cast<int>(pr.state));
  }
}

SimOutcome Simulation::run() {
  draw_parameters();
  std::vector<NodeId> ids;
  for (std::size_t i = 1; i <= founders_; ++i) ids.push_back(fmt::format("n{}", i));
  DurableState boot = bootstrap_state(ids);
  for (const auto& id : ids) {
    DurableStore store;
    store.hard = boot.hard;
    store.log = boot.entries;
    add_peer(id, store);
  }
  Event first;
  first.kind = Event::Kind::Tick;
  first.time = kTick;
  schedule(first);
  const std::uint64_t end = static_cast<std::uint64_t>(opt_.steps) * kTick;
  while (!events_.empty() && out_.failure.empty()) {
    Event e = events_.top();
    if (e.time > end) break;
    events_.pop();
    handle(e);
    check();
  }
  if (out_.failure.empty()) liveness();
  out_.ok = out_.failure.empty();
  out_.elections = checker_.elections();
  out_.commits = checker_.max_committed();
  out_.acked = acked_.size();
  out_.conf_changes = conf_indexes_.size() > 0 ? conf_indexes_.size() - 1 : 0;
  return out_;
}

}  // namespace

SimOutcome run_simulation(const SimOptions& options) { return Simulation(options).run(); }

}  // namespace clusterpin::raft::test
