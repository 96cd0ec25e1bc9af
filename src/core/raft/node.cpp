// raft::Node: construction from durable state, the inputs (step, tick, propose), and the Ready
// bookkeeping that enforces "persist before send". Elections, replication, snapshots and
// membership live in node_election.cpp, node_replication.cpp, node_snapshot.cpp and
// node_membership.cpp; safety rules are stated in those files where they are enforced.
#include "core/raft/node.hpp"

#include <algorithm>
#include <cassert>
#include <limits>

#include <fmt/format.h>

#include "core/raft/conf_state.hpp"

namespace clusterpin::raft {

namespace {
constexpr std::size_t kAll = std::numeric_limits<std::size_t>::max();
}  // namespace

std::string_view to_string(Role role) {
  switch (role) {
    case Role::Follower: return "follower";
    case Role::PreCandidate: return "pre-candidate";
    case Role::Candidate: return "candidate";
    case Role::Leader: return "leader";
  }
  return "unknown";
}

DurableState bootstrap_state(const std::vector<NodeId>& voters) {
  DurableState d;
  ConfEntry first{ConfChange{ConfChangeType::Bootstrap, "", ""}, ConfState{voters, {}}};
  d.entries.push_back(Entry{1, 1, EntryType::ConfChange, encode_conf_entry(first)});
  // Entry 1 is identical on every founding peer, so it is committed by construction.
  d.hard = HardState{1, "", 1};
  return d;
}

// ---------------------------------------------------------------------------------------------
// Construction

Node::Node(Config config, SnapshotSource* source)
    : cfg_(std::move(config)), source_(source), rng_(cfg_.seed),
      since_snapshot_(cfg_.snapshot_interval_ticks) {}

Result<Node> Node::create(Config config, DurableState d, SnapshotSource* source) {
  if (auto s = validate(config); !s) return s.error();
  auto& ents = d.entries;
  for (std::size_t i = 1; i < ents.size(); ++i) {
    if (ents[i].index != ents[i - 1].index + 1)
      return make_error(fmt::format("raft log: entry {} follows entry {} (entries must be "
                                    "contiguous)", ents[i].index, ents[i - 1].index));
  }
  const SnapshotMeta& snap = d.snapshot;
  if (!ents.empty() && ents.back().index < snap.index) ents.clear();  // all folded into snapshot
  Index base_index = snap.index;
  Term base_term = snap.term;
  if (!ents.empty()) {
    if (ents.front().index > snap.index + 1)
      return make_error(fmt::format("raft log: first entry {} leaves a gap after snapshot {}",
                                    ents.front().index, snap.index));
    if (ents.front().index <= snap.index) {
      const Entry& at_snap = ents[snap.index - ents.front().index];
      if (snap.index > 0 && at_snap.term != snap.term)
        return make_error(fmt::format("raft log: entry {} has term {} but the snapshot says {}",
                                      snap.index, at_snap.term, snap.term));
      // The oldest stored entry becomes the base: its index and term are all we need of it.
      base_index = ents.front().index;
      base_term = ents.front().term;
      ents.erase(ents.begin());
    }
  }
  Node n(std::move(config), source);
  n.log_ = Log(base_index, base_term, std::move(ents));
  n.term_ = d.hard.term;
  n.vote_ = d.hard.vote;
  n.commit_ = std::max(d.hard.commit, snap.index);
  // The state machine may have applied entries whose commit index was never made durable (a
  // hard state that only moved the commit is not fsynced, and committed entries may be applied
  // while a Ready persists): what was applied was committed, so the commit is at least that.
  if (d.applied > n.commit_ && d.applied <= n.log_.last_index()) n.commit_ = d.applied;
  if (n.commit_ > n.log_.last_index())
    return make_error(fmt::format("raft log: commit index {} is beyond the last entry {}",
                                  n.commit_, n.log_.last_index()));
  n.applied_ = std::max(d.applied, snap.index);
  if (n.applied_ > n.commit_)
    return make_error(fmt::format("raft state: applied index {} is beyond commit index {}",
                                  n.applied_, n.commit_));
  n.handed_applied_ = n.applied_;
  n.conf_base_ = snap.conf;
  n.conf_base_index_ = snap.index;
  for (Index i = snap.index + 1; i <= n.log_.last_index(); ++i) {
    const Entry& e = n.log_.at(i);
    if (e.type != EntryType::ConfChange) continue;
    if (auto decoded = decode_conf_entry(e.data); !decoded)
      return make_error(fmt::format("raft log: entry {}: {}", i, decoded.error().message));
    n.note_conf_entry(e);
  }
  if (snap.index > 0) n.latest_snapshot_ = snap;
  n.persisted_ = n.log_.last_index();
  n.unstable_from_ = n.log_.last_index() + 1;
  n.handed_hard_ = d.hard;
  n.become_follower(n.term_, "");
  return n;
}

// ---------------------------------------------------------------------------------------------
// Inputs

Status Node::step(const Message& m) {
  if (m.cluster_id != cfg_.cluster_id) {
    ++foreign_messages_;
    last_foreign_cluster_id_ = m.cluster_id;
    return make_error(fmt::format(
        "raft: refused a {} from {} for cluster \"{}\": this peer belongs to cluster \"{}\" "
        "(a peer of another cluster must be reset and join this one to take part)",
        to_string(m.type), m.from, m.cluster_id, cfg_.cluster_id));
  }
  if (m.to != cfg_.id)
    return make_error(fmt::format("raft: refused a {} addressed to \"{}\" (this peer is \"{}\")",
                                  to_string(m.type), m.to, cfg_.id));
  if (m.from == cfg_.id || m.from.empty())
    return make_error(fmt::format("raft: refused a {} with sender \"{}\"", to_string(m.type),
                                  m.from));

  if (m.term > term_) {
    bool vote_request = m.type == MessageType::Vote || m.type == MessageType::PreVote;
    // Leader lease: while a leader is heard from, a peer that lost contact must not disrupt it
    // (Raft thesis 4.2.3). A transfer-induced election is wanted, so it passes.
    if (vote_request && !m.transfer && in_lease()) return Status();
    bool keeps_term = m.type == MessageType::PreVote ||
                      (m.type == MessageType::PreVoteResponse && !m.reject);
    if (!keeps_term) {
      bool from_leader = m.type == MessageType::Append || m.type == MessageType::Heartbeat ||
                         m.type == MessageType::Snapshot || m.type == MessageType::TimeoutNow;
      become_follower(m.term, from_leader ? m.from : NodeId());
    }
  } else if (m.term < term_) {
    if (m.type == MessageType::Append || m.type == MessageType::Heartbeat) {
      // Tell a stale leader about the newer term so it steps down.
      Message r;
      r.type = MessageType::AppendResponse;
      r.to = m.from;
      r.reject = true;
      send(std::move(r));
    } else if (m.type == MessageType::PreVote) {
      Message r;
      r.type = MessageType::PreVoteResponse;
      r.to = m.from;
      r.reject = true;
      send(std::move(r));
    }
    return Status();
  }

  switch (m.type) {
    case MessageType::PreVote:
    case MessageType::Vote: handle_vote_request(m); break;
    case MessageType::PreVoteResponse:
    case MessageType::VoteResponse: handle_vote_response(m); break;
    case MessageType::Append: handle_append(m); break;
    case MessageType::AppendResponse: handle_append_response(m); break;
    case MessageType::Heartbeat: handle_heartbeat(m); break;
    case MessageType::HeartbeatResponse: handle_heartbeat_response(m); break;
    case MessageType::Snapshot: handle_snapshot(m); break;
    case MessageType::SnapshotResponse: handle_snapshot_response(m); break;
    case MessageType::TimeoutNow: handle_timeout_now(m); break;
  }
  return Status();
}

void Node::tick() {
  if (since_snapshot_ < cfg_.snapshot_interval_ticks) ++since_snapshot_;
  if (role_ != Role::Leader) {
    ++election_elapsed_;
    if (election_elapsed_ >= randomized_timeout_ && promotable()) campaign(cfg_.pre_vote, false);
    return;
  }
  ++heartbeat_elapsed_;
  ++quorum_elapsed_;
  if (!transferee_.empty() && ++transfer_elapsed_ >= cfg_.election_ticks) transferee_.clear();
  if (cfg_.check_quorum && quorum_elapsed_ >= cfg_.lease_ticks) {
    quorum_elapsed_ = 0;
    // Check quorum: a leader cut off from a majority steps down instead of accepting proposals
    // that cannot commit (and so its lease ends before any other peer's can begin).
    if (!quorum_active()) {
      become_follower(term_, "");
      return;
    }
  }
  if (heartbeat_elapsed_ >= cfg_.heartbeat_ticks) {
    heartbeat_elapsed_ = 0;
    send_heartbeats();
    prune_removed_peers();
  }
}

Error Node::not_leader() const {
  return make_error(leader_.empty()
                        ? fmt::format("raft: {} is not the leader and knows of no leader "
                                      "(term {}); retry later", cfg_.id, term_)
                        : fmt::format("raft: {} is not the leader; the leader is {} (term {})",
                                      cfg_.id, leader_, term_));
}

Result<Index> Node::propose(std::string data) {
  if (role_ != Role::Leader) return not_leader();
  if (!transferee_.empty())
    return make_error(fmt::format("raft: leadership is being transferred to {}; retry at the new "
                                  "leader", transferee_));
  if (data.size() > cfg_.max_append_bytes) {
    // Its Append message would not fit in a peer link's frame: followers would never get it.
    return make_error(fmt::format("raft: an entry of {} bytes is larger than the {} bytes one "
                                  "can hold; split the change", data.size(), cfg_.max_append_bytes));
  }
  Index index = append_local(EntryType::Normal, std::move(data));
  send_append_all(false);
  return index;
}

// ---------------------------------------------------------------------------------------------
// Ready

void Node::send(Message m) {
  m.cluster_id = cfg_.cluster_id;
  m.from = cfg_.id;
  if (m.term == 0) m.term = term_;
  msgs_.push_back(std::move(m));
}

bool Node::has_ready() const {
  if (ready_in_progress_) return false;
  return !msgs_.empty() || !chunks_.empty() || install_.has_value() ||
         HardState{term_, vote_, commit_} != handed_hard_ ||
         unstable_from_ <= log_.last_index() || commit_ > handed_applied_ ||
         compact_through_ > 0;
}

Ready Node::ready() {
  assert(!ready_in_progress_ && "advance() the previous Ready first");
  Ready r;
  r.snapshot_chunks = std::move(chunks_);
  chunks_.clear();
  r.snapshot = install_;
  install_.reset();
  HardState hs{term_, vote_, commit_};
  // The term and vote were handed out (so persisted: a Ready is advanced only once durable) by
  // an earlier Ready.
  bool term_durable = hs.term == handed_hard_.term && hs.vote == handed_hard_.vote;
  if (hs != handed_hard_) {
    r.hard_state = hs;
    handed_hard_ = hs;
  }
  r.entries = log_.slice(unstable_from_, log_.last_index(), kAll);
  in_progress_last_ = r.entries.empty() ? 0 : r.entries.back().index;
  unstable_from_ = log_.last_index() + 1;
  r.compact_through = compact_through_;
  compact_through_ = 0;
  // Messages go out only after this Ready is durable: a vote or an acknowledgement sent before
  // its persist could be forgotten by a crash and then contradicted. A leader's appends and
  // heartbeats of a durable term are the exception (see Ready::send_now).
  for (Message& m : msgs_) {
    bool early = role_ == Role::Leader && term_durable && m.term == term_ &&
                 (m.type == MessageType::Append || m.type == MessageType::Heartbeat);
    (early ? r.send_now : r.messages).push_back(std::move(m));
  }
  msgs_.clear();
  if (commit_ > handed_applied_) {
    r.committed = log_.slice(handed_applied_ + 1, commit_, kAll);
    handed_applied_ = commit_;
    // The log is durable through persisted_ (a truncation lowered it when it happened); after a
    // snapshot install the entries follow the restore, which comes first.
    if (!r.snapshot) r.apply_early_through = std::min(commit_, persisted_);
  }
  in_progress_applied_ = handed_applied_;
  r.snapshot_due = snapshot_due();
  ready_in_progress_ = true;
  return r;
}

void Node::advance() {
  assert(ready_in_progress_ && "advance() acknowledges a Ready");
  ready_in_progress_ = false;
  persisted_ = std::max(persisted_, in_progress_last_);
  in_progress_last_ = 0;
  applied_ = std::max(applied_, in_progress_applied_);
  if (role_ == Role::Leader && maybe_commit()) send_append_all(true);
}

// ---------------------------------------------------------------------------------------------
// Observation

std::vector<Entry> Node::entries(Index from, Index to) const { return log_.slice(from, to, kAll); }

NodeStatus Node::status() const {
  NodeStatus s;
  s.id = cfg_.id;
  s.role = role_;
  s.term = term_;
  s.leader = leader_;
  s.commit = commit_;
  s.applied = applied_;
  s.first_index = log_.first_index();
  s.last_index = log_.last_index();
  s.conf = conf();
  s.snapshot_index = latest_snapshot_ ? latest_snapshot_->index : 0;
  s.transferee = transferee_;
  for (const auto& [id, pr] : progress_)
    s.peers[id] = PeerStatus{pr.match, pr.next, pr.state, contains(conf().learners, id)};
  s.foreign_messages = foreign_messages_;
  s.last_foreign_cluster_id = last_foreign_cluster_id_;
  return s;
}

}  // namespace clusterpin::raft
