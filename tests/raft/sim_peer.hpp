// A simulated peer for tests: a raft::Node over an in-memory durable store. A Ready is first
// taken (unsynced) and only later synced; crash() drops the core, the unsynced Ready and any
// staged snapshot chunks, so a restart sees exactly what was durable (like a power cut).
#pragma once

#include <optional>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "core/raft/node.hpp"
#include "core/result.hpp"

namespace clusterpin::raft::test {

// The replicated state machine of the tests: the ordered list of applied commands.
struct StateMachine {
  Index applied = 0;
  std::vector<std::pair<Index, std::string>> commands;  // Normal entries, in apply order
  std::set<std::string> seen;

  // Applies the next entry; fails on a gap or on a command applied twice.
  Status apply(const Entry& entry);
  bool has(const std::string& command) const { return seen.count(command) > 0; }
  std::string encode() const;
  static Result<StateMachine> decode(const std::string& bytes);
};

// What survives a crash.
struct DurableStore {
  HardState hard;
  SnapshotMeta snapshot;
  std::string snapshot_bytes;
  std::vector<Entry> log;
  StateMachine state;  // applied together with its index (one transaction in the real store)
};

class SimPeer final : public SnapshotSource {
 public:
  SimPeer(Config config, DurableStore durable) : cfg_(std::move(config)), durable_(std::move(durable)) {}

  const NodeId& id() const { return cfg_.id; }
  Config& config() { return cfg_; }
  bool up() const { return node_.has_value(); }
  Node& node() { return *node_; }
  const Node& node() const { return *node_; }
  const DurableStore& durable() const { return durable_; }
  const StateMachine& state() const { return durable_.state; }

  Status start();  // builds the core from the durable store
  void crash();

  // Moves the core's next Ready into the unsynced slot and applies its committed entries that
  // are durable already (Ready::apply_early_through), as RaftDriver does while the Ready
  // persists; false when there is none. take_early() reports those entries.
  bool take_ready();
  bool has_unsynced() const { return unsynced_.has_value(); }
  const Ready& unsynced() const { return *unsynced_; }

  struct SyncResult {
    std::vector<Message> messages;
    std::vector<Entry> applied;
    std::optional<SnapshotMeta> restored;
    StateMachine restored_state;  // the state right after the restore, before later entries
    bool snapshot_taken = false;
    std::string error;  // the store found the Ready inconsistent
  };
  // Makes the unsynced Ready durable, applies its committed entries, advances the core, and
  // takes a snapshot if the core asks for one.
  SyncResult sync();
  // The entries take_ready() applied (and any error), once.
  SyncResult take_early();

  Result<std::uint64_t> size(const SnapshotMeta& snapshot) override;
  Result<std::string> read(const SnapshotMeta& snapshot, std::uint64_t offset,
                           std::size_t length) override;

 private:
  std::string persist(const Ready& ready, SyncResult& out);
  void take_snapshot_if_due(SyncResult& out);

  Config cfg_;
  DurableStore durable_;
  std::optional<Node> node_;
  SyncResult early_;
  std::optional<Ready> unsynced_;
  SnapshotMeta staging_meta_;  // volatile: lost on crash
  std::string staging_;
};

}  // namespace clusterpin::raft::test
