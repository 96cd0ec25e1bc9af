// RaftDriver runs one raft::Node on the daemon's io_context: it ticks it, makes each Ready
// durable through the LogWriter (storage thread, group commit) before sending its messages,
// applies committed entries to state.db (effect and applied index in one transaction), takes and
// installs snapshots, and completes proposals once their entry is applied (or superseded).
// Everything here runs on the io_context thread; only LogWriter's fsync runs elsewhere.
#pragma once

#include <algorithm>
#include <chrono>
#include <filesystem>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include <asio.hpp>

#include "core/command.hpp"
#include "core/raft/node.hpp"
#include "core/result.hpp"
#include "store/log_writer.hpp"
#include "store/state_db.hpp"

namespace clusterpin::node {

class RaftDriver : public raft::SnapshotSource {
 public:
  struct Callbacks {
    std::function<void(const raft::Message&)> send;
    // After an entry's effect is in state.db (pin changes, peer addresses, membership).
    // `command`: the entry's decoded command (nullopt for Noop and ConfChange entries).
    // `effects`, per state operation of the entry (one per pinset op of a pinset command):
    // whether it added a CID the pinset did not hold before, and the pin it replaced or removed.
    std::function<void(const raft::Entry&, const std::optional<Command>& command,
                       const store::StateDb::Applied& effects)>
        applied;
    // Before a snapshot from the leader replaces the whole state: what must be durable before
    // state.db loses pins (the pin tracker's records); its failure stops the install.
    std::function<Status()> before_restore;
    // After a snapshot from the leader replaced the whole state; the snapshot's index.
    std::function<void(raft::Index)> state_replaced;
  };
  using Done = std::function<void(Status)>;

  // Builds the node from what was durable; the driver is the node's snapshot source.
  static Result<std::unique_ptr<RaftDriver>> create(
      asio::io_context& io, raft::Config config, raft::DurableState durable,
      std::unique_ptr<store::LogWriter> writer, store::StateDb& state,
      std::filesystem::path data_dir, std::chrono::milliseconds tick, Callbacks callbacks);
  ~RaftDriver() override;

  void start();
  // Stops ticking; waits for nothing (LogWriter's destructor flushes what was submitted).
  void stop();

  void step(const raft::Message& message);
  // Proposes `data`; `done` runs once: OK when the entry is applied here, an error when this
  // peer is not the leader, loses leadership before the entry commits, or `timeout` passes.
  void propose(std::string data, std::chrono::milliseconds timeout, Done done);
  void propose_conf_change(raft::ConfChange change, std::chrono::milliseconds timeout, Done done);
  Status transfer_leadership(const raft::NodeId& target);

  // Bytes of snapshots received from leaders so far (a joiner's catch-up progress).
  std::uint64_t snapshot_bytes_received() const { return snapshot_bytes_received_; }
  // Takes a snapshot now (also done automatically when the log grows past snapshot_threshold).
  // Skipped (OK) while entries applied early are not yet acknowledged to the node: the node
  // could not describe a snapshot at state.db's applied index then.
  Status take_snapshot();
  // The last entry applied to state.db: ahead of node().applied_index() while a Ready whose
  // committed entries were applied early persists (see raft::Ready::apply_early_through).
  raft::Index applied_index() const { return std::max(applied_, node_->applied_index()); }

  // Where the snapshot of state.db at `index` lives in a data folder.
  static std::filesystem::path snapshot_file(const std::filesystem::path& data_dir, raft::Index index);

  const raft::Node& node() const { return *node_; }
  raft::Node& node() { return *node_; }

  // raft::SnapshotSource: the latest snapshot file, read in chunks for a lagging follower.
  Result<std::uint64_t> size(const raft::SnapshotMeta& snapshot) override;
  Result<std::string> read(const raft::SnapshotMeta& snapshot, std::uint64_t offset,
                           std::size_t length) override;

 private:
  Status snapshots_folder();  // creates data_dir/snapshots when missing
  RaftDriver(asio::io_context& io, std::unique_ptr<store::LogWriter> writer, store::StateDb& state,
             std::filesystem::path data_dir, std::chrono::milliseconds tick, Callbacks callbacks);

  struct Pending {
    raft::Term term;
    std::uint64_t seq;  // which proposal at this index its timer belongs to
    Done done;
    std::unique_ptr<asio::steady_timer> timer;
  };
  std::uint64_t pending_seq_ = 0;

  void schedule_tick();
  void pump();
  void after_persist(raft::Ready ready);
  Status receive_snapshot_chunks(const raft::Ready& ready);
  Status install_received_snapshot(const raft::SnapshotMeta& meta, store::LogBatch& batch);
  Status apply_entries(const std::vector<raft::Entry>& entries);
  void complete(raft::Index index, raft::Term term);
  void fail_all_pending(const std::string& why);
  Done add_pending(raft::Index index, std::chrono::milliseconds timeout, Done done);
  std::filesystem::path snapshot_path(raft::Index index) const { return snapshot_file(data_dir_, index); }
  // A failed snapshot is tried again after a pause that doubles from 1 s to 5 min.
  static constexpr std::chrono::steady_clock::duration kSnapshotBackoffMin = std::chrono::seconds(1);
  static constexpr std::chrono::steady_clock::duration kSnapshotBackoffMax = std::chrono::minutes(5);
  std::chrono::steady_clock::duration snapshot_backoff_{};
  std::chrono::steady_clock::time_point snapshot_retry_at_{};

  asio::io_context& io_;
  std::unique_ptr<raft::Node> node_;
  std::unique_ptr<store::LogWriter> writer_;
  store::StateDb& state_;
  std::filesystem::path data_dir_;
  std::chrono::milliseconds tick_;
  Callbacks callbacks_;
  asio::steady_timer ticker_;
  bool running_ = false;
  bool persisting_ = false;  // a Ready is with the storage thread
  // The last entry applied to state.db by this driver: past node_->applied_index() only while
  // entries applied early are not yet acknowledged with advance().
  raft::Index applied_ = 0;
  std::map<raft::Index, Pending> pending_;
  std::optional<raft::SnapshotMeta> latest_snapshot_;
  // Snapshots replaced by a newer one whose files are kept while the leader still streams them
  // to a follower: a transfer of a large snapshot that outlasts snapshot_interval would otherwise
  // restart from offset 0 with each new snapshot, and never end on a slow link.
  std::vector<raft::SnapshotMeta> retired_;
  std::optional<raft::SnapshotMeta> retiring_;  // replaced; raft.db has not recorded the newer yet
  void retire(const std::optional<raft::SnapshotMeta>& previous);
  void drop_retired();
  bool kept(const raft::SnapshotMeta& snapshot) const;
  std::uint64_t snapshot_bytes_received_ = 0;
  std::optional<raft::HardState> last_durable_hard_;  // the newest hard state sent to the writer
  std::shared_ptr<bool> alive_ = std::make_shared<bool>(true);
};

}  // namespace clusterpin::node
