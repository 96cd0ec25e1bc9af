// raft::Node membership: single-server changes (add learner, promote, remove) that take effect
// when appended (Raft thesis 4.1), one uncommitted change at a time, and only after the leader
// committed an entry of its own term.
#include "core/raft/node.hpp"

#include <algorithm>
#include <cassert>

#include <fmt/format.h>

#include "core/raft/conf_state.hpp"

namespace clusterpin::raft {

Result<Index> Node::propose_conf_change(ConfChange change) {
  if (role_ != Role::Leader) return not_leader();
  if (auto s = check_conf_change_allowed(change); !s) return s.error();
  if (change.type == ConfChangeType::RemoveNode && change.node == cfg_.id) {
    // A leader does not remove itself: it hands leadership to the most up-to-date voter, and
    // the removal is proposed again at the new leader.
    NodeId best;
    Index best_match = 0;
    for (const auto& v : conf().voters) {
      if (v == cfg_.id) continue;
      Index match = progress_.count(v) ? progress_.at(v).match : 0;
      if (best.empty() || match > best_match) {
        best = v;
        best_match = match;
      }
    }
    if (auto s = transfer_leadership(best); !s) return s.error();
    return make_error(fmt::format("raft: {} is transferring leadership to {} before it can be "
                                  "removed; propose the removal again at the new leader",
                                  cfg_.id, best));
  }
  ConfEntry entry{change, apply_change(conf(), change)};
  Index index = append_local(EntryType::ConfChange, encode_conf_entry(entry));
  send_append_all(false);
  return index;
}

// ---------------------------------------------------------------------------------------------
// Membership

const ConfState& Node::conf() const { return confs_.empty() ? conf_base_ : confs_.back().second; }

ConfState Node::conf_at(Index index) const {
  ConfState c = conf_base_;
  for (const auto& [i, s] : confs_) {
    if (i > index) break;
    c = s;
  }
  return c;
}

bool Node::is_voter(const NodeId& id) const { return contains(conf().voters, id); }

Progress Node::fresh_progress() const {
  Progress pr;
  pr.next = log_.last_index() + 1;
  pr.recent_active = true;
  return pr;
}

void Node::restart_replication(const NodeId& id) {
  if (role_ != Role::Leader || !contains(conf().learners, id)) return;
  auto it = progress_.find(id);
  if (it == progress_.end()) return;
  it->second = fresh_progress();
  send_append(id, true);
}

Index Node::member_since(const NodeId& id) const {
  Index since = is_member(conf_base_, id) ? conf_base_index_ : 0;
  for (const auto& [index, c] : confs_) {
    if (!is_member(c, id)) {
      since = 0;
    } else if (since == 0) {
      since = index;
    }
  }
  return since;
}

void Node::note_conf_entry(const Entry& entry) {
  auto decoded = decode_conf_entry(entry.data);
  // Conf entries are written by leaders through encode_conf_entry; a bad one is a corrupt log.
  assert(decoded.ok() && "a ConfChange entry must decode");
  if (!decoded) return;
  confs_.emplace_back(entry.index, decoded->conf);
}

void Node::drop_conf_entries_from(Index index) {
  while (!confs_.empty() && confs_.back().first >= index) confs_.pop_back();
}

Status Node::check_conf_change_allowed(const ConfChange& change) const {
  if (!transferee_.empty())
    return make_error(fmt::format("raft: leadership is being transferred to {}", transferee_));
  // Single-server changes are safe only if the leader has committed an entry of its own term
  // first (Ongaro, raft-dev 2015: the one-change-at-a-time bug).
  if (commit_ < term_start_index_)
    return make_error("raft: the leader has not committed an entry of its term yet; retry");
  if (!confs_.empty() && confs_.back().first > commit_)
    return make_error(fmt::format("raft: the membership change at index {} is not committed "
                                  "yet; one change at a time", confs_.back().first));
  const ConfState& c = conf();
  bool voter = contains(c.voters, change.node);
  bool learner = contains(c.learners, change.node);
  switch (change.type) {
    case ConfChangeType::Bootstrap:
      return make_error("raft: a bootstrap configuration cannot be proposed");
    case ConfChangeType::AddLearner:
      if (change.node.empty()) return make_error("raft: add learner: empty peer id");
      if (voter || learner)
        return make_error(fmt::format("raft: add learner: {} is already a member", change.node));
      return Status();
    case ConfChangeType::PromoteLearner:
      if (!learner)
        return make_error(fmt::format("raft: promote: {} is not a learner", change.node));
      return Status();
    case ConfChangeType::RemoveNode:
      if (!voter && !learner)
        return make_error(fmt::format("raft: remove: {} is not a member", change.node));
      if (voter && c.voters.size() == 1)
        return make_error(fmt::format("raft: remove: {} is the only voter", change.node));
      return Status();
  }
  return Status();
}

void Node::on_conf_changed() {
  if (role_ != Role::Leader) return;
  if (!is_voter(cfg_.id)) {  // never proposed by this core; kept for a log from elsewhere
    become_follower(term_, "");
    return;
  }
  const ConfState& c = conf();
  // The configuration this change was made from: a leader comes here from append_local, right
  // after noting the new entry.
  const ConfState& prev = confs_.size() >= 2 ? confs_[confs_.size() - 2].second : conf_base_;
  auto add = [&](const NodeId& id) {
    if (id == cfg_.id) return;
    auto it = progress_.find(id);
    if (it != progress_.end()) {
      if (is_member(prev, id)) return;
      // Kept since this id's removal (see prune_removed_peers), and now a member again: it may
      // be a wiped peer under its old identity, with an empty log. Its old match, pending
      // Appends, snapshot transfer and farewell count describe a log it may not hold; since
      // rejections never take next below match, it would be probed at match + 1 forever.
      progress_.erase(it);
    }
    progress_.emplace(id, fresh_progress());
  };
  for (const auto& v : c.voters) add(v);
  for (const auto& l : c.learners) add(l);
  if (!transferee_.empty() && !is_voter(transferee_)) transferee_.clear();
  if (maybe_commit()) send_append_all(true);
}

void Node::prune_removed_peers() {
  // A removed peer keeps receiving the log (never counting towards a quorum) until a heartbeat
  // carried the commit of its removal to it, so it can learn it was removed: the heartbeat just
  // sent carries min(match, commit), which reaches the removal once the peer holds it. A peer
  // that never catches up (stopped, cut off) is dropped after a bounded number of heartbeats.
  // An id added back meanwhile gets a fresh record instead (on_conf_changed).
  const Index removal = confs_.empty() ? conf_base_index_ : confs_.back().first;
  if (removal > commit_) return;
  const int patience = 10 * std::max(1, cfg_.election_ticks / std::max(1, cfg_.heartbeat_ticks));
  const ConfState& c = conf();
  for (auto it = progress_.begin(); it != progress_.end();) {
    Progress& pr = it->second;
    if (!is_member(c, it->first) &&
        (pr.match >= removal || ++pr.farewell_heartbeats > patience)) {
      it = progress_.erase(it);
    } else {
      ++it;
    }
  }
}

}  // namespace clusterpin::raft
