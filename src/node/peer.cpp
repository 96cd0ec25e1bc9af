// Peer (see peer.hpp). RPC methods between peers:
//   "raft"    one-way: an encoded raft::Message
//   "removed" one-way: u64 commit index; the sender's committed configuration at it lacks the
//             receiver, which leaves if that index is past the one it joined at
//   "commit"  request: entry data; the leader proposes it and answers the index once applied
//   "join"    request: PeerAddresses of a new peer; the leader adds it as a learner and answers
//             the cluster id and every member's address record
//   "id"      request: this peer's PeerInfo as JSON
//   "metrics" one-way: metrics the sender publishes (see monitor.hpp)
//   "graph"   request: the peers this one is connected to and its IPFS daemon's links (JSON)
//   "status"  request: CIDs; answers the statuses (JSON) of as many of the first as fit in
//             kMaxPinListBytes, and is asked again for the rest (see pin_lists.hpp)
//   "recover_all", "sync"  request: run here; answer the CIDs touched that fit in
//             kMaxPinListBytes and the count of the others
//   "leaving" request: nothing (from the lowest CID) or a CID; answers this peer's CIDs after it
//             that left the pinset and are still being unpinned here, those that fit in
//             kMaxPinListBytes, and where to ask on (encode_leaving)
#include "node/peer.hpp"
#include "node/pin_lists.hpp"

#include <sodium.h>

#include <algorithm>
#include <chrono>
#include <set>

#include <fmt/core.h>
#include <fmt/ranges.h>
#include <rapidjson/document.h>
#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>

#include "core/duration.hpp"
#include "core/encoding.hpp"
#include "core/json_text.hpp"
#include "core/multiaddr.hpp"
#include "core/raft/codec.hpp"
#include "core/raft/conf_state.hpp"
#include "core/version.hpp"
#include "core/wire.hpp"
#include "node/backup.hpp"
#include "node/fault.hpp"
#include "store/snapshot_file.hpp"

