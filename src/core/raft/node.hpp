// raft::Node: one peer's Raft state machine, pure and single-threaded. Inputs are step(message),
// tick() and the propose/transfer/snapshot calls; the only output is a Ready (see ready.hpp),
// acknowledged with advance(). No sockets, clocks, threads or storage: time is ticks, randomness
// comes from Config::seed, snapshot bytes come through SnapshotSource.
// Membership follows the Raft thesis (4.1): a peer uses the latest configuration in its log,
// committed or not, and a leader allows one uncommitted change at a time.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "core/raft/codec.hpp"
#include "core/raft/config.hpp"
#include "core/raft/log.hpp"
#include "core/raft/message.hpp"
#include "core/raft/progress.hpp"
#include "core/raft/ready.hpp"
#include "core/raft/rng.hpp"
#include "core/raft/snapshot_source.hpp"
#include "core/raft/types.hpp"
#include "core/result.hpp"

namespace clusterpin::raft {

enum class Role : std::uint8_t { Follower, PreCandidate, Candidate, Leader };
std::string_view to_string(Role role);

// The durable starting point of a new cluster: entry 1 holds the initial voters. Every founding
// peer must start from the same list (same order).
DurableState bootstrap_state(const std::vector<NodeId>& voters);

struct PeerStatus {
  Index match = 0;
  Index next = 0;
  ReplicationState state = ReplicationState::Probe;
  bool learner = false;
};

struct NodeStatus {
  NodeId id;
  Role role = Role::Follower;
  Term term = 0;
  NodeId leader;
  Index commit = 0;
  Index applied = 0;
  Index first_index = 0;
  Index last_index = 0;
  ConfState conf;
  Index snapshot_index = 0;
  NodeId transferee;
  std::map<NodeId, PeerStatus> peers;  // leader only
  std::uint64_t foreign_messages = 0;  // refused: another cluster id
  std::string last_foreign_cluster_id;
};

class Node {
 public:
  // Builds a peer from what was durable. `source` may be null when this peer never leads a
  // snapshot transfer (then lagging followers wait); it must outlive the node.
  static Result<Node> create(Config config, DurableState durable, SnapshotSource* source);

  // Feeds a message from the network. Refuses (and counts) messages of another cluster or for
  // another peer; everything else is handled or silently ignored as stale.
  Status step(const Message& message);
  void tick();

  // Leader only. Returns the index the entry will have if it commits; a follower's error names
  // the leader when it knows one.
  Result<Index> propose(std::string data);
  // One uncommitted change at a time, and only once this leader committed an entry of its term.
  // Removing the leader itself starts a leadership transfer and returns an error asking to
  // propose the removal again at the new leader. Learners are promoted by the leader itself.
  Result<Index> propose_conf_change(ConfChange change);
  // Hands leadership to a caught-up voter (TimeoutNow); proposals are refused meanwhile. The
  // attempt is abandoned after election_ticks.
  Status transfer_leadership(const NodeId& target);

  bool has_ready() const;  // false while a Ready is out (until advance())
  Ready ready();  // at most one Ready at a time: call advance() before the next
  // Acknowledges the Ready: all of it is durable, its committed entries applied and, if it
  // carried a snapshot, the state machine restored from it.
  void advance();

  // Describes the state machine after applying through `index` (<= applied) so the application
  // can store it with the snapshot it takes there.
  Result<SnapshotMeta> snapshot_meta_at(Index index) const;
  // Leader: the indexes of the snapshots it is streaming to followers now (a snapshot file the
  // application replaced must stay readable until its transfers end).
  std::vector<Index> snapshots_being_sent() const;
  // The application started recording a snapshot (its copy exists; its record is not durable
  // yet): no other is due until snapshot_taken, so a Ready that applies entries meanwhile does
  // not start a second one (which replaced the first one's file while it was being recorded).
  void snapshot_started(Index index) { snapshot_recording_ = index; }
  // A snapshot described by `meta` is durable: the log before it may be compacted, keeping
  // trailing_logs entries for followers that are only a little behind.
  Status snapshot_taken(const SnapshotMeta& meta);
  bool snapshot_due() const;

  const NodeId& id() const { return cfg_.id; }
  Role role() const { return role_; }
  Term term() const { return term_; }
  const NodeId& leader() const { return leader_; }
  // A leader, or a follower (learners too) that heard from its leader within the election
  // timeout. A learner never campaigns, so its leader() stays set after the leader goes quiet.
  bool hears_leader() const {
    return role_ == Role::Leader ||
           (role_ == Role::Follower && !leader_.empty() && election_elapsed_ < cfg_.election_ticks);
  }
  Index commit_index() const { return commit_; }
  Index applied_index() const { return applied_; }
  Index last_index() const { return log_.last_index(); }
  Index first_index() const { return log_.first_index(); }
  std::optional<Term> term_at(Index index) const { return log_.term_at(index); }
  // Entries [from, to] still in memory (for inspection and tests).
  std::vector<Entry> entries(Index from, Index to) const;
  const ConfState& conf() const;
  // The configuration in effect at `index`: that of the latest ConfChange entry at or before it.
  ConfState conf_at(Index index) const;
  bool is_voter(const NodeId& id) const;
  // Leader: a learner that asks to join again may have lost its log (a wiped folder under the
  // same identity, a join abandoned and retried after `state cleanup`). What this leader knew of
  // it (its match, a snapshot under way) may describe a log it no longer holds, and since
  // rejections never take `next` below `match` it would be probed at match + 1 for ever: it is
  // forgotten, and the learner probed from the end of the log as a new one. Nothing otherwise.
  void restart_replication(const NodeId& id);
  // The index of the configuration that last made `id` a member (voter or learner), or 0 when
  // it is none now; the base configuration's index when that entry was compacted into it.
  Index member_since(const NodeId& id) const;
  NodeStatus status() const;

