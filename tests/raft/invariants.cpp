// InvariantChecker: registries of everything persisted, committed and applied across the whole
// run, compared with each peer's view incrementally so a check after every event stays cheap.
#include "invariants.hpp"

#include <fmt/format.h>

namespace clusterpin::raft::test {

void InvariantChecker::fail(std::string message) {
  if (failure_.empty()) failure_ = std::move(message);
}

std::optional<Term> InvariantChecker::committed_term(Index index) const {
  if (index >= committed_.size()) return std::nullopt;
  return committed_[index];
}

void InvariantChecker::on_start(const NodeId& id) { lives_[id] = Lifetime{}; }

void InvariantChecker::on_wipe(const NodeId& id) {
  on_start(id);
  durable_applied_.erase(id);
}

void InvariantChecker::on_ready(const SimPeer& peer, const Ready& ready) {
  const Node& node = peer.node();
  for (const Entry& e : ready.entries) {
    // Log matching, checked per entry: one (index, term) names one entry, and that entry always
    // follows the same term. By induction, equal (index, term) means equal prefixes.
    std::optional<Term> prev = e.index > 1 ? node.term_at(e.index - 1) : std::optional<Term>(0);
    auto [it, inserted] = entries_.try_emplace({e.index, e.term}, EntryRecord{e.type, e.data, prev});
    if (inserted) continue;
    EntryRecord& rec = it->second;
    if (rec.type != e.type || rec.data != e.data)
      fail(fmt::format("log matching: {} persists a different entry at index {} term {}",
                       peer.id(), e.index, e.term));
    if (prev && rec.prev_term && *prev != *rec.prev_term)
      fail(fmt::format("log matching: {} has term {} before index {} term {}, others have {}",
                       peer.id(), *prev, e.index, e.term, *rec.prev_term));
    if (!rec.prev_term) rec.prev_term = prev;
  }
}

void InvariantChecker::on_sync(const SimPeer& peer, const SimPeer::SyncResult& result) {
  if (!result.error.empty()) fail(fmt::format("store of {}: {}", peer.id(), result.error));
  // The Ready that restored may apply committed entries after the snapshot's: compare the state
  // as the snapshot left it.
  if (result.restored) check_restore(peer.id(), *result.restored, result.restored_state);
  for (const Entry& e : result.applied) {
    // State machine safety: every peer applies the same entry at a given index.
    auto [it, inserted] = applied_.try_emplace(e.index, e);
    if (!inserted && !(it->second == e))
      fail(fmt::format("state machine safety: {} applied term {} \"{}\" at index {}, another "
                       "peer applied term {} \"{}\"", peer.id(), e.term, e.data, e.index,
                       it->second.term, it->second.data));
  }
}

void InvariantChecker::check_restore(const NodeId& id, const SnapshotMeta& meta,
                                     const StateMachine& sm) {
  // The restored state must hold exactly the commands applied elsewhere up to meta.index.
  std::vector<std::pair<Index, std::string>> expected;
  for (const auto& [i, e] : applied_) {
    if (i > meta.index) break;
    if (e.type == EntryType::Normal) expected.emplace_back(i, e.data);
  }
  if (expected != sm.commands)
    fail(fmt::format("state machine safety: {} restored a snapshot at {} holding {} commands, "
                     "peers applied {} commands through that index",
                     id, meta.index, sm.commands.size(), expected.size()));
}

void InvariantChecker::check(const std::vector<const SimPeer*>& peers) {
  for (const SimPeer* p : peers) {
    auto& applied = durable_applied_[p->id()];
    // The applied index lives in the durable state machine: it never goes back, crash or not.
    if (p->state().applied < applied)
      fail(fmt::format("applied index of {} went back from {} to {}", p->id(), applied,
                       p->state().applied));
    applied = p->state().applied;
    if (p->up()) check_peer(*p);
  }
}

void InvariantChecker::check_peer(const SimPeer& peer) {
  const Node& node = peer.node();
  Lifetime& life = lives_[peer.id()];
  if (node.commit_index() < life.last_commit)
    fail(fmt::format("commit index of {} went back from {} to {}", peer.id(), life.last_commit,
                     node.commit_index()));
  life.last_commit = node.commit_index();
  register_commits(peer.id(), node, life);
  if (node.role() == Role::Leader) {
    check_leader(peer.id(), node, life);
  } else {
    life.leader_term = 0;
  }
}

void InvariantChecker::register_commits(const NodeId& id, const Node& node, Lifetime& life) {
  for (Index i = life.registered_commit + 1; i <= node.commit_index(); ++i) {
    auto t = node.term_at(i);
    if (!t) continue;  // folded into a snapshot this peer installed
    if (i >= committed_.size()) {
      committed_.resize(i + 1, 0);
      committed_in_.resize(i + 1, 0);
    }
    if (committed_[i] != 0 && committed_[i] != *t)
      fail(fmt::format("committed entry changed: {} committed term {} at index {}, earlier "
                       "term {} was committed there", id, *t, i, committed_[i]));
    if (committed_[i] == 0) {
      committed_[i] = *t;
      // The first peer to see an index committed is its leader, checked right after the event
      // that committed it: its term is the term the entry was committed in.
      committed_in_[i] = node.term();
    }
  }
  life.registered_commit = std::max(life.registered_commit, node.commit_index());
}

void InvariantChecker::check_leader(const NodeId& id, const Node& node, Lifetime& life) {
  Term term = node.term();
  auto [it, inserted] = leaders_.try_emplace(term, id);
  if (!inserted && it->second != id)
    fail(fmt::format("election safety: {} and {} both lead term {}", it->second, id, term));
  if (life.leader_term != term) {
    // Leader completeness: a new leader holds every entry committed in an earlier term. (A
    // leader elected late, after later terms began, need not hold what they committed.)
    for (Index i = node.first_index(); i < committed_.size(); ++i) {
      if (committed_[i] == 0 || committed_in_[i] >= term) continue;
      if (node.term_at(i) != committed_[i])
        fail(fmt::format("leader completeness: {} leads term {} without the entry committed at "
                         "index {} (term {})", id, term, i, committed_[i]));
    }
  } else {
    // Leaders append only: nothing up to the last index seen is removed or replaced.
    if (node.last_index() < life.leader_last ||
        (life.leader_last >= node.first_index() &&
         node.term_at(life.leader_last) != life.leader_last_term))
      fail(fmt::format("leader append-only: {} (term {}) lost or replaced entry {}", id, term,
                       life.leader_last));
  }
  life.leader_term = term;
  life.leader_last = node.last_index();
  life.leader_last_term = node.term_at(node.last_index()).value_or(0);
}

}  // namespace clusterpin::raft::test
