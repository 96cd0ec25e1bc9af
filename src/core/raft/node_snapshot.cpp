// raft::Node snapshots: a leader streams the application's snapshot in windowed chunks to a
// follower whose needed entries were compacted; a follower stages chunks in order and installs
// the complete snapshot through Ready; the application reports snapshots it took for compaction.
#include "core/raft/node.hpp"

#include <algorithm>
#include <cassert>

#include <fmt/format.h>

#include "core/raft/conf_state.hpp"

namespace clusterpin::raft {

// ---------------------------------------------------------------------------------------------
// Snapshots

void Node::start_snapshot(const NodeId& peer, Progress& pr) {
  if (!latest_snapshot_ || source_ == nullptr) return;  // nothing to send; retried later
  pr.state = ReplicationState::Snapshot;
  pr.inflight.clear();
  pr.probe_sent = false;
  pr.idle_heartbeats = 0;
  pr.snapshot = *latest_snapshot_;
  pr.snapshot_offset = 0;
  pr.snapshot_sent = 0;
  send_snapshot_chunk(peer, pr);
}

void Node::send_snapshot_chunk(const NodeId& peer, Progress& pr) {
  // Chunks go out in a window of max_inflight past the acknowledged offset; the follower takes
  // them only in order, and any gap makes it answer with the offset it needs.
  auto size = source_->size(pr.snapshot);
  if (!size && latest_snapshot_ && *latest_snapshot_ != pr.snapshot) {
    pr.snapshot = *latest_snapshot_;  // replaced by a newer snapshot: start that one
    pr.snapshot_offset = 0;
    pr.snapshot_sent = 0;
    size = source_->size(pr.snapshot);
  }
  if (!size) {
    pr.become_probe();
    return;
  }
  const std::uint64_t window = cfg_.snapshot_chunk_size * cfg_.max_inflight;
  if (pr.snapshot_sent < pr.snapshot_offset) pr.snapshot_sent = pr.snapshot_offset;
  bool first = true;
  while (pr.snapshot_sent < pr.snapshot_offset + window && (first || pr.snapshot_sent < *size)) {
    first = false;  // an empty snapshot still needs its one (empty, final) chunk
    auto data = source_->read(pr.snapshot, pr.snapshot_sent, cfg_.snapshot_chunk_size);
    if (!data) {
      pr.become_probe();
      return;
    }
    Message m;
    m.type = MessageType::Snapshot;
    m.to = peer;
    m.snapshot = pr.snapshot;
    m.offset = pr.snapshot_sent;
    bool done = pr.snapshot_sent + data->size() >= *size;
    m.done = done;
    pr.snapshot_sent += data->size();
    m.data = std::move(*data);
    send(std::move(m));
    if (done) break;
  }
}

void Node::handle_snapshot(const Message& m) {
  if (role_ == Role::Leader) return;
  if (role_ != Role::Follower) {
    become_follower(term_, m.from);
  } else {
    leader_ = m.from;
    election_elapsed_ = 0;
  }
  if (install_) return;  // one install per Ready: the leader resends after this one is done
  const SnapshotMeta& meta = m.snapshot;
  Message r;
  r.type = MessageType::SnapshotResponse;
  r.to = m.from;
  r.snapshot = meta;
  if (meta.index <= commit_ || log_.matches(meta.index, meta.term)) {
    // Nothing to install: our log already holds this prefix (committed, or matching there).
    if (meta.index > commit_) commit_ = meta.index;
    receiving_.reset();
    r.done = true;
    r.index = std::max(commit_, meta.index);
    send(std::move(r));
    return;
  }
  if (m.offset == 0) {
    receiving_ = meta;
    received_bytes_ = 0;
  }
  bool same = receiving_ && *receiving_ == meta;
  if (!same || m.offset != received_bytes_) {
    // A duplicate of a chunk we hold is acknowledged; a gap or an unknown snapshot is refused
    // with the offset we need.
    r.reject = !same || m.offset > received_bytes_;
    r.offset = same ? received_bytes_ : 0;
    send(std::move(r));
    return;
  }
  received_bytes_ += m.data.size();
  chunks_.push_back(SnapshotChunk{meta, m.offset, m.data});
  if (m.done) {
    install_snapshot(meta);
    r.done = true;
    r.index = meta.index;
  } else {
    r.offset = received_bytes_;
  }
  send(std::move(r));
}

void Node::install_snapshot(const SnapshotMeta& meta) {
  assert(meta.index > commit_ && "a snapshot is installed only when it is ahead of us");
  log_.reset(meta.index, meta.term);
  commit_ = meta.index;
  handed_applied_ = meta.index;
  unstable_from_ = meta.index + 1;
  persisted_ = meta.index;
  in_progress_last_ = std::min(in_progress_last_, meta.index);
  conf_base_ = meta.conf;
  conf_base_index_ = meta.index;
  confs_.clear();
  latest_snapshot_ = meta;
  install_ = meta;
  receiving_.reset();
  received_bytes_ = 0;
  on_conf_changed();
}

void Node::handle_snapshot_response(const Message& m) {
  if (role_ != Role::Leader) return;
  auto it = progress_.find(m.from);
  if (it == progress_.end()) return;
  Progress& pr = it->second;
  pr.recent_active = true;
  if (m.done) {
    if (m.index > pr.match) pr.match = m.index;
    if (pr.next <= pr.match) pr.next = pr.match + 1;
    if (pr.state == ReplicationState::Snapshot) {
      pr.become_probe();
      send_append(m.from, true);
    }
    if (maybe_commit()) send_append_all(true);
    auto again = progress_.find(m.from);
    if (again != progress_.end()) maybe_promote(m.from, again->second);
    return;
  }
  if (pr.state != ReplicationState::Snapshot || m.snapshot != pr.snapshot) return;
  if (m.reject) {  // a gap or a restart: resend from what the follower holds
    if (m.offset == 0 && latest_snapshot_ && *latest_snapshot_ != pr.snapshot) {
      pr.snapshot = *latest_snapshot_;  // starting over anyway: with the newest snapshot
    }
    pr.snapshot_offset = m.offset;
    pr.snapshot_sent = m.offset;
    pr.idle_heartbeats = 0;
    send_snapshot_chunk(m.from, pr);
  } else if (m.offset > pr.snapshot_offset) {
    pr.snapshot_offset = m.offset;
    pr.idle_heartbeats = 0;
    send_snapshot_chunk(m.from, pr);
  }
}

std::vector<Index> Node::snapshots_being_sent() const {
  std::vector<Index> out;
  if (role_ != Role::Leader) return out;
  for (const auto& [id, pr] : progress_) {
    if (pr.state == ReplicationState::Snapshot) out.push_back(pr.snapshot.index);
  }
  return out;
}

Result<SnapshotMeta> Node::snapshot_meta_at(Index index) const {
  if (index > applied_ || index < log_.base_index() || index < conf_base_index_)
    return make_error(fmt::format("raft: cannot describe a snapshot at index {} (applied {}, "
                                  "log starts after {})", index, applied_, log_.base_index()));
  SnapshotMeta meta;
  meta.index = index;
  meta.term = *log_.term_at(index);
  meta.conf = conf_at(index);
  return meta;
}

Status Node::snapshot_taken(const SnapshotMeta& meta) {
  if (meta.index >= snapshot_recording_) snapshot_recording_ = 0;
  if (meta.index > applied_)
    return make_error(fmt::format("raft: snapshot at index {} is beyond the applied index {}",
                                  meta.index, applied_));
  if (latest_snapshot_ && meta.index <= latest_snapshot_->index) return Status();
  if (meta.index >= conf_base_index_) {
    conf_base_ = conf_at(meta.index);
    conf_base_index_ = meta.index;
    while (!confs_.empty() && confs_.front().first <= meta.index) confs_.erase(confs_.begin());
  }
  latest_snapshot_ = meta;
  since_snapshot_ = 0;
  Index through = meta.index > cfg_.trailing_logs ? meta.index - cfg_.trailing_logs : 0;
  if (through > log_.base_index()) {
    log_.compact_through(through);
    compact_through_ = through;
  }
  return Status();
}

bool Node::snapshot_due() const {
  if (snapshot_recording_ != 0) return false;
  Index last = latest_snapshot_ ? latest_snapshot_->index : 0;
  return cfg_.snapshot_threshold > 0 && applied_ >= last + cfg_.snapshot_threshold &&
         since_snapshot_ >= cfg_.snapshot_interval_ticks;
}

}  // namespace clusterpin::raft
