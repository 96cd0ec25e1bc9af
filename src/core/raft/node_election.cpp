// raft::Node elections: randomized timeouts, pre-vote, leases (check quorum), voting with the
// election restriction, leadership transfer (TimeoutNow) and becoming leader with a no-op.
#include "core/raft/node.hpp"

#include <algorithm>
#include <cassert>

#include <fmt/format.h>

#include "core/raft/conf_state.hpp"

namespace clusterpin::raft {

Status Node::transfer_leadership(const NodeId& target) {
  if (role_ != Role::Leader) return not_leader();
  if (target == cfg_.id) return Status();
  if (!is_voter(target))
    return make_error(fmt::format("raft: cannot transfer leadership to \"{}\": not a voter",
                                  target));
  transferee_ = target;
  transfer_elapsed_ = 0;
  Progress& pr = progress_.at(target);
  if (pr.match == log_.last_index()) {
    Message m;
    m.type = MessageType::TimeoutNow;
    m.to = target;
    send(std::move(m));
  } else {
    send_append(target, true);
  }
  return Status();
}

// ---------------------------------------------------------------------------------------------
// Elections

void Node::reset_timers() {
  election_elapsed_ = 0;
  heartbeat_elapsed_ = 0;
  quorum_elapsed_ = 0;
  // Randomized in [election, 2*election) so that split votes are rare and short.
  randomized_timeout_ =
      cfg_.election_ticks + static_cast<int>(rng_.below(static_cast<std::uint64_t>(cfg_.election_ticks)));
}

bool Node::in_lease() const {
  if (!cfg_.check_quorum) return false;
  if (role_ == Role::Leader) return true;  // it steps down itself when it loses its quorum
  return !leader_.empty() && election_elapsed_ < cfg_.election_ticks;
}

void Node::become_follower(Term term, const NodeId& leader) {
  if (term != term_) {
    term_ = term;
    vote_.clear();
  }
  role_ = Role::Follower;
  leader_ = leader;
  votes_.clear();
  progress_.clear();
  transferee_.clear();
  reset_timers();
}

void Node::become_candidate(bool pre) {
  if (!pre) {
    ++term_;
    vote_ = cfg_.id;
  }
  role_ = pre ? Role::PreCandidate : Role::Candidate;
  leader_.clear();
  votes_.clear();
  progress_.clear();
  transferee_.clear();
  reset_timers();
}

void Node::campaign(bool pre, bool transfer) {
  become_candidate(pre);
  votes_[cfg_.id] = true;
  if (votes_.size() >= quorum()) {  // a one-voter cluster
    if (pre) {
      campaign(false, transfer);
    } else {
      become_leader();
    }
    return;
  }
  for (const auto& v : conf().voters) {
    if (v == cfg_.id) continue;
    Message m;
    m.type = pre ? MessageType::PreVote : MessageType::Vote;
    m.to = v;
    m.term = pre ? term_ + 1 : term_;
    m.index = log_.last_index();
    m.log_term = log_.last_term();
    m.transfer = transfer;
    send(std::move(m));
  }
}

void Node::handle_vote_request(const Message& m) {
  bool pre = m.type == MessageType::PreVote;
  bool free_to_vote = vote_ == m.from || (vote_.empty() && leader_.empty()) ||
                      (pre && m.term > term_);
  // Election restriction (Raft paper 5.4.1): only a candidate whose log is at least as up to
  // date as ours gets our vote, so every leader holds every committed entry.
  bool granted = free_to_vote && log_.is_behind_or_equal(m.index, m.log_term);
  Message r;
  r.type = pre ? MessageType::PreVoteResponse : MessageType::VoteResponse;
  r.to = m.from;
  r.reject = !granted;
  r.term = granted ? m.term : term_;
  if (granted && !pre) {
    vote_ = m.from;
    election_elapsed_ = 0;
  }
  send(std::move(r));
}

void Node::handle_vote_response(const Message& m) {
  bool pre = role_ == Role::PreCandidate;
  if (pre) {
    if (m.type != MessageType::PreVoteResponse) return;
    if (!m.reject && m.term != term_ + 1) return;  // an answer to an older round
  } else if (role_ == Role::Candidate) {
    if (m.type != MessageType::VoteResponse) return;
  } else {
    return;
  }
  if (!is_voter(m.from)) return;
  votes_[m.from] = !m.reject;
  std::size_t granted = 0;
  for (const auto& [id, yes] : votes_) granted += yes ? 1 : 0;
  std::size_t rejected = votes_.size() - granted;
  if (granted >= quorum()) {
    if (pre) {
      campaign(false, false);
    } else {
      become_leader();
    }
  } else if (rejected >= quorum()) {
    become_follower(term_, "");
  }
}

void Node::handle_timeout_now(const Message& m) {
  (void)m;
  if (promotable() && role_ != Role::Leader) campaign(false, true);
}

void Node::become_leader() {
  assert(role_ == Role::Candidate && "only a candidate that won its election leads");
  role_ = Role::Leader;
  leader_ = cfg_.id;
  votes_.clear();
  transferee_.clear();
  reset_timers();
  progress_.clear();
  on_conf_changed();  // creates the progress of every other member
  // The no-op lets this leader commit entries of earlier terms (see maybe_commit) and tells
  // when it may accept a configuration change.
  term_start_index_ = append_local(EntryType::Noop, "");
  send_append_all(true);
}

}  // namespace clusterpin::raft
