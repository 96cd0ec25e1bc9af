// RaftDriver (see raft_driver.hpp). The order of work for one Ready follows ready.hpp: stage
// snapshot chunks, install a complete snapshot, persist hard state + entries (storage thread),
// then send, apply, advance; committed entries that were durable here before the Ready are
// applied while it persists. Only one Ready is outstanding at a time; proposals that arrive while
// an fsync runs accumulate in the node and go out together in the next Ready (group commit).
#include "node/raft_driver.hpp"

#include <algorithm>
#include <cstdlib>
#include <iterator>
#include <string_view>
#include <utility>

#include <fmt/core.h>

#include "core/command.hpp"
#include "core/raft/codec.hpp"
#include "node/fault.hpp"
#include "store/snapshot_file.hpp"

namespace clusterpin::node {
namespace {


// The command of a Normal entry (nullopt for Noop and ConfChange entries).
Result<std::optional<Command>> command_of(const raft::Entry& entry) {
  if (entry.type != raft::EntryType::Normal) return std::optional<Command>();
  auto command = decode_command(entry.data);
  if (!command) return command.error();
  return std::optional<Command>(std::move(command).value());
}

// The request id a Normal entry carries (nullopt for others and for entries without one); the
// entry decoded already, so its id is well formed.
std::optional<RequestId> request_of(const raft::Entry& entry) {
  if (entry.type != raft::EntryType::Normal) return std::nullopt;
  auto split = split_request(entry.data);
  return split ? split->id : std::nullopt;
}

// The state.db changes one entry makes; `command` is the entry's, decoded once by the caller.
Result<std::vector<store::StateOp>> state_ops_of(const raft::Entry& entry,
                                                  const std::optional<Command>& command) {
  std::vector<store::StateOp> ops;
  if (entry.type == raft::EntryType::ConfChange) {
    auto conf = raft::decode_conf_entry(entry.data);
    if (!conf) return conf.error();
    const raft::ConfChange& c = conf->change;
    if (c.type == raft::ConfChangeType::AddLearner && !c.context.empty()) {
      ops.push_back(store::StateOp::put_peer(c.node, c.context));
    } else if (c.type == raft::ConfChangeType::RemoveNode) {
      ops.push_back(store::StateOp::delete_peer(c.node));
    }
    return ops;
  }
  if (!command) return ops;  // Noop
  if (const auto* peer = std::get_if<PeerAddresses>(&*command)) {
    ops.push_back(store::StateOp::put_peer(peer->peer, peer_record_text(*peer)));
    return ops;
  }
  for (const PinsetOp& op : std::get<std::vector<PinsetOp>>(*command)) {
    std::string key(as_chars(op.pin.cid.bytes()));
    if (op.kind == PinsetOp::Kind::pin) {
      ops.push_back(store::StateOp::put_pin(std::move(key), encode_pin(op.pin)));
    } else {
      ops.push_back(store::StateOp::delete_pin(std::move(key)));
    }
    ops.back().if_version = op.if_version;
  }
  return ops;
}

[[noreturn]] void fail_stop(const std::string& what) {
  fmt::print(stderr, "clusterpin daemon: fatal: {}; stopping (nothing unsafe was acknowledged)\n",
             what);
  std::fflush(stderr);
  std::_Exit(70);
}

}  // namespace

Result<std::unique_ptr<RaftDriver>> RaftDriver::create(
    asio::io_context& io, raft::Config config, raft::DurableState durable,
    std::unique_ptr<store::LogWriter> writer, store::StateDb& state,
    std::filesystem::path data_dir, std::chrono::milliseconds tick, Callbacks callbacks) {
  std::unique_ptr<RaftDriver> driver(
      new RaftDriver(io, std::move(writer), state, std::move(data_dir), tick, std::move(callbacks)));
  if (durable.snapshot.index > 0) {
    driver->latest_snapshot_ = durable.snapshot;
  }
  // state.db behind raft.db's snapshot: the log no longer holds the entries between (they were
  // compacted), and the node would take the snapshot's index as applied and never apply them.
  // It happens only when state.db lost writes or was replaced by an older copy; the snapshot
  // file is state.db as of that index, so it is restored from it and the log replays the rest.
  if (durable.snapshot.index > 0 && durable.applied < durable.snapshot.index) {
    const raft::Index at = durable.snapshot.index;
    const std::filesystem::path file = driver->snapshot_path(at);
    const std::string why = fmt::format(
        "{} is at index {}, behind raft.db's snapshot at index {} (it lost writes or was "
        "replaced by an older copy)",
        state.file().string(), durable.applied, at);
    std::error_code ec;
    if (!std::filesystem::exists(file, ec))
      return make_error(fmt::format(
          "{}, and the snapshot's file {} is missing: this peer cannot rebuild its state; reset "
          "it (clusterpin state cleanup) and let it catch up from the cluster",
          why, file.string()));
    auto restored =
        state.restore_snapshot(file, store::AppliedPosition{at, durable.snapshot.term});
    if (!restored)
      return make_error(fmt::format("{}; restoring it from {} failed: {}", why, file.string(),
                                    restored.error().message));
    fmt::print(stderr, "clusterpin daemon: {}: restored it from {}\n", why, file.string());
    durable.applied = at;
  }
  // Files of snapshots replaced before the last stop (kept for a transfer then) go now.
  // (The error_code forms throughout: a folder that cannot be read is not worth an exception.)
  std::error_code ec;
  for (std::filesystem::directory_iterator it(driver->data_dir_ / "snapshots", ec), end;
       !ec && it != end; it.increment(ec)) {
    const std::filesystem::path& file = it->path();
    const std::string name = file.filename().string();
    bool latest = driver->latest_snapshot_ && file == driver->snapshot_path(driver->latest_snapshot_->index);
    if (name.starts_with("state-") && name.ends_with(".db") && !latest) {
      std::error_code ignored;
      std::filesystem::remove(file, ignored);
    }
  }
  driver->last_durable_hard_ = durable.hard;
  auto node = raft::Node::create(std::move(config), std::move(durable), driver.get());
  if (!node) return node.error();
  driver->node_ = std::make_unique<raft::Node>(std::move(node).value());
  return driver;
}

RaftDriver::RaftDriver(asio::io_context& io, std::unique_ptr<store::LogWriter> writer,
                       store::StateDb& state, std::filesystem::path data_dir,
                       std::chrono::milliseconds tick, Callbacks callbacks)
    : io_(io), writer_(std::move(writer)), state_(state), data_dir_(std::move(data_dir)),
      tick_(tick), callbacks_(std::move(callbacks)), ticker_(io) {}

RaftDriver::~RaftDriver() {
  *alive_ = false;
  stop();
}

void RaftDriver::start() {
  running_ = true;
  schedule_tick();
  pump();
}

void RaftDriver::stop() {
  running_ = false;
  ticker_.cancel();
  fail_all_pending("the peer is shutting down");
}

void RaftDriver::schedule_tick() {
  if (!running_) return;
  ticker_.expires_after(tick_);
  ticker_.async_wait([this, alive = alive_](const std::error_code& ec) {
    if (ec || !*alive || !running_) return;
    // Applied entries are committed to state.db at least once a tick (see StateDb::apply_batch).
    if (auto s = state_.commit(); !s) fail_stop(s.error().message);
    node_->tick();
    pump();
    schedule_tick();
  });
}

void RaftDriver::step(const raft::Message& message) {
  if (!running_) return;
  (void)node_->step(message);  // foreign or stale messages are counted by the node
  pump();
}

RaftDriver::Done RaftDriver::add_pending(raft::Index index, std::chrono::milliseconds timeout,
                                         Done done) {
  auto timer = std::make_unique<asio::steady_timer>(io_, timeout);
  const std::uint64_t seq = ++pending_seq_;
  timer->async_wait([this, index, seq, alive = alive_](const std::error_code& ec) {
    if (ec || !*alive) return;
    auto it = pending_.find(index);
    // A timer that fired before it was cancelled must not fail a later proposal at the index.
    if (it == pending_.end() || it->second.seq != seq) return;
    Done d = std::move(it->second.done);
    pending_.erase(it);
    d(make_error("timed out waiting for the entry to commit (is a majority of peers up?)"));
  });
  // An index still held by an earlier proposal was overwritten by another leader's entry, and
  // this one took it again: the earlier one can no longer commit, and its caller must hear so.
  Done earlier;
  if (auto old = pending_.find(index); old != pending_.end()) earlier = std::move(old->second.done);
  pending_[index] = Pending{node_->term(), seq, std::move(done), std::move(timer)};
  if (earlier) earlier(make_error("leadership changed before the entry committed; retry"));
  return {};
}

void RaftDriver::propose(std::string data, std::chrono::milliseconds timeout, Done done) {
  auto index = node_->propose(std::move(data));
  if (!index) return done(index.error());
  add_pending(*index, timeout, std::move(done));
  pump();
}

void RaftDriver::propose_conf_change(raft::ConfChange change, std::chrono::milliseconds timeout,
                                     Done done) {
  auto index = node_->propose_conf_change(std::move(change));
  if (!index) return done(index.error());
  add_pending(*index, timeout, std::move(done));
  pump();
}

Status RaftDriver::transfer_leadership(const raft::NodeId& target) {
  Status s = node_->transfer_leadership(target);
  pump();
  return s;
}

void RaftDriver::pump() {
  drop_retired();  // once their transfers ended (or this peer stopped leading)
  if (persisting_ || !node_->has_ready()) return;
  raft::Ready ready = node_->ready();
  // Followers persist these entries while this peer does (see raft::Ready::send_now).
  for (const raft::Message& m : ready.send_now) {
    if (callbacks_.send) callbacks_.send(m);
  }
  store::LogBatch batch;
  if (auto s = receive_snapshot_chunks(ready); !s) fail_stop(s.error().message);
  if (ready.snapshot) {
    // The node has installed the snapshot in memory already, so state.db must follow it: a
    // failed restore (I/O, a snapshot of another cluster) stops the peer. Open readers (a
    // listing in progress) do not fail it: the restore ends them and their listings report it.
    if (auto s = install_received_snapshot(*ready.snapshot, batch); !s) {
      fail_stop(s.error().message);
    }
  }
  batch.hard_state = ready.hard_state;
  batch.entries = ready.entries;
  if (ready.compact_through > 0) batch.compact_through = ready.compact_through;
  // A hard state that only moved the commit index need not be made durable before going on
  // (commit is recomputed from a quorum after a restart): skipping its fsync removes one of the
  // two fsyncs per round trip. It is still written with the next batch that must be durable.
  if (batch.hard_state && batch.entries.empty() && !batch.snapshot && !batch.compact_through &&
      last_durable_hard_ && batch.hard_state->term == last_durable_hard_->term &&
      batch.hard_state->vote == last_durable_hard_->vote) {
    batch.hard_state.reset();
  }
  if (batch.empty()) return after_persist(std::move(ready));
  if (batch.hard_state) last_durable_hard_ = batch.hard_state;
  persisting_ = true;
  auto shared_ready = std::make_shared<raft::Ready>(std::move(ready));
  writer_->submit(std::move(batch), [this, alive = alive_, shared_ready](Status s) {
    // The storage thread: hop back to the io thread. LogWriter stops the process on failure.
    asio::post(io_, [this, alive, shared_ready, s] {
      if (!*alive) return;
      if (!s.ok()) fail_stop(s.error().message);
      persisting_ = false;
      after_persist(std::move(*shared_ready));
    });
  });
  // Committed entries already durable here are applied (and their proposers answered) while
  // the new entries persist, instead of after: the completion above is posted, so it runs
  // after this. A leader's entries are all such; a follower's that came in this Ready wait.
  std::vector<raft::Entry>& committed = shared_ready->committed;
  auto early = std::find_if(committed.begin(), committed.end(), [&](const raft::Entry& e) {
    return e.index > shared_ready->apply_early_through;
  });
  if (early == committed.begin()) return;
  std::vector<raft::Entry> now(std::make_move_iterator(committed.begin()),
                               std::make_move_iterator(early));
  committed.erase(committed.begin(), early);
  if (auto s = apply_entries(now); !s) fail_stop(s.error().message);
  for (const raft::Entry& e : now) complete(e.index, e.term);
}

void RaftDriver::after_persist(raft::Ready ready) {
  for (const raft::Message& m : ready.messages) {
    if (callbacks_.send) callbacks_.send(m);
  }
  if (auto s = apply_entries(ready.committed); !s) fail_stop(s.error().message);
  node_->advance();
  for (const raft::Entry& e : ready.committed) complete(e.index, e.term);
  if (ready.snapshot_due && std::chrono::steady_clock::now() >= snapshot_retry_at_) {
    if (auto s = take_snapshot(); !s) {
      // Due stays true at every Ready until one succeeds: without a pause a lasting failure
      // (a full disk, a read-only folder) meant a whole copy of state.db per Ready.
      snapshot_backoff_ = std::clamp(2 * snapshot_backoff_, kSnapshotBackoffMin, kSnapshotBackoffMax);
      snapshot_retry_at_ = std::chrono::steady_clock::now() + snapshot_backoff_;
      fmt::print(stderr, "clusterpin daemon: snapshot failed: {}; trying again in {} s\n", s.error().message,
                 std::chrono::duration_cast<std::chrono::seconds>(snapshot_backoff_).count());
    } else {
      snapshot_backoff_ = {};
    }
  }
  // Proposals whose index was overwritten by another leader's entry can no longer commit.
  if (node_->role() != raft::Role::Leader) {
    for (auto it = pending_.begin(); it != pending_.end();) {
      auto term = node_->term_at(it->first);
      if (term && *term != it->second.term && it->first <= node_->last_index()) {
        Done d = std::move(it->second.done);
        it = pending_.erase(it);
        d(make_error("leadership changed before the entry committed; retry"));
      } else {
        ++it;
      }
    }
  }
  pump();
}

// All committed entries of a Ready go into state.db in one transaction: one commit instead of
// one per entry (measured: per-entry commits were 92% of the io thread at 256 proposers).
Status RaftDriver::apply_entries(const std::vector<raft::Entry>& entries) {
  if (entries.empty()) return {};
  std::vector<store::StateDb::Entry> batch;
  batch.reserve(entries.size());
  // Decoded once for state.db and the applied callback (decoding twice was 2% of a follower).
  std::vector<std::optional<Command>> commands;
  commands.reserve(entries.size());
  for (const raft::Entry& e : entries) {
    auto command = command_of(e);
    if (!command) return make_error(fmt::format("entry {}: {}", e.index, command.error().message));
    auto ops = state_ops_of(e, *command);
    if (!ops) return make_error(fmt::format("entry {}: {}", e.index, ops.error().message));
    batch.push_back({e.index, e.term, std::move(ops).value(), request_of(e)});
    commands.push_back(std::move(command).value());
  }
  auto applied = state_.apply_batch(batch);
  if (!applied) return applied.error();
  applied_ = std::max(applied_, entries.back().index);
  for (std::size_t i = 0; i < entries.size(); ++i) {
    if ((*applied)[i].now && callbacks_.applied)
      callbacks_.applied(entries[i], commands[i], (*applied)[i]);
  }
  return {};
}

void RaftDriver::complete(raft::Index index, raft::Term term) {
  auto it = pending_.find(index);
  if (it == pending_.end()) return;
  Done d = std::move(it->second.done);
  bool same = it->second.term == term;
  pending_.erase(it);
  if (same) {
    d({});
  } else {
    d(make_error("leadership changed before the entry committed; retry"));
  }
}

void RaftDriver::fail_all_pending(const std::string& why) {
  auto pending = std::move(pending_);
  pending_.clear();
  for (auto& [index, p] : pending) p.done(make_error(why));
}

std::filesystem::path RaftDriver::snapshot_file(const std::filesystem::path& data_dir,
                                                raft::Index index) {
  return data_dir / "snapshots" / fmt::format("state-{:020}.db", index);
}

Status RaftDriver::snapshots_folder() {
  std::error_code ec;
  std::filesystem::create_directories(data_dir_ / "snapshots", ec);
  if (ec)
    return make_error(fmt::format("{}: cannot create the folder: {}",
                                  (data_dir_ / "snapshots").string(), ec.message()));
  return {};
}

Status RaftDriver::take_snapshot() {
  raft::Index applied = node_->applied_index();
  if (applied_ > applied) return {};  // see the header
  if (applied == 0 || (latest_snapshot_ && latest_snapshot_->index >= applied)) return {};
  auto meta = node_->snapshot_meta_at(applied);
  if (!meta) return meta.error();
  if (Status s = snapshots_folder(); !s) return s;
  auto taken = state_.create_snapshot(snapshot_path(applied));
  if (!taken) return taken.error();
  // The snapshot is made at state.db's applied index, which equals the node's applied index
  // because both advance together on this thread; a file at another one is not recorded.
  if (taken->applied.index != meta->index || taken->applied.term != meta->term) {
    std::error_code ec;
    std::filesystem::remove(snapshot_path(applied), ec);
    return make_error(fmt::format(
        "the snapshot of state.db holds entry {} (term {}) where the Raft node applied entry {} "
        "(term {}); not recorded",
        taken->applied.index, taken->applied.term, meta->index, meta->term));
  }
  store::LogBatch batch;
  batch.snapshot = *meta;
  // Until raft.db records the new one, the node still sends the previous snapshot: it stays
  // readable (retiring_), then is retired like any replaced snapshot.
  retiring_ = latest_snapshot_;
  latest_snapshot_ = *meta;
  node_->snapshot_started(meta->index);
  writer_->submit(std::move(batch), [this, alive = alive_, meta = *meta](Status s) {
    asio::post(io_, [this, alive, meta, s] {
      if (!*alive || !s.ok()) return;  // a failed raft.db write stops the peer (LogWriter)
      (void)node_->snapshot_taken(meta);
      retire(std::exchange(retiring_, std::nullopt));
      pump();
    });
  });
  return {};
}

Status RaftDriver::receive_snapshot_chunks(const raft::Ready& ready) {
  for (const raft::SnapshotChunk& chunk : ready.snapshot_chunks) {
    auto staging = data_dir_ / "snapshots" / "incoming.db";
    if (Status s = snapshots_folder(); !s) return s;
    if (chunk.offset == 0) {
      // With the journal a kill inside mark_snapshot may have left, which the next open of
      // the new file would roll back into it.
      if (Status s = store::remove_database_file(staging); !s) return s;
    }
    auto written = store::append_snapshot_chunk(staging, chunk.offset, chunk.data);
    if (!written) return written.error();
    snapshot_bytes_received_ += chunk.data.size();
  }
  return {};
}


Status RaftDriver::install_received_snapshot(const raft::SnapshotMeta& meta,
                                             store::LogBatch& batch) {
  auto staging = data_dir_ / "snapshots" / "incoming.db";
  // The mark lets a start after a crash before raft.db's record (below, in `batch`) record it.
  if (auto s = store::StateDb::mark_snapshot(staging, meta); !s) return s;
  if (auto s = store::sync_file(staging); !s) return s;
  if (callbacks_.before_restore) {
    if (auto s = callbacks_.before_restore(); !s) return s;
  }
  auto restored = state_.restore_snapshot(staging, store::AppliedPosition{meta.index, meta.term});
  // The crash test of a stop between this swap and raft.db's record of the snapshot.
  if (restored) fault_point("after-snapshot-restore");
  if (!restored) return restored.error();
  std::error_code ec;
  std::filesystem::rename(staging, snapshot_path(meta.index), ec);
  if (ec) return make_error(fmt::format("cannot keep snapshot: {}", ec.message()));
  // raft.db records the snapshot next: the file must be there after a power loss too.
  if (auto s = store::sync_parent_directory(snapshot_path(meta.index)); !s) return s;
  retire(std::exchange(latest_snapshot_, meta));
  batch.snapshot = meta;
  fail_all_pending("the state was replaced by a snapshot from the leader; retry");
  if (callbacks_.state_replaced) callbacks_.state_replaced(meta.index);
  return {};
}

void RaftDriver::retire(const std::optional<raft::SnapshotMeta>& previous) {
  if (!previous || (latest_snapshot_ && previous->index == latest_snapshot_->index)) return;
  retired_.push_back(*previous);
  drop_retired();
}

void RaftDriver::drop_retired() {
  if (retired_.empty()) return;
  std::vector<raft::Index> sending = node_->snapshots_being_sent();
  std::erase_if(retired_, [&](const raft::SnapshotMeta& old) {
    if (std::find(sending.begin(), sending.end(), old.index) != sending.end()) return false;
    std::error_code ec;
    std::filesystem::remove(snapshot_path(old.index), ec);
    return true;
  });
}

bool RaftDriver::kept(const raft::SnapshotMeta& snapshot) const {
  if (latest_snapshot_ && latest_snapshot_->index == snapshot.index) return true;
  if (retiring_ && retiring_->index == snapshot.index) return true;
  return std::any_of(retired_.begin(), retired_.end(),
                     [&](const raft::SnapshotMeta& old) { return old.index == snapshot.index; });
}

Result<std::uint64_t> RaftDriver::size(const raft::SnapshotMeta& snapshot) {
  if (!kept(snapshot)) return make_error("that snapshot is no longer kept");
  std::error_code ec;
  auto n = std::filesystem::file_size(snapshot_path(snapshot.index), ec);
  if (ec) return make_error(ec.message());
  return static_cast<std::uint64_t>(n);
}

Result<std::string> RaftDriver::read(const raft::SnapshotMeta& snapshot, std::uint64_t offset,
                                     std::size_t length) {
  if (!kept(snapshot)) return make_error("that snapshot is no longer kept");
  return store::read_snapshot_chunk(snapshot_path(snapshot.index), offset, length);
}

}  // namespace clusterpin::node
