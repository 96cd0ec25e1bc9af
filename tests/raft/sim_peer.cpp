// SimPeer: applies a Ready to the in-memory durable store in the order ready.hpp prescribes and
// reports anything a real store would have to refuse (gaps, out-of-order chunks).
#include "sim_peer.hpp"

#include <sstream>

#include <fmt/format.h>

namespace clusterpin::raft::test {

Status StateMachine::apply(const Entry& entry) {
  if (entry.index != applied + 1)
    return make_error(fmt::format("apply: entry {} after applied index {}", entry.index, applied));
  applied = entry.index;
  if (entry.type != EntryType::Normal) return Status();
  if (!seen.insert(entry.data).second)
    return make_error(fmt::format("apply: command \"{}\" applied twice (again at index {})",
                                  entry.data, entry.index));
  commands.emplace_back(entry.index, entry.data);
  return Status();
}

std::string StateMachine::encode() const {
  std::string out = fmt::format("{}\n", applied);
  for (const auto& [i, c] : commands) out += fmt::format("{} {}\n", i, c);
  return out;
}

Result<StateMachine> StateMachine::decode(const std::string& bytes) {
  std::istringstream in(bytes);
  StateMachine sm;
  if (!(in >> sm.applied)) return make_error("state machine snapshot: no applied index");
  Index i = 0;
  std::string c;
  while (in >> i >> c) {
    sm.commands.emplace_back(i, c);
    sm.seen.insert(c);
  }
  return sm;
}

Status SimPeer::start() {
  DurableState d{durable_.hard, durable_.snapshot, durable_.log, durable_.state.applied};
  auto node = Node::create(cfg_, std::move(d), this);
  if (!node) return node.error();
  node_.emplace(std::move(*node));
  return Status();
}

void SimPeer::crash() {
  node_.reset();
  unsynced_.reset();
  early_ = SyncResult{};
  staging_.clear();
  staging_meta_ = SnapshotMeta{};
}

bool SimPeer::take_ready() {
  if (!up() || unsynced_ || !node_->has_ready()) return false;
  unsynced_ = node_->ready();
  // Applied now, before the Ready is durable: a crash from here on keeps them applied.
  std::vector<Entry>& committed = unsynced_->committed;
  std::size_t n = 0;
  while (n < committed.size() && committed[n].index <= unsynced_->apply_early_through) {
    if (auto s = durable_.state.apply(committed[n]); !s) {
      early_.error = s.error().message;
      break;
    }
    early_.applied.push_back(committed[n]);
    ++n;
  }
  committed.erase(committed.begin(), committed.begin() + static_cast<std::ptrdiff_t>(n));
  return true;
}

SimPeer::SyncResult SimPeer::take_early() {
  SyncResult out = std::move(early_);
  early_ = SyncResult{};
  return out;
}

SimPeer::SyncResult SimPeer::sync() {
  SyncResult out = take_early();  // not reported yet by whoever took the Ready
  if (!unsynced_) return out;
  Ready r = std::move(*unsynced_);
  unsynced_.reset();
  out.error = persist(r, out);
  if (!out.error.empty()) return out;
  out.messages = std::move(r.messages);
  for (const Entry& e : r.committed) {
    if (auto s = durable_.state.apply(e); !s) {
      out.error = s.error().message;
      return out;
    }
    out.applied.push_back(e);
  }
  node_->advance();
  take_snapshot_if_due(out);
  return out;
}

std::string SimPeer::persist(const Ready& r, SyncResult& out) {
  for (const auto& chunk : r.snapshot_chunks) {
    if (chunk.offset == 0) {
      staging_meta_ = chunk.snapshot;
      staging_.clear();
    }
    if (!(staging_meta_ == chunk.snapshot) || staging_.size() != chunk.offset)
      return fmt::format("snapshot chunk at offset {} does not follow the {} staged bytes",
                         chunk.offset, staging_.size());
    staging_ += chunk.data;
  }
  if (r.snapshot) {
    if (!(staging_meta_ == *r.snapshot)) return "snapshot install without its staged chunks";
    auto sm = StateMachine::decode(staging_);
    if (!sm) return sm.error().message;
    if (sm->applied != r.snapshot->index)
      return fmt::format("snapshot bytes at {} but meta says {}", sm->applied, r.snapshot->index);
    durable_.state = std::move(*sm);
    out.restored_state = durable_.state;
    durable_.snapshot = *r.snapshot;
    durable_.snapshot_bytes = staging_;
    durable_.log.clear();
    out.restored = r.snapshot;
  }
  if (r.hard_state) durable_.hard = *r.hard_state;
  if (!r.entries.empty()) {
    Index first = r.entries.front().index;
    auto& log = durable_.log;
    while (!log.empty() && log.back().index >= first) log.pop_back();
    Index expected = log.empty() ? durable_.snapshot.index + 1 : log.back().index + 1;
    if (first != expected && !(log.empty() && first <= durable_.snapshot.index + 1))
      return fmt::format("entries start at {} but the stored log continues at {}", first,
                         expected);
    log.insert(log.end(), r.entries.begin(), r.entries.end());
  }
  if (r.compact_through > 0) {
    auto& log = durable_.log;
    std::size_t drop = 0;
    while (drop < log.size() && log[drop].index <= r.compact_through) ++drop;
    log.erase(log.begin(), log.begin() + static_cast<std::ptrdiff_t>(drop));
  }
  return {};
}

void SimPeer::take_snapshot_if_due(SyncResult& out) {
  if (!node_->snapshot_due()) return;
  auto meta = node_->snapshot_meta_at(durable_.state.applied);
  if (!meta) return;
  durable_.snapshot = *meta;
  durable_.snapshot_bytes = durable_.state.encode();
  if (node_->snapshot_taken(*meta)) out.snapshot_taken = true;
}

Result<std::uint64_t> SimPeer::size(const SnapshotMeta& snapshot) {
  if (!(snapshot == durable_.snapshot)) return make_error("snapshot replaced");
  return static_cast<std::uint64_t>(durable_.snapshot_bytes.size());
}

Result<std::string> SimPeer::read(const SnapshotMeta& snapshot, std::uint64_t offset,
                                  std::size_t length) {
  if (!(snapshot == durable_.snapshot)) return make_error("snapshot replaced");
  if (offset > durable_.snapshot_bytes.size()) return make_error("offset beyond the snapshot");
  return durable_.snapshot_bytes.substr(offset, length);
}

}  // namespace clusterpin::raft::test