namespace clusterpin::node {
namespace {

using namespace std::chrono;

constexpr milliseconds kTick{100};

int ticks(nanoseconds d) {
  return raft::ticks_from(duration_cast<milliseconds>(d), kTick);
}

std::string as_string(ByteView b) { return {reinterpret_cast<const char*>(b.data()), b.size()}; }
ByteView as_view(std::string_view s) { return as_bytes(s); }

}  // namespace

std::string derive_cluster_id(std::vector<std::string> voters) {
  std::sort(voters.begin(), voters.end());
  std::string text = "clusterpin cluster";
  for (const auto& v : voters) text += " " + v;
  unsigned char digest[crypto_hash_sha256_BYTES];
  crypto_hash_sha256(digest, reinterpret_cast<const unsigned char*>(text.data()), text.size());
  return hex_encode(ByteView(digest, 16));
}

namespace {

std::string encode_u64(std::uint64_t v) {
  WireWriter w;
  w.u64(v);
  return w.take();
}

void json_strings(rapidjson::Writer<rapidjson::StringBuffer>& w, const std::vector<std::string>& v) {
  w.StartArray();
  for (const auto& s : v) w.String(s.c_str(), static_cast<rapidjson::SizeType>(s.size()));
  w.EndArray();
}

}  // namespace

std::string peer_info_to_json(const PeerInfo& info) {
  rapidjson::StringBuffer buffer;
  rapidjson::Writer<rapidjson::StringBuffer> w(buffer);
  w.StartObject();
  w.Key("id"); w.String(info.id.c_str());
  w.Key("addresses"); json_strings(w, info.addresses);
  w.Key("cluster_peers"); json_strings(w, info.cluster_peers);
  w.Key("cluster_peers_addresses"); json_strings(w, info.cluster_peers_addresses);
  w.Key("version"); w.String(info.version.c_str());
  w.Key("commit"); w.String("");
  w.Key("rpc_protocol_version"); w.String("/clusterpin/0.1/rpc");
  w.Key("error"); w.String(info.error.c_str());
  w.Key("ipfs");
  w.StartObject();
  // Left out when unknown, as IPFS Cluster does (omitempty): Go clients refuse an empty peer id.
  if (!info.ipfs_id.empty()) {
    w.Key("id"); w.String(info.ipfs_id.c_str());
  }
  w.Key("addresses"); json_strings(w, info.ipfs_addresses);
  w.Key("error"); w.String(info.ipfs_error.c_str());
  w.EndObject();
  w.Key("peername"); w.String(info.peername.c_str());
  w.Key("raft_leader"); w.String(info.leader.c_str());
  w.EndObject();
  return std::string(buffer.GetString(), buffer.GetSize());
}

static PeerInfo peer_info_from_json(std::string_view json, const std::string& id) {
  PeerInfo info;
  info.id = id;
  rapidjson::Document doc;
  doc.Parse(json.data(), json.size());
  if (doc.HasParseError() || !doc.IsObject()) {
    info.error = "bad answer to id";
    return info;
  }
  auto strings = [&](const char* key) {
    std::vector<std::string> out;
    if (doc.HasMember(key) && doc[key].IsArray()) {
      for (const auto& v : doc[key].GetArray()) {
        if (v.IsString()) out.emplace_back(v.GetString());
      }
    }
    return out;
  };
  // Each member's own answer, not this peer's: versions differ during a rolling upgrade.
  auto text = [&](const char* key, std::string& out) {
    if (doc.HasMember(key) && doc[key].IsString()) out = doc[key].GetString();
  };
  text("peername", info.peername);
  text("version", info.version);
  text("raft_leader", info.leader);
  text("error", info.error);
  if (doc.HasMember("ipfs") && doc["ipfs"].IsObject()) {
    const auto& ipfs = doc["ipfs"];
    if (ipfs.HasMember("id") && ipfs["id"].IsString()) info.ipfs_id = ipfs["id"].GetString();
    if (ipfs.HasMember("error") && ipfs["error"].IsString()) info.ipfs_error = ipfs["error"].GetString();
    if (ipfs.HasMember("addresses") && ipfs["addresses"].IsArray()) {
      for (const auto& a : ipfs["addresses"].GetArray()) {
        if (a.IsString()) info.ipfs_addresses.emplace_back(a.GetString());
      }
    }
  }
  info.addresses = strings("addresses");
  info.cluster_peers = strings("cluster_peers");
  info.cluster_peers_addresses = strings("cluster_peers_addresses");
  return info;
}

Peer::Peer(asio::io_context& io, PeerOptions options, Identity identity)
    : io_(io), options_(std::move(options)), identity_(identity),
      peer_id_(identity.peer_id()), self_(peer_id_.to_string()),
      commit_gathered_soon_(io, [this] { commit_gathered(); }),
      end_state_reads_soon_(io, [this] {
        if (state_) state_->end_reads();
      }) {
  data_dir_ = data_folder_path(options_.config.raft.data_folder, options_.config_dir);
  if (!options_.log) options_.log = [](const std::string& line) { fmt::print(stderr, "{}\n", line); };
}

Peer::~Peer() {
  *alive_ = false;
  if (driver_) driver_->stop();
  if (rpc_) rpc_->close();
}

UnixNanos Peer::now() const {
  return duration_cast<nanoseconds>(system_clock::now().time_since_epoch()).count();
}

Result<std::unique_ptr<Peer>> Peer::open(asio::io_context& io, PeerOptions options) {
  auto identity = Identity::from_private_key_base64(options.config.cluster.private_key);
  if (!identity) {
    return make_error(fmt::format("{}: cluster.private_key: {}",
                                  (options.config_dir / "service.json").string(), identity.error().message));
  }
  if (identity->peer_id().to_string() != options.config.cluster.id) {
    return make_error(fmt::format(
        "{}: cluster.id \"{}\" does not match cluster.private_key (its peer id is {})",
        (options.config_dir / "service.json").string(), options.config.cluster.id,
        identity->peer_id().to_string()));
  }
  std::unique_ptr<Peer> peer(new Peer(io, std::move(options), std::move(identity).value()));
  return peer;
}

std::vector<std::string> Peer::own_addresses() const {
  std::vector<std::string> out;
  auto bound = rpc_ ? rpc_->listen_address() : std::nullopt;
  for (const auto& text : options_.config.cluster.announce_multiaddress) out.push_back(text);
  if (out.empty() && bound) out.push_back(bound->with_peer(peer_id_).to_string());
  return out;
}

void Peer::add_peer_addresses(const std::string& id, const std::string& text) {
  PeerAddresses record = parse_peer_record(id, text);
  if (!record.peername.empty()) peernames_[id] = record.peername;
  if (id == self_ || !rpc_) return;
  for (const auto& addr : record.addrs) {
    auto m = Multiaddr::parse(addr);
    if (!m) continue;
    Multiaddr with = m->peer_id() ? *m : m->with_peer(PeerId::parse(id).value());
    if (auto s = rpc_->add_peer(with); !s) {
      options_.log(fmt::format("cannot use address {} of peer {}: {}", addr, id, s.error().message));
    }
  }
}

void Peer::load_known_addresses() {
  for (const auto& text : options_.config.cluster.peers) {
    auto m = Multiaddr::parse(text);
    if (m && m->peer_id()) (void)rpc_->add_peer(*m);
  }
  auto reader = state_->open_reader();
  if (!reader) return;
  auto peers = reader->peers();
  if (!peers) return;
  for (const auto& p : *peers) add_peer_addresses(p.id, p.addrs);
}

void Peer::start(Done ready) {
  auto secret = decode_secret(options_.config.cluster.secret);
  net::RpcOptions rpc_options;
  if (secret) std::copy(secret->begin(), secret->end(), rpc_options.secret.begin());
  rpc_options.network_timeout = duration_cast<milliseconds>(options_.config.raft.network_timeout);
  rpc_options.log = options_.log;
  rpc_ = std::make_unique<net::RpcEndpoint>(io_, identity_, rpc_options);
  rpc_->on_message([this](const PeerId& from, std::string_view method, ByteView payload) {
    handle_message(from, method, payload);
  });
  rpc_->on_request([this](const PeerId& from, std::string_view method, ByteView payload,
                          net::RpcEndpoint::Responder responder) {
    handle_request(from, method, payload, std::move(responder));
  });
  for (const auto& text : options_.config.cluster.listen_multiaddress) {
    auto m = Multiaddr::parse(text);
    if (!m) return ready(make_error(fmt::format("cluster.listen_multiaddress: {}", m.error().message)));
    if (auto s = rpc_->listen(*m); !s) {
      return ready(make_error(fmt::format("cannot listen on {}: {}", text, s.error().message)));
    }
    break;  // one listener: the RPC endpoint binds a single address
  }

  auto log = store::RaftLog::open(data_dir_);
  if (!log) return ready(log.error());
  auto stored = log->load();
  if (!stored) return ready(stored.error());
  auto stored_cluster = log->cluster_id();
  if (!stored_cluster) return ready(stored_cluster.error());
  bool fresh = stored->entries.empty() && stored->snapshot.index == 0 && stored->hard.term == 0;
  std::string reset_hint = fmt::format("clusterpin state cleanup --config {}", options_.config_dir.string());

  raft::DurableState durable;
  if (!fresh) {
    // cluster.bootstrap only matters for a clean folder (a peer that left); --bootstrap asks to
    // join, which a folder with state cannot do safely.
    if (options_.bootstrap_from_flag) {
      return ready(make_error(fmt::format(
          "--bootstrap needs a clean data folder, but {} holds the state of cluster {}; reset it "
          "with '{}' (a backup is kept)", data_dir_.string(), *stored_cluster, reset_hint)));
    }
    cluster_id_ = *stored_cluster;
    durable = std::move(stored).value();
  } else if (!options_.bootstrap.empty()) {
    joining_ = true;
  } else {
    std::vector<std::string> voters{self_};
    for (const auto& text : options_.config.cluster.peers) {
      auto m = Multiaddr::parse(text);
      if (!m || !m->peer_id()) {
        return ready(make_error(fmt::format(
            "cluster.peers: \"{}\" has no /p2p/<peer id>; every entry must name its peer", text)));
      }
      std::string id = m->peer_id()->to_string();
      if (std::find(voters.begin(), voters.end(), id) == voters.end()) voters.push_back(id);
    }
    std::sort(voters.begin(), voters.end());
    cluster_id_ = derive_cluster_id(voters);
    if (cluster_id_ == options_.member_of) {
      // Its data folder held this cluster's state and is empty now: as a founder it would be a
      // voter that forgot its log and its votes, and could elect a leader that lacks committed
      // entries. Only a join (after its removal) brings it back safely.
      return ready(make_error(fmt::format(
          "{} holds no Raft state, but this peer was a member of cluster {} (clusterpin.member in "
          "{}): its data folder was lost, and founding the cluster again could lose pins the "
          "cluster acknowledged; on a running member run 'clusterpin peers rm {}', then start this "
          "peer with --bootstrap <a member's multiaddr> (or run '{}', which records the other "
          "peers in cluster.bootstrap); if every peer of that cluster is gone, delete "
          "clusterpin.member to found it anew",
          data_dir_.string(), cluster_id_, options_.config_dir.string(), self_, reset_hint)));
    }
    durable = raft::bootstrap_state(voters);
    if (auto s = log->set_cluster_id(cluster_id_); !s) return ready(s.error());
    // The founding configuration is durable before Raft starts, as the core assumes.
    store::LogBatch founding;
    founding.hard_state = durable.hard;
    founding.entries = durable.entries;
    if (auto s = log->apply(founding); !s) return ready(s.error());
  }
  if (auto s = open_stores(); !s) return ready(s.error());
  if (!cluster_id_.empty()) {
    if (auto s = state_->set_cluster_id(cluster_id_); !s) {
      return ready(make_error(fmt::format("{}; reset this peer with '{}'", s.error().message, reset_hint)));
    }
  }
  auto applied = state_->applied();
  if (!applied) return ready(applied.error());
  bool state_from_snapshot = false;  // the repair below recorded state.db's snapshot
  if (!fresh && applied->index > durable.snapshot.index) {
    // state.db is swapped to a received snapshot before raft.db records it: after a crash in
    // between, state.db stands at a position the log does not hold (or holds with another
    // term), which the core refuses. Record the snapshot it was marked with, as the install
    // would have (a log without the snapshot's entry is superseded).
    auto term = log->term_at(applied->index);
    if (!term) return ready(term.error());
    if (!*term || **term != applied->term) {
      auto mark = state_->installed_snapshot();
      if (!mark) return ready(mark.error());
      if (*mark) {
        // The received file becomes the snapshot's file first, durably, as at an install: once
        // raft.db records the snapshot this peer may have to send it.
        std::error_code ec;
        auto kept = RaftDriver::snapshot_file(data_dir_, applied->index);
        if (!std::filesystem::exists(kept, ec)) {
          std::filesystem::rename(data_dir_ / "snapshots" / "incoming.db", kept, ec);
          if (ec)
            return ready(make_error(fmt::format("cannot keep the snapshot state.db was restored from as {}: {}",
                                                kept.string(), ec.message())));
          if (auto s = store::sync_parent_directory(kept); !s) return ready(s.error());
        }
        store::LogBatch record;
        record.snapshot = **mark;
        if (auto s = log->apply(record); !s) return ready(s.error());
        auto reloaded = log->load();
        if (!reloaded) return ready(reloaded.error());
        durable = std::move(reloaded).value();
        state_from_snapshot = true;
        options_.log(fmt::format("raft.db lacked the snapshot at index {} that state.db was restored from "
                                 "(a stop during its install): recorded it", applied->index));
      }
    }
  }
  worker_ = std::make_unique<PinWorker>(io_, options_.config, peer_id_, *state_);
  if (auto s = worker_->open(data_dir_, durable.entries, state_from_snapshot); !s)
    return ready(s.error());
  worker_->set_cluster_view({
      [this] {
        std::vector<PeerId> live;
        for (const auto& id : monitor_ ? monitor_->live() : std::vector<std::string>{self_}) {
          if (auto p = PeerId::parse(id)) live.push_back(std::move(p).value());
        }
        return live;
      },
      [this](std::vector<PinsetOp> ops) {
        std::size_t n = ops.size();
        commit_ops(std::move(ops), [this, n](Status s) {
          options_.log(s ? fmt::format("unpinned {} expired pin(s)", n)
                         : "could not unpin expired pins: " + s.error().message);
        });
      }});
  durable.applied = applied->index;  // raft::Node::create raises the commit index to it
  load_known_addresses();

  if (joining_) {
    // Join first: the cluster id comes from the cluster, and the index this peer joined at is
    // recorded before its log holds anything. The log waits in a holder.
    auto holder = std::make_shared<store::RaftLog>(std::move(log).value());
    auto since = steady_clock::now();
    join(0, [this, holder, ready, since](Result<raft::Index> joined) {
      if (!joined) return ready(joined.error());
      if (auto s = holder->set_member_since(*joined); !s) return ready(s);
      member_since_ = *joined;
      auto writer = std::make_unique<store::LogWriter>(std::move(*holder));
      if (auto st = start_raft_with(std::move(writer), raft::DurableState{}); !st) return ready(st);
      check_ready(ready, since);
    });
    return;
  }
  auto since = log->member_since();
  if (!since) return ready(since.error());
  member_since_ = *since;
  auto writer = std::make_unique<store::LogWriter>(std::move(log).value());
  if (auto s = start_raft_with(std::move(writer), std::move(durable)); !s) return ready(s);
  // A peer stopped between applying its removal and leaving (or one that a snapshot told) leaves now.
  check_membership(driver_->node().applied_index());
  if (removed_) return;
  check_ready(ready, steady_clock::now());
}

Status Peer::open_stores() {
  auto state = store::StateDb::open(data_dir_);
  if (!state) return state.error();
  state_.emplace(std::move(state).value());
  return {};
}

Status Peer::start_raft_with(std::unique_ptr<store::LogWriter> writer, raft::DurableState durable) {
  const RaftConfig& rc = options_.config.raft;
  raft::Config cfg;
  cfg.id = self_;
  cfg.cluster_id = cluster_id_;
  cfg.heartbeat_ticks = std::max(1, ticks(rc.heartbeat_timeout) / 4);
  cfg.election_ticks = std::max(cfg.heartbeat_ticks * 3, ticks(rc.election_timeout));
  cfg.lease_ticks = std::max(cfg.heartbeat_ticks * 2, ticks(rc.election_timeout));
  cfg.max_append_entries = static_cast<std::size_t>(rc.max_append_entries);
  // An Append message holds at most this much entry data, or one entry, which commit_ops keeps
  // to this size: with the message's own fields it fits in a peer link's frame.
  static_assert(kMaxEntryBytes + 64 * 1024 <= net::FrameLimits{}.max_plaintext);
  cfg.max_append_bytes = kMaxEntryBytes;
  cfg.trailing_logs = static_cast<raft::Index>(rc.trailing_logs);
  cfg.snapshot_threshold = static_cast<raft::Index>(rc.snapshot_threshold);
  cfg.snapshot_interval_ticks = ticks(rc.snapshot_interval);
  std::uint64_t seed = 0;
  randombytes_buf(&seed, sizeof(seed));
  cfg.seed = seed;
  randombytes_buf(&request_session_, sizeof(request_session_));
  RaftDriver::Callbacks callbacks;
  callbacks.send = [this](const raft::Message& m) {
    auto to = PeerId::parse(m.to);
    if (!to) return;
    std::string bytes = raft::encode(m);
    (void)rpc_->send(*to, "raft", as_view(bytes));  // a full queue drops: Raft retransmits
  };
  callbacks.applied = [this](const raft::Entry& e, const std::optional<Command>& command,
                             const store::StateDb::Applied& effects) {
    on_applied(e, command, effects);
  };
  // A snapshot may drop pins whose pin/add tracker.db has not committed yet; the unpin guard
  // does not see a restore (no entry removes them), so tracker.db commits first.
  callbacks.before_restore = [this] { return worker_->make_durable(); };
  callbacks.state_replaced = [this](raft::Index index) {
    worker_->state_replaced();
    // Peer records inside the snapshot were never applied here: their addresses and names.
    load_known_addresses();
    // Entries inside the snapshot are never applied one by one: their waiters are done now.
    release_applied_waiters(index);
    check_membership(index);
  };
  auto driver = RaftDriver::create(io_, std::move(cfg), std::move(durable), std::move(writer),
                                   *state_, data_dir_, kTick, std::move(callbacks));
  if (!driver) return driver.error();
  driver_ = std::move(driver).value();
  driver_->start();
  start_monitor();  // before ready: the others' metrics are here by the time pins arrive
  return {};
}

void Peer::check_ready(Done ready, steady_clock::time_point since) {
  const raft::Node& n = driver_->node();
  bool caught_up = !n.leader().empty() && n.is_voter(self_) && n.applied_index() >= n.commit_index();
  if (caught_up) {
    announce_addresses();
    worker_->start();
    start_rereplication();
    connect_swarms_later();
    return ready({});
  }
  // Catching up counts as progress: while a leader is known and this peer's applied index or
  // the snapshot it receives grows, the wait goes on (a 1M-pin snapshot takes longer than
  // wait_for_leader_timeout); the timeout ends only a wait that stopped moving.
  auto now = steady_clock::now();
  std::uint64_t progress = n.applied_index() + driver_->snapshot_bytes_received();
  if (!n.leader().empty() && progress != last_ready_progress_) {
    last_ready_progress_ = progress;
    since = now;
  }
  if (now - since >= ready_wait_limit()) return ready(make_error(describe_reachability()));
  auto timer = std::make_shared<asio::steady_timer>(io_, milliseconds(100));
  timer->async_wait([this, timer, ready, since, alive = alive_](const std::error_code& ec) {
    if (ec || !*alive) return;
    check_ready(ready, since);
  });
}

// A peer that joined (a learner that heard from its leader) waits for the leader's snapshot
// and then for its promotion to voter, both at the pace of the voters' disks, which the
// gigabytes a large pinset just wrote can hold up for tens of seconds: the whole machine stalls
// in writeback, heartbeats included (seen at 10M pins right after every peer recorded the
// pinset). That wait may go on for kJoinedWaits times wait_for_leader_timeout without progress.
steady_clock::duration Peer::ready_wait_limit() const {
  auto timeout = options_.config.raft.wait_for_leader_timeout;
  const raft::Node& n = driver_->node();
  return !n.leader().empty() && !n.is_voter(self_) ? timeout * kJoinedWaits : timeout;
}

std::string Peer::describe_reachability() const {
  auto members = member_ids();
  std::size_t others = 0, reached = 0;
  std::string missing;
  for (const auto& id : members) {
    if (id == self_) continue;
    ++others;
    auto p = PeerId::parse(id);
    if (p && rpc_->connected(*p)) {
      ++reached;
    } else {
      missing += (missing.empty() ? "" : ", ") + id;
    }
  }
  const raft::Node& n = driver_->node();
  if (!n.leader().empty() && !n.is_voter(self_)) {
    return fmt::format("joined, but made no progress for {} ({} times "
                       "consensus.raft.wait_for_leader_timeout) and is not yet a voter; the "
                       "leader {} {}; check the leader's log and its disk",
                       format_go_duration(ready_wait_limit()), kJoinedWaits, n.leader(),
                       n.hears_leader() ? "keeps in contact but did not make this peer a voter"
                                        : "was not heard from within the election timeout");
  }
  return fmt::format(
      "no Raft leader after consensus.raft.wait_for_leader_timeout ({}): reached {} of {} other "
      "peers{}{}; check that a majority of the peers in cluster.peers are running, share this "
      "cluster's secret, and can reach each other on their listen addresses",
      format_go_duration(options_.config.raft.wait_for_leader_timeout), reached, others,
      missing.empty() ? "" : " (not reached: ", missing.empty() ? "" : missing + ")");
}

void Peer::announce_addresses() {
  if (announced_) return;
  announced_ = true;
  PeerAddresses me{self_, own_addresses(), options_.config.cluster.peername};
  auto current = state_->open_reader();
  if (current) {
    auto peers = current->peers();
    if (peers) {
      for (const auto& p : *peers) {
        if (p.id == self_ && p.addrs == peer_record_text(me)) return;
      }
    }
  }
  commit_data(encode_peer_addresses(me), static_cast<int>(options_.config.raft.commit_retries) + 3,
              [this](Status s) {
                if (!s) options_.log("could not announce this peer's addresses: " + s.error().message);
              });
}

void Peer::on_applied(const raft::Entry& entry, const std::optional<Command>& command,
                      const store::StateDb::Applied& effects) {
  if (entry.type == raft::EntryType::ConfChange) {
    auto conf = raft::decode_conf_entry(entry.data);
    if (conf) {
      const raft::ConfChange& c = conf->change;
      if (c.type == raft::ConfChangeType::AddLearner) {
        add_peer_addresses(c.node, c.context);
        if (monitor_) asio::post(io_, [this, alive = alive_] {
          if (*alive && monitor_) monitor_->publish_now();
        });
      }
      if (c.type == raft::ConfChangeType::RemoveNode) {
        if (c.node == self_) {
          check_membership(entry.index);
        } else if (auto p = PeerId::parse(c.node)) {
          rpc_->remove_peer(*p);
        }
      }
    }
  } else if (command) {
    if (const auto* peer = std::get_if<PeerAddresses>(&*command)) {
      add_peer_addresses(peer->peer, peer_record_text(*peer));
    } else {
      const auto& ops = std::get<std::vector<PinsetOp>>(*command);
      if (effects.duplicate) {
        options_.log(fmt::format(
            "entry {} repeats a request applied before, or one its proposer gave up on (a "
            "retry after an unknown outcome); its {} change(s) were not applied",
            entry.index, ops.size()));
      }
      worker_->applying(entry.index);
      for (std::size_t i = 0; i < ops.size(); ++i) {
        const PinsetOp& op = ops[i];
        if (i < effects.skipped.size() && effects.skipped[i]) continue;  // a stale decision
        const std::string* replaced =
            i < effects.replaced.size() && effects.replaced[i] ? &*effects.replaced[i] : nullptr;
        if (op.kind == PinsetOp::Kind::pin) {
          worker_->pin_applied(op.pin, i < effects.new_pins.size() && effects.new_pins[i], replaced);
        } else {
          worker_->unpin_applied(op.pin.cid, replaced);
        }
      }
      worker_->applying(std::nullopt);
    }
  }
  release_applied_waiters(entry.index);
}

// Waiters for "applied here" (read-your-writes after a forwarded commit) up to `index`.
void Peer::release_applied_waiters(raft::Index index) {
  while (!applied_waiters_.empty() && applied_waiters_.begin()->first <= index) {
    Done d = std::move(applied_waiters_.begin()->second);
    applied_waiters_.erase(applied_waiters_.begin());
    d({});
  }
}

void Peer::wait_applied(raft::Index index, Done done) {
  if (driver_->applied_index() >= index) return done({});
  applied_waiters_.emplace(index, std::move(done));
}

void Peer::handle_message(const PeerId& from, std::string_view method, ByteView payload) {
  if (method == "metrics") {
    if (monitor_) monitor_->receive(from.to_string(), as_string(payload));
    return;
  }
  if (method == "removed") return removal_reported(from, payload);
  if (method != "raft" || !driver_) return;
  auto m = raft::decode(as_string(payload));
  if (!m) {
    options_.log(fmt::format("dropped a malformed raft message from {}: {}", from.to_string(),
                             m.error().message));
    return;
  }
  if (m->from != from.to_string()) return;  // a peer may only speak for itself
  if (m->cluster_id != cluster_id_ && !cluster_id_.empty()) {
    options_.log(fmt::format(
        "refused raft traffic from {}: it belongs to cluster {}, this peer to cluster {}",
        from.to_string(), m->cluster_id, cluster_id_));
    return;
  }
  tell_if_removed(from, m->from);
  driver_->step(*m);
}

// A peer removed while it was stopped holds a log in which it is still a member: it campaigns
// or answers a leader that no longer contacts it. Its members tell it (at most once a second)
// once their committed and their latest configuration both lack it: when a raft message comes
// from it, and when a link with it comes up. A peer that is joining is told too and ignores it
// (it hears only members of its own configuration, about an index past its join).
void Peer::tell_if_removed(const PeerId& from, const std::string& id) {
  const raft::Node& n = driver_->node();
  if (raft::is_member(n.conf(), id) || raft::is_member(n.conf_at(n.commit_index()), id)) return;
  auto now = steady_clock::now();
  auto [it, fresh] = removal_told_.try_emplace(id, now);
  if (!fresh && now - it->second < std::chrono::seconds(1)) return;
  it->second = now;
  WireWriter w;
  w.u64(n.commit_index());
  std::string bytes = w.take();
  (void)rpc_->send(from, "removed", as_view(bytes));
}

// The teller's committed configuration at `index` lacks this peer. If `index` is past the one
// this peer joined at, the removal is of its current membership: a configuration that has it
// as of member_since_ lacks it later only after a removal. (A teller behind this peer's join
// holds an older index and is ignored.) Only members are heard.
void Peer::removal_reported(const PeerId& from, ByteView payload) {
  if (!driver_ || removed_) return;
  const std::string text = as_string(payload);
  WireReader reader(text);
  raft::Index index = reader.u64();
  if (!reader.ok() || index <= member_since_) return;
  std::string teller = from.to_string();
  if (!raft::is_member(driver_->node().conf(), teller)) return;
  options_.log(fmt::format("peer {} reports that this peer is not in the cluster's configuration "
                           "as of index {}", teller, index));
  removed_ = true;
  if (on_removed_) asio::post(io_, on_removed_);
}

void Peer::handle_request(const PeerId& from, std::string_view method, ByteView payload,
                          net::RpcEndpoint::Responder responder) {
  auto shared = std::make_shared<net::RpcEndpoint::Responder>(std::move(responder));
  if (method == "id") {
    info_now([shared](PeerInfo info) {
      std::string json = peer_info_to_json(info);
      shared->reply(as_view(json));
    });
    return;
  }
  if (method == "graph") {
    local_graph([shared](std::string json) { shared->reply(as_view(json)); });
    return;
  }
  if (method == "status") {
    if (!worker_ || !state_) return shared->fail("this peer is still starting");
    const std::string request = as_string(payload);
    WireReader reader(request);
    std::uint64_t n = reader.u64();
    // The answer holds the statuses of the first CIDs asked, as many as fit in
    // kMaxPinListBytes (at least one); the asker asks again for the rest. Each status
    // carries this peer's IPFS addresses and may carry an error of up to 64 KB, so 500 of them
    // could outgrow a peer link's frame.
    std::vector<std::string> statuses;
    std::size_t bytes = 0;
    for (std::uint64_t i = 0; reader.ok() && i < n; ++i) {
      auto cid = Cid::from_bytes(as_bytes(reader.bytes()));
      if (!cid) return shared->fail("malformed status request");
      auto pin = get_pin(*cid);
      std::string json = local_status_json(*cid, pin && *pin ? std::optional<Pin>(**pin) : std::nullopt);
      if (!statuses.empty() && bytes + json.size() > kMaxPinListBytes) break;
      bytes += json.size();
      statuses.push_back(std::move(json));
    }
    if (!reader.ok()) return shared->fail("malformed status request");
    WireWriter answer;
    answer.u64(statuses.size());
    for (const auto& json : statuses) answer.bytes(json);
    std::string encoded = answer.take();
    return shared->reply(as_view(encoded));
  }
  if (method == "leaving") {
    if (!worker_) return shared->fail("this peer is still starting");
    std::optional<Cid> after;
    if (!payload.empty()) {
      auto cid = Cid::from_bytes(payload);
      if (!cid) return shared->fail("malformed leaving request");
      after = std::move(cid).value();
    }
    auto page = leaving_local(after);
    if (!page) return shared->fail(page.error().message);
    std::string encoded = encode_leaving(*page, kMaxPinListBytes);
    return shared->reply(as_view(encoded));
  }
  if (method == "recover_all" || method == "sync") {
    if (!worker_) return shared->fail("this peer is still starting");
    run_local(std::string(method), [shared](std::vector<Cid> touched, std::string error) {
      if (!error.empty()) return shared->fail(error);
      std::string encoded = encode_touched(touched, kMaxPinListBytes);
      shared->reply(as_view(encoded));
    });
    return;
  }
  if (method == "repo_gc") {
    repo_gc_local([shared](std::string json) { shared->reply(as_view(json)); });
    return;
  }
  if (method == "recover") {
    if (!worker_) return shared->fail("this peer is still starting");
    auto cid = Cid::from_bytes(payload);
    if (!cid) return shared->fail("malformed recover request");
    auto r = worker_->recover(*cid);
    if (!r) return shared->fail(r.error().message);
    return shared->reply({});
  }
  if (!driver_) return shared->fail("this peer is still starting");
  if (method == "commit") {
    if (driver_->node().role() != raft::Role::Leader) return shared->fail("not the leader");
    // Only an entry every peer can apply reaches the log: one that does not decode would stop
    // each peer at its apply, and again at each restart, as the log replays it (a peer of
    // another version, a faulty one).
    if (auto command = decode_command(as_string(payload)); !command) {
      return shared->fail("refused an entry that does not decode (" + command.error().message +
                          "); is the sending peer of another clusterpin version?");
    }
    auto timeout = duration_cast<milliseconds>(options_.config.raft.network_timeout);
    auto index = std::make_shared<raft::Index>(driver_->node().last_index() + 1);
    // The crash tests' "commit-answer-lost": the answer to the first forwarded pinset request
    // is lost after its entry applied, so its proposer retries one that committed.
    static bool answer_lost = false;
    const bool lose_answer = fault_armed("commit-answer-lost") && !answer_lost &&
                             split_request(as_string(payload)).value().id.has_value();
    answer_lost = answer_lost || lose_answer;
    driver_->propose(as_string(payload), timeout, [shared, index, lose_answer](Status s) {
      if (!s) return shared->fail(s.error().message);
      if (lose_answer) return shared->fail("the answer was lost (fault injection)");
      std::string bytes = encode_u64(*index);
      shared->reply(as_view(bytes));
    });
    return;
  }
  if (method == "remove") {
    if (driver_->node().role() != raft::Role::Leader) return shared->fail("not the leader");
    raft::ConfChange change{raft::ConfChangeType::RemoveNode, as_string(payload), ""};
    driver_->propose_conf_change(change, duration_cast<milliseconds>(options_.config.raft.network_timeout),
                                 [shared](Status s) {
                                   if (!s) return shared->fail(s.error().message);
                                   shared->reply({});
                                 });
    return;
  }
  if (method == "join") {
    auto command = decode_command(as_string(payload));
    if (!command || !std::holds_alternative<PeerAddresses>(*command)) {
      return shared->fail("malformed join request");
    }
    const auto& joiner = std::get<PeerAddresses>(*command);
    bool forwarded = driver_->node().is_voter(from.to_string());
    if (joiner.peer != from.to_string() && !forwarded) {
      return shared->fail("a peer may only join as itself");
    }
    if (driver_->node().role() != raft::Role::Leader) {
      auto leader = PeerId::parse(driver_->node().leader());
      if (!leader) return shared->fail("no leader known; retry");
      rpc_->call(*leader, "join", payload, [shared](Result<Bytes> r) {
        if (!r) return shared->fail(r.error().message);
        shared->reply(*r);
      });
      return;
    }
    auto reply_members = [this, shared, id = joiner.peer] {
      WireWriter w;
      w.bytes(cluster_id_);
      auto reader = state_->open_reader();
      std::vector<store::PeerRecord> peers;
      if (reader) {
        if (auto p = reader->peers()) peers = *p;
      }
      bool self_listed = false;
      for (const auto& p : peers) self_listed |= p.id == self_;
      if (!self_listed) {
        peers.push_back({self_, peer_record_text({self_, own_addresses(), options_.config.cluster.peername})});
      }
      w.u64(peers.size());
      for (const auto& p : peers) {
        w.bytes(p.id);
        w.bytes(p.addrs);
      }
      // Where its membership begins: older removals of this id that the joiner replays from
      // the log are not its own. (Absent from the answers of older versions.)
      w.u64(driver_->node().member_since(id));
      std::string bytes = w.take();
      shared->reply(as_view(bytes));
    };
    // Only a peer without Raft state joins (a started peer restarts without --bootstrap). A
    // learner asking again is a retried join. A voter asking has lost its log and its vote
    // (a wiped or reprovisioned folder): let back in as a voter it could elect a leader that
    // lacks committed entries, so it must be removed first and join as a new learner.
    if (driver_->node().is_voter(joiner.peer)) {
      return shared->fail(fmt::format(
          "peer {} is a voting member of this cluster already, and a voter that lost its state cannot "
          "rejoin as one: remove it first (`clusterpin peers rm {}` on a member), then start it "
          "with --bootstrap again", joiner.peer, joiner.peer));
    }
    if (driver_->node().conf().learners.end() !=
        std::find(driver_->node().conf().learners.begin(), driver_->node().conf().learners.end(), joiner.peer)) {
      // Already a learner: a retried join, perhaps with a wiped log.
      driver_->node().restart_replication(joiner.peer);
      return reply_members();
    }
    raft::ConfChange change{raft::ConfChangeType::AddLearner, joiner.peer, peer_record_text(joiner)};
    add_peer_addresses(joiner.peer, peer_record_text(joiner));
    driver_->propose_conf_change(change, duration_cast<milliseconds>(options_.config.raft.network_timeout),
                                 [shared, reply_members](Status s) {
                                   if (!s) return shared->fail(s.error().message);
                                   reply_members();
                                 });
    return;
  }
  shared->fail(fmt::format("unknown method \"{}\"", method));
}

void Peer::join(std::size_t next, std::function<void(Result<raft::Index>)> ready) {
  const auto& addrs = options_.bootstrap;
  if (next >= addrs.size()) {
    return ready(make_error(fmt::format(
        "could not join through any bootstrap address ({}); check that those peers run, share "
        "this cluster's secret and are reachable", fmt::join(addrs, ", "))));
  }
  auto m = Multiaddr::parse(addrs[next]);
  if (!m || !m->peer_id()) {
    return ready(make_error(fmt::format("bootstrap address \"{}\" must end with /p2p/<peer id>", addrs[next])));
  }
  if (auto s = rpc_->add_peer(*m); !s) return ready(s.error());
  PeerAddresses me{self_, own_addresses(), options_.config.cluster.peername};
  std::string request = encode_peer_addresses(me);
  options_.log(fmt::format("joining the cluster through {}", addrs[next]));
  rpc_->call(*m->peer_id(), "join", as_view(request), [this, next, ready, alive = alive_](Result<Bytes> r) {
    if (!*alive) return;
    if (!r) {
      options_.log(fmt::format("join through {} failed: {}", options_.bootstrap[next], r.error().message));
      return join(next + 1, ready);
    }
    const std::string answer = as_string(*r);  // the reader views it: keep it alive
    WireReader reader(answer);
    cluster_id_ = std::string(reader.bytes());
    std::uint64_t n = reader.u64();
    for (std::uint64_t i = 0; reader.ok() && i < n; ++i) {
      std::string id(reader.bytes());
      std::string text(reader.bytes());
      add_peer_addresses(id, text);
    }
    raft::Index since = reader.at_end() ? 0 : reader.u64();
    if (!reader.ok() || cluster_id_.empty()) return ready(make_error("malformed answer to join"));
    if (auto s = state_->set_cluster_id(cluster_id_); !s) return ready(s.error());
    ready(since);
  });
}

// A removal takes effect for this peer once applied: the configuration at `index` lacks it.
// Removals at or before member_since_ are from an earlier membership under the same id, which a
// peer that left and joined again replays from the log while it catches up (in Appends of
// max_append_entries, so the entry that added it back may not have arrived yet).
void Peer::check_membership(raft::Index index) {
  if (removed_ || index <= member_since_) return;
  if (raft::is_member(driver_->node().conf_at(index), self_)) return;
  removed_ = true;
  fault_point("after-removal-applied");  // the crash test of a stop before leaving
  if (on_removed_) asio::post(io_, on_removed_);
}

void Peer::commit_ops(std::vector<PinsetOp> ops, Done done) {
  if (ops.empty()) return done({});
  // A request larger than what is gathered for one entry goes alone (it starts an entry of its
  // own and flushes the ones it fills); its ops keep their order, and so do the requests.
  if (gathered_count_ > 0 && gathered_count_ + ops.size() > kOpsPerEntry) commit_gathered();
  // The asker is answered once every entry holding its ops is applied, with the first error.
  struct Parts {
    Done done;
    std::size_t open = 0;
    Status first_error;
  };
  // `open` starts at one for this call itself, released below once every part was handed
  // out: a part that fails at once (the peer stopping) cannot answer before the others exist.
  auto parts = std::make_shared<Parts>(Parts{std::move(done), 1, {}});
  auto finish_one = [parts](const Status& s) {
    if (!s && parts->first_error.ok()) parts->first_error = s;
    if (--parts->open == 0) parts->done(parts->first_error);
  };
  auto part = [parts, finish_one]() -> Done {
    ++parts->open;
    return finish_one;
  };
  bool in_entry = false;  // some of this asker's ops are in the entry being gathered
  for (const PinsetOp& op : ops) {
    op_scratch_.str().clear();
    encode_op_into(op_scratch_, op);
    if (gathered_count_ > 0 && (gathered_count_ >= kOpsPerEntry ||
                                gathered_body_.str().size() + op_scratch_.str().size() > kMaxEntryBytes)) {
      if (in_entry) gathered_done_.push_back(part());
      commit_gathered();
      in_entry = false;
    }
    gathered_body_.str().append(op_scratch_.str());
    ++gathered_count_;
    in_entry = true;
  }
  gathered_done_.push_back(part());  // the last op is in the entry being gathered
  if (gathered_count_ >= kOpsPerEntry) {
    commit_gathered();  // a big request goes alone
  } else {
    commit_gathered_soon_.request();
  }
  finish_one({});
}

void Peer::commit_gathered() {
  if (gathered_count_ == 0) return;
  auto waiting = std::make_shared<std::vector<Done>>(std::move(gathered_done_));
  // A retry proposes these same bytes: when both copies commit, the second changes nothing.
  // The pinset keeps the numbers applied above the lowest open one as at most
  // kMaxRequestRanges ranges, a gap being an open request: with more open, a retried one
  // could be forgotten and apply twice. So none is proposed beyond that (a leader gone silent
  // under heavy load): refused.
  const bool too_many_open = open_requests_.size() >= store::StateDb::kMaxRequestRanges;
  const std::uint64_t seq = too_many_open ? 0 : next_request_seq_++;
  std::string data;
  if (!too_many_open) {
    open_requests_.insert(seq);
    const RequestId id{request_session_, seq, *open_requests_.begin()};
    data = with_request_id(id, encode_ops_entry(gathered_count_, gathered_body_.str()));
  }
  gathered_body_.str().clear();
  gathered_count_ = 0;
  gathered_done_.clear();
  if (too_many_open) {
    const Status refused = make_error(fmt::format(
        "this peer has {} pinset entries waiting for the leader already; try again later",
        open_requests_.size()));
    for (Done& done : *waiting) done(refused);
    return;
  }
  commit_data(std::move(data), static_cast<int>(options_.config.raft.commit_retries),
              [this, waiting, seq, alive = alive_](Status s) {
                if (*alive) open_requests_.erase(seq);
                for (Done& done : *waiting) done(s);
              });
}

void Peer::commit_data(std::string data, int attempts_left, Done done) {
  commit_at_leader(std::move(data), attempts_left, std::move(done), steady_clock::now());
}

void Peer::commit_at_leader(std::string data, int attempts_left, Done done,
                            steady_clock::time_point waited_since) {
  if (stopped_ || !driver_) return done(make_error("the peer is shutting down"));
  const RaftConfig& rc = options_.config.raft;
  auto retry = [this, data, attempts_left, done](Status why) {
    if (attempts_left <= 0) return done(why);
    auto timer = std::make_shared<asio::steady_timer>(io_, options_.config.raft.commit_retry_delay);
    timer->async_wait([this, timer, data, attempts_left, done, alive = alive_](const std::error_code& ec) {
      if (ec || !*alive) return;
      commit_at_leader(data, attempts_left - 1, done, steady_clock::now());
    });
  };
  const std::string leader = driver_->node().leader();
  if (leader.empty()) {
    if (steady_clock::now() - waited_since > rc.wait_for_leader_timeout) {
      return done(make_error(fmt::format("timed out waiting for a leader after {}",
                                         format_go_duration(rc.wait_for_leader_timeout))));
    }
    auto timer = std::make_shared<asio::steady_timer>(io_, milliseconds(50));
    timer->async_wait([this, timer, data, attempts_left, done, waited_since, alive = alive_](const std::error_code& ec) {
      if (ec || !*alive) return;
      commit_at_leader(data, attempts_left, done, waited_since);
    });
    return;
  }
  auto timeout = duration_cast<milliseconds>(rc.network_timeout);
  if (leader == self_) {
    // The driver completes a proposal only after applying it here: nothing else to wait for.
    driver_->propose(std::move(data), timeout, [retry, done](Status s) {
      if (!s) return retry(s);
      done({});
    });
    return;
  }
  auto to = PeerId::parse(leader);
  if (!to) return done(make_error("bad leader id"));
  rpc_->call(*to, "commit", as_view(data), [this, retry, done, alive = alive_](Result<Bytes> r) {
    if (!*alive) return;
    if (!r) return retry(make_error("forwarding to the leader failed: " + r.error().message));
    const std::string answer = as_string(*r);  // the reader views it: keep it alive
    WireReader reader(answer);
    raft::Index index = reader.u64();
    if (!reader.ok()) return done(make_error("malformed answer from the leader"));
    wait_applied(index, done);
  });
}

Result<std::optional<Pin>> Peer::get_pin(const Cid& cid) {
  // REST requests of one turn look up their CIDs in one read transaction.
  if (state_->begin_reads()) end_state_reads_soon_.request();
  return decode_stored_pin(state_->get_pin(as_string(cid.bytes())));
}

std::vector<std::string> Peer::member_ids() const {
  if (!driver_) return {self_};
  const raft::ConfState& conf = driver_->node().conf();
  std::vector<std::string> ids = conf.voters;
  ids.insert(ids.end(), conf.learners.begin(), conf.learners.end());
  std::sort(ids.begin(), ids.end());
  return ids;
}

PeerInfo Peer::info() const {
  PeerInfo info;
  info.id = self_;
  info.peername = options_.config.cluster.peername;
  info.addresses = own_addresses();
  info.cluster_peers = member_ids();
  if (driver_) info.leader = driver_->node().leader();
  info.version = std::string(version());
  if (worker_) {
    // As IPFS Cluster: an IPFS daemon that fails shows its error alone, not the id it last had.
    info.ipfs_error = worker_->ipfs_error();
    if (info.ipfs_error.empty()) {
      info.ipfs_id = worker_->ipfs_id().id;
      info.ipfs_addresses = worker_->ipfs_id().addresses;
    }
  }
  auto reader = const_cast<store::StateDb&>(*state_).open_reader();
  if (reader) {
    if (auto peers = reader->peers()) {
      for (const auto& p : *peers) {
        for (const auto& a : parse_peer_record(p.id, p.addrs).addrs) info.cluster_peers_addresses.push_back(a);
      }
    }
  }
  return info;
}

void Peer::info_now(std::function<void(PeerInfo)> done) {
  if (!worker_) return done(info());
  static constexpr auto kMaxWait = milliseconds(2000);
  worker_->refresh_ipfs(kMaxWait, [this, done, alive = alive_](bool answered) {
    if (!*alive) return;
    PeerInfo now = info();
    if (!answered && now.ipfs_error.empty()) {
      now.ipfs_error = fmt::format("the IPFS daemon did not answer id within {}",
                                   format_go_duration(kMaxWait));
      now.ipfs_id.clear();
      now.ipfs_addresses.clear();
    }
    done(std::move(now));
  });
}

void Peer::gather_peer_infos(std::function<void(std::vector<PeerInfo>)> done) {
  auto ids = member_ids();
  auto results = std::make_shared<std::vector<PeerInfo>>(ids.size());
  auto remaining = std::make_shared<std::size_t>(ids.size());
  auto finish_one = [results, remaining, done] {
    if (--*remaining == 0) done(std::move(*results));
  };
  for (std::size_t i = 0; i < ids.size(); ++i) {
    if (ids[i] == self_) {
      info_now([results, i, finish_one](PeerInfo info) {
        (*results)[i] = std::move(info);
        finish_one();
      });
      continue;
    }
    auto to = PeerId::parse(ids[i]);
    if (!to) {
      (*results)[i].id = ids[i];
      (*results)[i].error = "bad peer id";
      finish_one();
      continue;
    }
    rpc_->call(*to, "id", {}, [results, i, id = ids[i], finish_one](Result<Bytes> r) {
      if (r) {
        (*results)[i] = peer_info_from_json(as_string(*r), id);
      } else {
        (*results)[i].id = id;
        (*results)[i].error = r.error().message;
      }
      finish_one();
    }, milliseconds(15000));
  }
}

std::string Peer::local_status_json(const Cid& cid, const std::optional<Pin>& pin) {
  TrackerStatus status = TrackerStatus::cluster_error;
  std::string error;
  UnixNanos timestamp = now();
  std::int64_t attempts = 0;
  bool priority = false;
  auto record = worker_ ? worker_->status(cid) : Result<std::optional<TrackerRecord>>(std::nullopt);
  if (record && *record) {
    error = (*record)->error;
    timestamp = (*record)->timestamp;
    attempts = (*record)->attempt_count;
    priority = (*record)->priority;
  } else if (!record) {
    error = record.error().message;
  }
  if (record) status = reported_status(*record ? &**record : nullptr, pin ? &*pin : nullptr, peer_id_);
  rapidjson::StringBuffer buffer;
  rapidjson::Writer<rapidjson::StringBuffer> w(buffer);
  w.StartObject();
  w.Key("peername"); w.String(options_.config.cluster.peername.c_str());
  if (worker_ && !worker_->ipfs_id().id.empty()) {
    w.Key("ipfs_peer_id"); w.String(worker_->ipfs_id().id.c_str());
    w.Key("ipfs_peer_addresses"); json_strings(w, worker_->ipfs_id().addresses);
  }
  w.Key("status"); w.String(std::string(status_name(status)).c_str());
  w.Key("timestamp"); w.String(format_rfc3339(timestamp).c_str());
  w.Key("error"); w.String(error.c_str());
  w.Key("attempt_count"); w.Int64(attempts);
  w.Key("priority_pin"); w.Bool(priority);
  w.EndObject();
  return std::string(buffer.GetString(), buffer.GetSize());
}

// The entry of a member whose status comes from here rather than from its own answer: one it
// could not be asked (cluster_error, with why) or one not asked (remote, IPFS Cluster's entry).
static std::string status_entry_json(const std::string& peername, std::string_view status,
                                     const std::string& error, UnixNanos now) {
  rapidjson::StringBuffer buffer;
  rapidjson::Writer<rapidjson::StringBuffer> w(buffer);
  w.StartObject();
  w.Key("peername"); w.String(peername.c_str());
  w.Key("status"); w.String(status.data(), static_cast<rapidjson::SizeType>(status.size()));
  w.Key("timestamp"); w.String(format_rfc3339(now).c_str());
  w.Key("error"); w.String(error.c_str());
  w.Key("attempt_count"); w.Int64(0);
  w.Key("priority_pin"); w.Bool(false);
  w.EndObject();
  return std::string(buffer.GetString(), buffer.GetSize());
}

static std::string cluster_error_json(const std::string& peername, const std::string& error, UnixNanos now) {
  return status_entry_json(peername, "cluster_error", error, now);
}

// Whether gather_status (StatusScope::allocated) and recover_one ask `member` about a CID whose
// pin is `pin`: its allocations, every member for a pin everywhere or a CID not in the pinset.
static bool asked_about(const std::optional<Pin>& pin, const Result<PeerId>& member) {
  return !pin || pin->everywhere() || (member && pin->allocated_to(*member));
}

void Peer::recover_one(const Cid& cid, bool local_only,
                       std::function<void(std::map<std::string, std::string> errors)> done) {
  std::map<std::string, std::string> errors;
  if (auto here = recover_local(cid); !here) errors[self_] = here.error().message;
  auto pin = get_pin(cid);
  std::optional<Pin> p = pin && *pin ? std::optional<Pin>(**pin) : std::nullopt;
  std::vector<PeerId> others;
  if (!local_only) {
    for (const auto& id : member_ids()) {
      auto member = PeerId::parse(id);
      if (id != self_ && member && asked_about(p, member)) others.push_back(*member);
    }
  }
  struct Gathered {
    std::map<std::string, std::string> errors;
    std::size_t remaining = 1;
  };
  auto g = std::make_shared<Gathered>(Gathered{std::move(errors), 1 + others.size()});
  auto finish = [g, done] {
    if (--g->remaining == 0) done(std::move(g->errors));
  };
  const std::string request(cid.bytes().begin(), cid.bytes().end());
  for (const PeerId& member : others) {
    rpc_->call(member, "recover", as_view(request), [g, finish, id = member.to_string()](Result<Bytes> r) {
      if (!r) g->errors[id] = r.error().message;
      finish();
    }, milliseconds(15000));
  }
  finish();
}

std::string Peer::status_error_json(const std::string& id, const std::string& error) {
  return cluster_error_json(peername_of(id), error, now());
}

void Peer::gather_status(std::vector<Cid> cids, StatusScope scope, std::function<void(StatusMap)> done) {
  auto result = std::make_shared<StatusMap>(cids.size());
  std::vector<std::optional<Pin>> pins;
  std::vector<bool> not_in_pinset(cids.size());
  for (std::size_t i = 0; i < cids.size(); ++i) {
    auto pin = get_pin(cids[i]);
    pins.push_back(pin && *pin ? std::optional<Pin>(**pin) : std::nullopt);
    not_in_pinset[i] = pin && !*pin;  // a failed read is not "absent"
    (*result)[i][self_] = local_status_json(cids[i], pins.back());
  }
  // What each other member is asked: every CID, or (StatusScope::allocated) the CIDs allocated
  // to it, a pin everywhere and a CID not in the pinset (a peer may still be unpinning it); it
  // is `remote` for the rest without a call, so a member that is down or slow does not turn
  // the status of a pin it does not hold into cluster_error.
  struct Asked {
    std::string id;
    std::vector<Cid> cids;
    std::vector<std::size_t> at;  // where each of `cids` is in the result
  };
  std::vector<Asked> others;
  if (scope != StatusScope::local) {
    for (const auto& id : member_ids()) {
      if (id == self_) continue;
      Asked a{id, {}, {}};
      auto member = PeerId::parse(id);
      for (std::size_t i = 0; i < cids.size(); ++i) {
        if (scope == StatusScope::allocated && !asked_about(pins[i], member)) {
          (*result)[i][id] = status_entry_json(peername_of(id), "remote", "", now());
          continue;
        }
        a.cids.push_back(cids[i]);
        a.at.push_back(i);
      }
      if (!a.cids.empty()) others.push_back(std::move(a));
    }
  }
  if (others.empty()) return done(std::move(*result));
  // Each peer is asked for its CIDs from `first` on and answers a prefix of them (see
  // handle_request): asked again from where its answer ended until all are answered.
  auto remaining = std::make_shared<std::size_t>(others.size());
  // Which CIDs the pinset does not hold: a member that cannot be asked about one is reported
  // `unpinned`, as IPFS Cluster reports every member for such a CID without asking (it unpins
  // whatever is not in the pinset once it runs), with why it was not asked. A member down no
  // longer fails `pin rm --wait` of ipfs-cluster-ctl, which polls until every peer is unpinned.
  auto absent = std::make_shared<std::vector<bool>>(std::move(not_in_pinset));
  for (auto& other : others) {
    auto asked_of = std::make_shared<Asked>(std::move(other));
    auto ask = std::make_shared<std::function<void(std::size_t)>>();
    *ask = [this, result, remaining, done, ask, asked_of, absent](std::size_t first) {
      const std::vector<Cid>& all = asked_of->cids;
      const std::size_t asked = cids_that_fit(all, first, kMaxPinListBytes);
      auto finish = [this, result, remaining, done, ask, asked_of, absent, first, asked](Result<Bytes> r) {
        const std::string& id = asked_of->id;
        const std::size_t n = asked_of->cids.size();
        std::string answer = r ? as_string(*r) : std::string();
        WireReader reader(answer);
        std::uint64_t count = r ? reader.u64() : 0;
        bool ok = r && reader.ok() && count >= 1 && count <= asked;
        std::size_t end = ok ? first + count : n;  // a failure stands for every CID left
        for (std::size_t i = first; i < end; ++i) {
          std::string json = ok ? std::string(reader.bytes()) : std::string();
          if (!ok || !reader.ok()) {
            const std::string why = r ? "malformed status answer" : r.error().message;
            json = (*absent)[asked_of->at[i]]
                       ? status_entry_json(peername_of(id), "unpinned",
                                           "not in the pinset; no status from the peer: " + why,
                                           now())
                       : cluster_error_json(peername_of(id), why, now());
          }
          (*result)[asked_of->at[i]][id] = json;
        }
        if (end < n) return (*ask)(end);
        *ask = nullptr;  // it holds itself
        if (--*remaining == 0) done(std::move(*result));
      };
      auto to = PeerId::parse(asked_of->id);
      if (!to) return finish(make_error("bad peer id"));
      WireWriter w;
      write_cids(w, all, first, first + asked);
      std::string request = w.take();
      rpc_->call(*to, "status", as_view(request), finish, milliseconds(15000));
    };
    (*ask)(0);
  }
}

Result<LeavingPage> Peer::leaving_local(const std::optional<Cid>& after) {
  if (!worker_) return LeavingPage{};  // still starting: nothing tracked yet
  return worker_->leaving(after, kLeavingPage, kLeavingScan);
}

void Peer::gather_leaving(const std::optional<Cid>& after, bool local_only,
                          std::function<void(Result<LeavingRound>)> done) {
  auto here = leaving_local(after);
  if (!here) return done(here.error());
  struct Gathered {
    std::vector<LeavingPage> pages;
    std::size_t remaining = 1;
  };
  auto g = std::make_shared<Gathered>();
  g->pages.push_back(std::move(here).value());
  std::vector<std::string> others = other_members(local_only);
  g->remaining += others.size();
  auto one_done = [g, done, after] {
    if (--g->remaining == 0) done(merge_leaving(g->pages, after, kLeavingRound));
  };
  const std::string request = after ? std::string(as_chars(after->bytes())) : std::string();
  for (const auto& id : others) {
    call_peer(id, "leaving", request, [g, one_done](Result<Bytes> r) {
      // Partial on purpose, as gather_status is for a member it cannot ask: a member that is
      // down, of an earlier version (it fails the unknown method "leaving") or that answers
      // something unreadable only leaves its own leaving CIDs out of the listing. The CIDs
      // listed still show that member's entry (unpinned, with why it was not asked), and
      // GET /pins/<cid> asks every member about a CID not in the pinset.
      if (r) {
        if (auto page = decode_leaving(as_string(*r))) g->pages.push_back(std::move(*page));
      }
      one_done();
    }, milliseconds(15000));
  }
  one_done();
}

void Peer::run_local(const std::string& method, std::function<void(std::vector<Cid>, std::string)> done) {
  if (method == "sync") {
    worker_->sync([done](Result<std::size_t> r) {
      if (!r) return done({}, r.error().message);
      done({}, "");
    });
    return;
  }
  auto touched = worker_->recover_all();
  if (!touched) return done({}, touched.error().message);
  std::vector<Cid> cids;
  for (const auto& record : *touched) cids.push_back(record.cid());
  done(std::move(cids), "");
}

// Keys past kMaxPinListBytes of JSON are counted, not listed, so an answer fits a peer link's
// frame (a GC may remove millions of blocks).
std::string Peer::repo_gc_json(const std::string& peer, const std::string& peername,
                               const std::vector<Cid>& keys, const std::string& error) {
  std::string out = "{\"peer\":";
  append_json_string(out, peer);
  out += ",\"peername\":";
  append_json_string(out, peername);
  out += ",\"keys\":[";
  std::size_t listed = 0;
  for (const Cid& key : keys) {
    if (out.size() > kMaxPinListBytes) break;
    if (listed++ > 0) out += ',';
    out += "{\"key\":";
    append_json_string(out, key.to_string());
    out += '}';
  }
  if (listed < keys.size()) {
    if (listed > 0) out += ',';
    out += "{\"error\":";
    append_json_string(out, fmt::format("{} more blocks were removed (not listed)", keys.size() - listed));
    out += '}';
  }
  out += ']';
  if (!error.empty()) {
    out += ",\"error\":";
    append_json_string(out, error);
  }
  out += '}';
  return out;
}

void Peer::repo_gc_local(std::function<void(std::string json)> done) {
  const std::string& name = options_.config.cluster.peername;
  if (!worker_) return done(repo_gc_json(self_, name, {}, "this peer is still starting"));
  worker_->connector().repo_gc([this, done, name, alive = alive_](Result<std::vector<Cid>> r) {
    if (!*alive) return;
    done(r ? repo_gc_json(self_, name, *r, "") : repo_gc_json(self_, name, {}, r.error().message));
  });
}

std::vector<std::string> Peer::other_members(bool none) const {
  std::vector<std::string> others;
  if (none) return others;
  for (const auto& id : member_ids()) {
    if (id != self_) others.push_back(id);
  }
  return others;
}

void Peer::repo_gc_everywhere(bool local_only,
                              std::function<void(std::map<std::string, std::string>)> done) {
  struct Gathered {
    std::map<std::string, std::string> by_peer;
    std::size_t remaining = 1;
  };
  auto g = std::make_shared<Gathered>();
  std::vector<std::string> others = other_members(local_only);
  g->remaining += others.size();
  auto one_done = [g, done](std::string id, std::string json) {
    g->by_peer[id] = std::move(json);
    if (--g->remaining == 0) done(std::move(g->by_peer));
  };
  auto timeout = duration_cast<milliseconds>(options_.config.ipfshttp.repogc_timeout) + seconds(5);
  for (const auto& id : others) {
    call_peer(id, "repo_gc", {}, [id, one_done](Result<Bytes> r) {
      one_done(id, r ? as_string(*r) : repo_gc_json(id, "", {}, r.error().message));
    }, timeout);
  }
  repo_gc_local([this, one_done](std::string json) { one_done(self_, std::move(json)); });
}

void Peer::run_everywhere(std::string method, bool local_only,
                          std::function<void(std::vector<Cid>, std::vector<std::string>)> done) {
  struct Gathered {
    std::vector<Cid> touched;
    std::vector<std::string> errors;
    std::size_t remaining = 1;
  };
  auto g = std::make_shared<Gathered>();
  std::vector<std::string> others = other_members(local_only);
  g->remaining += others.size();
  auto one_done = [g, done] {
    if (--g->remaining == 0) done(std::move(g->touched), std::move(g->errors));
  };
  for (const auto& id : others) {
    auto to = PeerId::parse(id);
    if (!to) {
      g->errors.push_back(id + ": bad peer id");
      one_done();
      continue;
    }
    rpc_->call(*to, method, {}, [g, one_done, id](Result<Bytes> r) {
      if (!r) {
        g->errors.push_back(id + ": " + r.error().message);
      } else {
        auto answer = decode_touched(as_string(*r));
        if (!answer) {
          g->errors.push_back(id + ": malformed answer");
        } else {
          g->touched.insert(g->touched.end(), answer->listed.begin(), answer->listed.end());
          if (answer->unlisted > 0) {
            g->errors.push_back(fmt::format(
                "{}: touched {} pins; the statuses of the first {} are listed (`status --filter` "
                "shows the others)", id, answer->listed.size() + answer->unlisted, answer->listed.size()));
          }
        }
      }
      one_done();
    }, milliseconds(60000));
  }
  run_local(method, [this, g, one_done](std::vector<Cid> touched, std::string error) {
    if (!error.empty()) g->errors.push_back(self_ + ": " + error);
    g->touched.insert(g->touched.end(), touched.begin(), touched.end());
    one_done();
  });
}

void Peer::call_peer(const std::string& id, std::string_view method, std::string payload,
                     std::function<void(Result<Bytes>)> reply,
                     std::optional<std::chrono::milliseconds> timeout) {
  auto to = PeerId::parse(id);
  if (!to) return reply(to.error());
  rpc_->call(*to, method, as_view(payload), std::move(reply), timeout);
}

void Peer::remove_peer(const std::string& peer_id, Done done) {
  if (!driver_) return done(make_error("the peer is still starting"));
  auto ids = member_ids();
  if (std::find(ids.begin(), ids.end(), peer_id) == ids.end()) {
    return done(make_error(fmt::format("{} is not a member of this cluster", peer_id)));
  }
  // Membership changes commit at the leader like pins; retries cover a leadership transfer.
  remove_attempt(peer_id, 20, std::move(done));
}

void Peer::remove_attempt(const std::string& peer_id, int left, Done done) {
  auto again = [this, peer_id, left, done](Status s) {
    if (s || left <= 0) return done(s);
    auto timer = std::make_shared<asio::steady_timer>(io_, milliseconds(500));
    timer->async_wait([this, timer, peer_id, left, done, alive = alive_](const std::error_code& ec) {
      if (ec || !*alive) return;
      remove_attempt(peer_id, left - 1, done);
    });
  };
  if (stopped_ || !driver_) return done(make_error("the peer is shutting down"));
  if (driver_->node().role() == raft::Role::Leader) {
    raft::ConfChange change{raft::ConfChangeType::RemoveNode, peer_id, ""};
    driver_->propose_conf_change(change, duration_cast<milliseconds>(options_.config.raft.network_timeout),
                                 again);
    return;
  }
  auto leader = PeerId::parse(driver_->node().leader());
  if (!leader) return again(make_error("no leader to remove the peer"));
  rpc_->call(*leader, "remove", as_view(peer_id), [again](Result<Bytes> r) {
    again(r ? Status() : Status(r.error()));
  });
}

void Peer::write_shutdown_backup() {
  if (!state_) return;
  // A peer that never joined or applied anything (a failed join, a start that found no leader
  // in a fresh folder) has no pinset to back up: an empty backup would only rotate out a real
  // one (`state cleanup` writes one before it empties the folder).
  auto cluster = state_->cluster_id();
  auto applied = state_->applied();
  if (!cluster || cluster->empty() || !applied || applied->index == 0) return;
  auto reader = state_->open_reader();
  if (!reader) return;
  auto written = write_backup(options_.config_dir, *reader, *cluster,
                              static_cast<int>(options_.config.raft.backups_rotate));
  options_.log(written ? "pinset backup written to " + written->string()
                       : "cannot write the pinset backup: " + written.error().message);
}

void Peer::stop(bool leave, Done done) {
  // `done` gets OK, or why leaving the cluster failed (the peer stops either way).
  auto finish = [this, done](Status left) {
    stopped_ = true;
    if (rereplicator_) rereplicator_->stop();
    if (monitor_) monitor_->stop();
    if (worker_) worker_->stop();
    if (driver_) {
      (void)driver_->take_snapshot();
      driver_->stop();
    }
    write_shutdown_backup();
    if (rpc_) rpc_->close();
    done(left);
  };
  if (!leave || !driver_ || member_ids().size() <= 1) {
    if (!monitor_ || member_ids().size() <= 1) return finish({});
    // The others learn that this peer is going before its links close: the farewell's frames
    // get a moment to be written (close drops what is queued).
    monitor_->farewell();
    auto timer = std::make_shared<asio::steady_timer>(io_, milliseconds(200));
    timer->async_wait([timer, finish](const std::error_code&) { finish({}); });
    return;
  }
  remove_peer(self_, [this, finish](Status s) {
    if (!s) options_.log("could not leave the cluster: " + s.error().message);
    finish(s);
  });
}

std::string Peer::peername_of(const std::string& id) const {
  if (id == self_) return options_.config.cluster.peername;
  auto it = peernames_.find(id);
  return it == peernames_.end() ? id : it->second;
}

std::vector<std::string> Peer::other_member_addresses() const {
  std::vector<std::string> out;
  if (!state_) return out;
  auto reader = const_cast<store::StateDb&>(*state_).open_reader();
  if (!reader) return out;
  auto peers = reader->peers();
  if (!peers) return out;
  for (const auto& p : *peers) {
    if (p.id == self_) continue;
    for (const auto& a : parse_peer_record(p.id, p.addrs).addrs) out.push_back(a);
  }
  return out;
}

void Peer::start_monitor() {
  if (monitor_) return;
  Monitor::Hooks hooks;
  hooks.members = [this] { return member_ids(); };
  hooks.send = [this](const std::string& peer, const std::string& bytes) {
    if (auto to = PeerId::parse(peer)) (void)rpc_->send(*to, "metrics", as_view(bytes));
  };
  hooks.repo_stat = [this](std::function<void(Result<net::RepoStat>)> done) {
    worker_->connector().repo_stat(std::move(done));
  };
  hooks.ping_value = [this] {
    rapidjson::StringBuffer buffer;
    rapidjson::Writer<rapidjson::StringBuffer> w(buffer);
    w.StartObject();
    w.Key("peername"); w.String(options_.config.cluster.peername.c_str());
    w.Key("ipfs_id"); w.String(worker_->ipfs_id().id.c_str());
    w.Key("ipfs_addresses"); json_strings(w, worker_->ipfs_id().addresses);
    w.EndObject();
    return std::string(buffer.GetString(), buffer.GetSize());
  };
  hooks.log = options_.log;
  monitor_ = std::make_unique<Monitor>(io_, options_.config, self_, std::move(hooks));
  monitor_->start();
  rpc_->on_peer([this](const PeerId& peer, bool connected) {
    if (!connected) return;
    std::string id = peer.to_string();
    if (monitor_) monitor_->peer_connected(id);
    // A peer removed while it was stopped links up at its start. A voter would campaign and be
    // told then; a learner never campaigns, and no leader contacts it: it is told after an
    // election timeout, if still linked. (Not at once: a peer just removed while running gets
    // the removal entry from the leader, which keeps replicating to it, and leaves when it
    // applies it; the notice is for those that nothing reaches.)
    if (!driver_ || stopped_) return;
    auto later = std::make_shared<asio::steady_timer>(io_, options_.config.raft.election_timeout);
    later->async_wait([this, later, peer, id, alive = alive_](const std::error_code& ec) {
      if (ec || !*alive || stopped_ || !driver_ || !rpc_->connected(peer)) return;
      tell_if_removed(peer, id);
    });
  });
}

void Peer::start_rereplication() {
  if (rereplicator_ || options_.config.cluster.disable_repinning) return;
  Rereplicator::Hooks r;
  r.leading = [this] { return !stopped_ && driver_ && driver_->node().role() == raft::Role::Leader; };
  r.caught_up = [this] { return driver_->node().applied_index() >= driver_->node().commit_index(); };
  r.last_index = [this] { return driver_->node().last_index(); };
  r.applied_index = [this] { return driver_->node().applied_index(); };
  r.members = [this] {
    auto ids = member_ids();
    return std::set<std::string>(ids.begin(), ids.end());
  };
  r.down = [this] { return monitor_->down_past(options_.config.cluster.repin_grace_period); };
  r.reallocate = [this](const Pin& pin, ReplicationFactors factors,
                        const std::vector<PeerId>& live) {
    AllocationRequest request;
    request.rmin = factors.min;
    request.rmax = factors.max;
    request.current = live;
    request.keep_current = true;  // up, though perhaps not a candidate this minute
    request.user_allocations = pin.options.user_allocations;
    return allocate_pin(pin.cid, std::move(request));
  };
  r.commit = [this](std::vector<PinsetOp> ops, std::function<void(Status)> done) {
    commit_ops(std::move(ops), std::move(done));
  };
  r.log = options_.log;
  r.now = [this] { return now(); };
  r.default_factors = {options_.config.cluster.replication_factor_min,
                       options_.config.cluster.replication_factor_max};
  rereplicator_ = std::make_unique<Rereplicator>(io_, *state_, std::move(r));
  rereplicator_->start();
}

void Peer::connect_swarms_later() {
  auto delay = options_.config.ipfshttp.connect_swarms_delay;
  if (delay.count() <= 0) return;
  auto timer = std::make_shared<asio::steady_timer>(io_, delay);
  timer->async_wait([this, timer, alive = alive_](const std::error_code& ec) {
    if (ec || !*alive || stopped_ || !monitor_) return;
    std::size_t asked = 0;
    for (const Metric& ping : monitor_->metrics().latest("ping")) {
      if (ping.peer == self_ || !ping.valid) continue;
      rapidjson::Document doc;
      doc.Parse(ping.value.c_str());
      if (doc.HasParseError() || !doc.IsObject() || !doc.HasMember("ipfs_addresses") ||
          !doc["ipfs_addresses"].IsArray()) {
        continue;
      }
      for (const auto& a : doc["ipfs_addresses"].GetArray()) {
        if (!a.IsString()) continue;
        ++asked;
        std::string addr = a.GetString();
        worker_->connector().swarm_connect(addr, [this, addr, alive = alive_](Status s) {
          if (*alive && !s) options_.log(fmt::format("IPFS swarm/connect {} failed: {}", addr, s.error().message));
        });
      }
    }
    options_.log(fmt::format("asked IPFS to connect to {} address(es) of the other peers' IPFS daemons", asked));
  });
}

Result<std::vector<PeerId>> Peer::allocate_pin(const Cid& cid, AllocationRequest request) const {
  if (request.rmin != -1 && monitor_) request.candidates = balanced_order(cid, monitor_->candidates());
  return allocate(cid, request);
}

void Peer::local_graph(std::function<void(std::string)> done) {
  std::vector<std::string> linked;
  for (const auto& id : member_ids()) {
    auto p = PeerId::parse(id);
    if (id != self_ && p && rpc_->connected(*p)) linked.push_back(id);
  }
  auto write = [this, linked, done](const std::vector<std::string>& ipfs_links, const std::string& error) {
    rapidjson::StringBuffer buffer;
    rapidjson::Writer<rapidjson::StringBuffer> w(buffer);
    w.StartObject();
    w.Key("peername"); w.String(options_.config.cluster.peername.c_str());
    w.Key("cluster_links"); json_strings(w, linked);
    w.Key("ipfs_id"); w.String(worker_ ? worker_->ipfs_id().id.c_str() : "");
    w.Key("ipfs_links"); json_strings(w, ipfs_links);
    w.Key("ipfs_error"); w.String(error.c_str());
    w.EndObject();
    done(std::string(buffer.GetString(), buffer.GetSize()));
  };
  if (!worker_) return write({}, "this peer is still starting");
  worker_->connector().swarm_peers([write, alive = alive_](Result<std::vector<std::string>> peers) {
    if (!*alive) return;
    if (!peers) return write({}, peers.error().message);
    write(*peers, "");
  });
}

void Peer::gather_graph(std::function<void(std::string)> done) {
  auto ids = member_ids();
  auto parts = std::make_shared<std::vector<std::string>>(ids.size());
  auto remaining = std::make_shared<std::size_t>(ids.size());
  auto finish = [this, ids, parts, remaining, done] {
    if (--*remaining != 0) return;
    rapidjson::StringBuffer buffer;
    rapidjson::Writer<rapidjson::StringBuffer> w(buffer);
    std::vector<rapidjson::Document> docs(ids.size());
    for (std::size_t i = 0; i < ids.size(); ++i) {
      docs[i].Parse((*parts)[i].c_str());
      if (docs[i].HasParseError() || !docs[i].IsObject()) docs[i].SetObject();
    }
    auto text = [](const rapidjson::Document& d, const char* key) -> std::string {
      return d.HasMember(key) && d[key].IsString() ? d[key].GetString() : "";
    };
    auto list = [](const rapidjson::Document& d, const char* key) {
      std::vector<std::string> out;
      if (d.HasMember(key) && d[key].IsArray()) {
        for (const auto& v : d[key].GetArray()) {
          if (v.IsString()) out.emplace_back(v.GetString());
        }
      }
      return out;
    };
    w.StartObject();
    w.Key("cluster_id"); w.String(self_.c_str());
    w.Key("id_to_peername");
    w.StartObject();
    // A peer that did not answer is named as its last peer record says.
    for (std::size_t i = 0; i < ids.size(); ++i) {
      std::string name = text(docs[i], "peername");
      if (std::string known = peername_of(ids[i]); name.empty() && known != ids[i]) name = known;
      w.Key(ids[i].c_str()); w.String(name.c_str());
    }
    w.EndObject();
    w.Key("ipfs_links");
    w.StartObject();
    for (std::size_t i = 0; i < ids.size(); ++i) {
      std::string ipfs = text(docs[i], "ipfs_id");
      if (ipfs.empty()) continue;
      w.Key(ipfs.c_str()); json_strings(w, list(docs[i], "ipfs_links"));
    }
    w.EndObject();
    w.Key("cluster_links");
    w.StartObject();
    for (std::size_t i = 0; i < ids.size(); ++i) {
      w.Key(ids[i].c_str()); json_strings(w, list(docs[i], "cluster_links"));
    }
    w.EndObject();
    w.Key("cluster_trust_links");
    w.StartObject();
    for (const auto& id : ids) {
      w.Key(id.c_str()); w.Bool(true);  // Raft mode: every member is trusted
    }
    w.EndObject();
    w.Key("cluster_to_ipfs");
    w.StartObject();
    for (std::size_t i = 0; i < ids.size(); ++i) {
      std::string ipfs = text(docs[i], "ipfs_id");
      if (!ipfs.empty()) { w.Key(ids[i].c_str()); w.String(ipfs.c_str()); }
    }
    w.EndObject();
    w.Key("errors");  // clusterpin extension: members that could not be asked, and why
    w.StartObject();
    for (std::size_t i = 0; i < ids.size(); ++i) {
      std::string error = text(docs[i], "error");
      if (!error.empty()) { w.Key(ids[i].c_str()); w.String(error.c_str()); }
    }
    w.EndObject();
    w.EndObject();
    done(std::string(buffer.GetString(), buffer.GetSize()));
  };
  for (std::size_t i = 0; i < ids.size(); ++i) {
    if (ids[i] == self_) {
      local_graph([parts, i, finish](std::string json) {
        (*parts)[i] = std::move(json);
        finish();
      });
      continue;
    }
    auto to = PeerId::parse(ids[i]);
    if (!to) {
      (*parts)[i] = "{\"error\":\"bad peer id\"}";
      finish();
      continue;
    }
    rpc_->call(*to, "graph", {}, [parts, i, finish](Result<Bytes> r) {
      if (r) {
        (*parts)[i] = as_string(*r);
      } else {
        rapidjson::StringBuffer buffer;
        rapidjson::Writer<rapidjson::StringBuffer> w(buffer);
        w.StartObject();
        w.Key("error"); w.String(r.error().message.c_str());
        w.EndObject();
        (*parts)[i] = std::string(buffer.GetString(), buffer.GetSize());
      }
      finish();
    }, milliseconds(15000));
  }
}

}  // namespace clusterpin::node