 private:
  Node(Config config, SnapshotSource* source);

  // Roles.
  Progress fresh_progress() const;  // a member the leader knows nothing of yet
  void become_follower(Term term, const NodeId& leader);
  void become_candidate(bool pre);
  void become_leader();
  void campaign(bool pre, bool transfer);
  void reset_timers();
  bool promotable() const { return is_voter(cfg_.id); }
  bool in_lease() const;

  // Message handlers, one per kind.
  void handle_vote_request(const Message& m);
  void handle_vote_response(const Message& m);
  void handle_append(const Message& m);
  void handle_append_response(const Message& m);
  void handle_heartbeat(const Message& m);
  void handle_heartbeat_response(const Message& m);
  void handle_snapshot(const Message& m);
  void handle_snapshot_response(const Message& m);
  void handle_timeout_now(const Message& m);

  // Leader replication.
  Index append_local(EntryType type, std::string data);
  bool send_append(const NodeId& peer, bool allow_empty);
  void send_append_all(bool allow_empty);
  void send_heartbeats();
  void start_snapshot(const NodeId& peer, Progress& pr);
  void send_snapshot_chunk(const NodeId& peer, Progress& pr);
  bool maybe_commit();
  void maybe_promote(const NodeId& peer, const Progress& pr);
  bool quorum_active();
  Index own_match() const;
  Status check_conf_change_allowed(const ConfChange& change) const;

  // Log and configuration.
  void truncate_and_append(const std::vector<Entry>& entries);
  void note_conf_entry(const Entry& entry);
  void drop_conf_entries_from(Index index);
  void on_conf_changed();
  void prune_removed_peers();
  void install_snapshot(const SnapshotMeta& meta);

  void send(Message m);
  Error not_leader() const;  // names the leader when one is known
  std::size_t quorum() const { return conf().voters.size() / 2 + 1; }

  Config cfg_;
  SnapshotSource* source_ = nullptr;
  Rng rng_{1};
  Log log_;

  // Persistent state (HardState).
  Term term_ = 0;
  NodeId vote_;
  Index commit_ = 0;

  Role role_ = Role::Follower;
  NodeId leader_;

  // Configuration: conf_base_ holds at conf_base_index_; confs_ are the ConfChange entries after.
  ConfState conf_base_;
  Index conf_base_index_ = 0;
  std::vector<std::pair<Index, ConfState>> confs_;

  // Timers (ticks).
  int election_elapsed_ = 0;
  int heartbeat_elapsed_ = 0;
  int quorum_elapsed_ = 0;
  int randomized_timeout_ = 0;
  int transfer_elapsed_ = 0;
  int since_snapshot_ = 0;  // ticks since the last snapshot_taken (saturates)

  std::map<NodeId, bool> votes_;               // candidate: who answered, and how
  std::map<NodeId, Progress> progress_;        // leader: every member but this peer
  NodeId transferee_;                          // leader: leadership transfer in progress
  Index term_start_index_ = 0;                 // leader: index of this term's no-op entry

  // Snapshots.
  std::optional<SnapshotMeta> latest_snapshot_;  // the newest snapshot the application holds
  Index snapshot_recording_ = 0;  // snapshot_started and not taken yet (0: none)
  std::optional<SnapshotMeta> receiving_;        // follower: snapshot being received
  std::uint64_t received_bytes_ = 0;

  // Ready bookkeeping.
  Index applied_ = 0;          // acknowledged by advance()
  Index handed_applied_ = 0;   // highest committed entry handed out in a Ready
  Index unstable_from_ = 1;    // first entry not yet handed out for persisting
  Index persisted_ = 0;        // the durable log equals the in-memory log through here
  bool ready_in_progress_ = false;
  Index in_progress_last_ = 0;  // last entry of the Ready in progress (lowered by truncation)
  Index in_progress_applied_ = 0;
  HardState handed_hard_;      // the last hard state handed out
  std::vector<Message> msgs_;
  std::vector<SnapshotChunk> chunks_;
  std::optional<SnapshotMeta> install_;
  Index compact_through_ = 0;

  std::uint64_t foreign_messages_ = 0;
  std::string last_foreign_cluster_id_;
};

}  // namespace clusterpin::raft
