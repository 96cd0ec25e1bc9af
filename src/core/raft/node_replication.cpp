// raft::Node log replication. Leader side: probing and pipelined Appends, heartbeats, the
// Figure-8 commit rule, learner promotion. Follower side: accepting Appends without ever
// overwriting a committed entry, and committing only what is verified to match the leader.
#include "core/raft/node.hpp"

#include <algorithm>
#include <cassert>
#include <functional>

#include <fmt/format.h>

#include "core/raft/conf_state.hpp"

namespace clusterpin::raft {

// ---------------------------------------------------------------------------------------------
// Replication: leader side

Index Node::append_local(EntryType type, std::string data) {
  Entry e{term_, log_.last_index() + 1, type, std::move(data)};
  log_.append(e);
  if (type == EntryType::ConfChange) {
    note_conf_entry(e);
    on_conf_changed();
  }
  return e.index;
}

bool Node::send_append(const NodeId& peer, bool allow_empty) {
  auto it = progress_.find(peer);
  if (it == progress_.end()) return false;
  Progress& pr = it->second;
  if (pr.state == ReplicationState::Snapshot) return false;
  if (pr.state == ReplicationState::Probe && pr.probe_sent) return false;
  if (pr.state == ReplicationState::Replicate && pr.inflight.size() >= cfg_.max_inflight)
    return false;
  Index prev = pr.next - 1;
  auto prev_term = log_.term_at(prev);
  if (!prev_term) {  // the entries this follower needs were compacted away
    start_snapshot(peer, pr);
    return false;
  }
  Message m;
  m.type = MessageType::Append;
  m.to = peer;
  m.index = prev;
  m.log_term = *prev_term;
  m.commit = commit_;
  m.entries = log_.slice(pr.next, log_.last_index(), cfg_.max_append_entries,
                         cfg_.max_append_bytes);
  if (m.entries.empty() && !allow_empty) return false;
  if (pr.state == ReplicationState::Replicate) {
    if (!m.entries.empty()) {
      pr.next = m.entries.back().index + 1;
      pr.inflight.push_back(m.entries.back().index);
    }
  } else {
    pr.probe_sent = true;
  }
  send(std::move(m));
  return true;
}

void Node::send_append_all(bool allow_empty) {
  std::vector<NodeId> peers;
  for (const auto& [id, pr] : progress_) peers.push_back(id);
  for (const auto& id : peers) {
    bool sent = false;
    while (send_append(id, false)) {
      sent = true;
      if (progress_.at(id).state != ReplicationState::Replicate) break;
    }
    // A peer in Probe gets a probe even with nothing new: that is how its position is found.
    bool probing = progress_.at(id).state == ReplicationState::Probe;
    if (!sent && (allow_empty || probing)) send_append(id, true);
  }
}

void Node::send_heartbeats() {
  for (const auto& [id, pr] : progress_) {
    Message m;
    m.type = MessageType::Heartbeat;
    m.to = id;
    // Only what the follower is known to hold: its log may still differ beyond `match`.
    m.commit = std::min(pr.match, commit_);
    send(std::move(m));
  }
}

Index Node::own_match() const { return std::min(persisted_, log_.last_index()); }

bool Node::maybe_commit() {
  const auto& voters = conf().voters;
  if (voters.empty()) return false;
  std::vector<Index> matches;
  for (const auto& v : voters) {
    if (v == cfg_.id) {
      // Only entries durable here count: an acknowledged commit must survive this peer's crash.
      matches.push_back(own_match());
    } else {
      auto it = progress_.find(v);
      matches.push_back(it == progress_.end() ? 0 : it->second.match);
    }
  }
  std::sort(matches.begin(), matches.end(), std::greater<>());
  Index n = matches[quorum() - 1];
  // Figure-8 rule (Raft paper 5.4.2): a leader commits by counting replicas only entries of its
  // own term; earlier entries become committed indirectly, through Log Matching.
  if (n > commit_ && log_.term_at(n) == term_) {
    commit_ = n;
    return true;
  }
  return false;
}

bool Node::quorum_active() {
  std::size_t active = is_voter(cfg_.id) ? 1 : 0;
  for (auto& [id, pr] : progress_) {
    if (pr.recent_active && is_voter(id)) ++active;
    pr.recent_active = false;
  }
  return active >= quorum();
}

void Node::handle_append_response(const Message& m) {
  if (role_ != Role::Leader) return;
  auto it = progress_.find(m.from);
  if (it == progress_.end()) return;
  Progress& pr = it->second;
  pr.recent_active = true;
  if (m.reject) {
    bool stale = pr.state == ReplicationState::Snapshot ||
                 (pr.state == ReplicationState::Replicate && m.index <= pr.match) ||
                 (pr.state == ReplicationState::Probe && m.index != pr.next - 1);
    if (stale) return;
    // The follower may match at most at `hint`; our entries there with a term above the
    // follower's term at `hint` cannot match, so skip them in one round trip.
    Index probe = std::min(m.hint, m.index > 0 ? m.index - 1 : 0);
    while (probe > pr.match) {
      auto t = log_.term_at(probe);
      if (!t || *t <= m.log_term) break;
      --probe;
    }
    pr.become_probe();
    pr.next = std::max(pr.match, probe) + 1;
    send_append(m.from, true);
    return;
  }
  if (m.index > pr.match) {
    pr.match = m.index;
    pr.idle_heartbeats = 0;
    while (!pr.inflight.empty() && pr.inflight.front() <= pr.match) pr.inflight.pop_front();
    if (pr.state == ReplicationState::Probe) pr.become_replicate();
    if (pr.next <= pr.match) pr.next = pr.match + 1;
    if (maybe_commit()) send_append_all(true);
    if (m.from == transferee_ && progress_.at(m.from).match == log_.last_index()) {
      Message t;
      t.type = MessageType::TimeoutNow;
      t.to = m.from;
      send(std::move(t));
    }
  } else if (pr.state == ReplicationState::Probe) {
    pr.probe_sent = false;
  }
  while (send_append(m.from, false)) {
    if (progress_.at(m.from).state != ReplicationState::Replicate) break;
  }
  auto again = progress_.find(m.from);
  if (again != progress_.end()) maybe_promote(m.from, again->second);
}

void Node::handle_heartbeat_response(const Message& m) {
  if (role_ != Role::Leader) return;
  auto it = progress_.find(m.from);
  if (it == progress_.end()) return;
  Progress& pr = it->second;
  pr.recent_active = true;
  ++pr.idle_heartbeats;
  if (pr.state == ReplicationState::Snapshot) {
    // No chunk acknowledged for two heartbeats: the chunk or its answer was lost.
    if (pr.idle_heartbeats >= 2) {
      pr.idle_heartbeats = 0;
      pr.snapshot_sent = pr.snapshot_offset;
      send_snapshot_chunk(m.from, pr);
    }
    return;
  }
  if (pr.match >= log_.last_index()) {
    pr.idle_heartbeats = 0;
    return;
  }
  // No progress for two heartbeats: an Append or its answer was lost; find the follower again.
  if (pr.state == ReplicationState::Replicate && pr.idle_heartbeats >= 2) pr.become_probe();
  if (pr.state == ReplicationState::Probe) pr.probe_sent = false;
  bool sent = false;
  while (send_append(m.from, false)) {
    sent = true;
    if (progress_.at(m.from).state != ReplicationState::Replicate) break;
  }
  if (!sent && progress_.count(m.from) && progress_.at(m.from).state == ReplicationState::Probe)
    send_append(m.from, true);
}

void Node::maybe_promote(const NodeId& peer, const Progress& pr) {
  if (!contains(conf().learners, peer)) return;
  // Caught up: within one Append batch of the leader, and holding this leader's no-op.
  if (pr.match + cfg_.max_append_entries < log_.last_index() || pr.match < term_start_index_)
    return;
  ConfChange change{ConfChangeType::PromoteLearner, peer, ""};
  if (!check_conf_change_allowed(change)) return;
  (void)propose_conf_change(change);
}

// ---------------------------------------------------------------------------------------------
// Replication: follower side

void Node::handle_append(const Message& m) {
  if (role_ == Role::Leader) return;  // one leader per term: cannot come from a peer
  if (role_ != Role::Follower) {
    become_follower(term_, m.from);
  } else {
    leader_ = m.from;
    election_elapsed_ = 0;
  }
  Message r;
  r.type = MessageType::AppendResponse;
  r.to = m.from;
  // Everything up to commit_ already matches the leader's log (Leader Completeness).
  assert(log_.base_index() <= commit_ && "compaction never passes the commit index");
  if (m.index < commit_) {
    r.index = commit_;
    send(std::move(r));
    return;
  }
  if (!log_.matches(m.index, m.log_term)) {
    Index hint = std::min(m.index, log_.last_index());
    while (hint > log_.base_index() && *log_.term_at(hint) > m.log_term) --hint;
    r.reject = true;
    r.index = m.index;
    r.hint = hint;
    r.log_term = *log_.term_at(hint);
    send(std::move(r));
    return;
  }
  truncate_and_append(m.entries);
  Index last_new = m.index + m.entries.size();
  // Commit only what is verified to match the leader: entries past last_new may differ.
  Index commit = std::min(m.commit, last_new);
  if (commit > commit_) commit_ = commit;
  r.index = last_new;
  send(std::move(r));
}

void Node::truncate_and_append(const std::vector<Entry>& entries) {
  bool conf_changed = false;
  for (const Entry& e : entries) {
    if (e.index <= log_.last_index()) {
      if (log_.term_at(e.index) == e.term) continue;  // already have it
      // Log Matching + Leader Completeness: a committed entry never conflicts with a leader.
      assert(e.index > commit_ && "a leader never overwrites a committed entry");
      log_.truncate_from(e.index);
      if (!confs_.empty() && confs_.back().first >= e.index) conf_changed = true;
      drop_conf_entries_from(e.index);
      unstable_from_ = std::min(unstable_from_, e.index);
      persisted_ = std::min(persisted_, e.index - 1);
      in_progress_last_ = std::min(in_progress_last_, e.index - 1);
    }
    log_.append(e);
    if (e.type == EntryType::ConfChange) {
      note_conf_entry(e);
      conf_changed = true;
    }
  }
  if (conf_changed) on_conf_changed();
}

void Node::handle_heartbeat(const Message& m) {
  if (role_ == Role::Leader) return;
  if (role_ != Role::Follower) {
    become_follower(term_, m.from);
  } else {
    leader_ = m.from;
    election_elapsed_ = 0;
  }
  Index commit = std::min(m.commit, log_.last_index());
  if (commit > commit_) commit_ = commit;
  Message r;
  r.type = MessageType::HeartbeatResponse;
  r.to = m.from;
  send(std::move(r));
}

}  // namespace clusterpin::raft
