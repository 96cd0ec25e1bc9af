// Peer: one running clusterpin peer. It opens the SQLite stores, decides how to start (restart,
// new single-peer cluster, founding member of cluster.peers, or joining through bootstrap
// addresses), runs Raft over the secure RPC links, and offers the operations the REST API serves:
// commit pinset changes (forwarded to the leader, with commit_retries), read the local copy of
// the shared state, and describe the peers. Single-threaded: everything runs on one io_context.
#pragma once

#include <chrono>
#include <filesystem>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include <asio.hpp>

#include "core/command.hpp"
#include "core/config.hpp"
#include "core/identity.hpp"
#include "core/pin.hpp"
#include "core/wire.hpp"
#include "core/allocator.hpp"
#include "net/rpc.hpp"
#include "node/monitor.hpp"
#include "node/once_per_turn.hpp"
#include "node/pin_lists.hpp"
#include "node/pin_worker.hpp"
#include "node/rereplicator.hpp"
#include "node/raft_driver.hpp"
#include "store/raft_log.hpp"
#include "store/state_db.hpp"

namespace clusterpin::node {

struct PeerOptions {
  ServiceConfig config;
  std::filesystem::path config_dir;
  std::vector<std::string> bootstrap;  // --bootstrap, else cluster.bootstrap
  bool bootstrap_from_flag = false;    // --bootstrap given: existing state is refused
  bool allow_empty_secret = false;
  // The cluster this peer's data folder last held the state of (<config>/clusterpin.member), if
  // known: a data folder found empty is then a lost one, and founding that cluster is refused.
  std::string member_of;
  std::function<void(const std::string&)> log;  // one line, no newline
};

// What GET /id answers for one peer.
struct PeerInfo {
  std::string id;
  std::string peername;
  std::vector<std::string> addresses;
  std::vector<std::string> cluster_peers;
  std::vector<std::string> cluster_peers_addresses;
  std::string ipfs_id;
  std::vector<std::string> ipfs_addresses;
  std::string ipfs_error;
  std::string leader;  // clusterpin extension: the Raft leader as this peer sees it
  std::string version;  // of the clusterpin that answered (empty when it could not be asked)
  std::string error;
};
std::string peer_info_to_json(const PeerInfo& info);

// The id of a cluster founded by `voters`: a hash of the sorted peer ids, so every founding peer
// (and `state import`) derives the same id without talking.
std::string derive_cluster_id(std::vector<std::string> voters);

class Peer {
 public:
  using Done = std::function<void(Status)>;

  static Result<std::unique_ptr<Peer>> open(asio::io_context& io, PeerOptions options);
  ~Peer();

  // Listens, starts Raft (and joins when bootstrapping). `ready` runs once: OK when a leader is
  // known and this peer has caught up, or an error after wait_for_leader_timeout saying why.
  void start(Done ready);
  // Clean shutdown: leave the cluster first when asked, snapshot, stop. `done` runs once.
  void stop(bool leave, Done done);
  // Runs when this peer finds itself removed from the cluster (it should then shut down).
  void on_removed(std::function<void()> callback) { on_removed_ = std::move(callback); }

  // Commits pinset changes through the leader; OK means committed on a majority and applied here.
  void commit_ops(std::vector<PinsetOp> ops, Done done);
  void remove_peer(const std::string& peer_id, Done done);

  // The local copy of the shared state.
  Result<std::optional<Pin>> get_pin(const Cid& cid);
  store::StateDb& state() { return *state_; }
  const PeerId& id() const { return peer_id_; }
  std::string id_text() const { return self_; }
  // A member's name as its last peer record says (its id when none is known).
  std::string peername_of(const std::string& id) const;
  // The id of the cluster this peer belongs to (known once started; a joiner's once it joined).
  const std::string& cluster_id() const { return cluster_id_; }
  const ServiceConfig& config() const { return options_.config; }
  PeerInfo info() const;
  // info() once this peer asked its IPFS daemon for its id (at most 2 s: then with the error that
  // IPFS did not answer), so that `id` shows IPFS as it is now.
  void info_now(std::function<void(PeerInfo)> done);
  std::vector<std::string> member_ids() const;
  // The addresses of the other members, as this peer last knew them (for cluster.bootstrap).
  std::vector<std::string> other_member_addresses() const;
  // GET /peers: every member's PeerInfo (remote ones over RPC; an unreachable one has `error`).
  void gather_peer_infos(std::function<void(std::vector<PeerInfo>)> done);
  std::string leader() const { return driver_->node().leader(); }

  // Pin status (the local state). PinInfoShort JSON of this peer for a CID (`pin` from the
  // shared state, if there).
  std::string local_status_json(const Cid& cid, const std::optional<Pin>& pin);
  // Every member's PinInfoShort for each CID: result[i] maps peer id -> JSON. A member that
  // cannot be reached is reported as cluster_error with the reason. `scope`: every member is
  // asked (GET /pins), or only the CID's allocations and the rest are `remote` (the status of
  // one CID, as IPFS Cluster answers it), or only this peer (local=true).
  using StatusMap = std::vector<std::map<std::string, std::string>>;
  enum class StatusScope { every_member, allocated, local };
  void gather_status(std::vector<Cid> cids, StatusScope scope, std::function<void(StatusMap)> done);
  // One round of listing the CIDs that members are still unpinning after they left the pinset
  // (GET /pins lists them after the pinset's): every member (only this peer when `local_only`)
  // is asked for its leaving CIDs after `after`, and the answers are merged (merge_leaving: at
  // most kLeavingRound CIDs, sorted, once each; `next`, where the next round starts). Some may
  // have come back to the pinset meanwhile: the caller skips those. A member that cannot be
  // asked (down, or of a version without the "leaving" method) is left out: its leaving CIDs
  // are missing from the listing, while the CIDs listed still show its status (gather_status).
  // An error only when this peer's own tracker.db cannot be read.
  static constexpr std::size_t kLeavingRound = 500;
  void gather_leaving(const std::optional<Cid>& after, bool local_only,
                      std::function<void(Result<LeavingRound>)> done);
  // Runs `method` ("recover_all", "sync") on every member (or only here) and collects the CIDs
  // they touched, or their errors.
  void run_everywhere(std::string method, bool local_only,
                      std::function<void(std::vector<Cid> touched, std::vector<std::string> errors)> done);
  // repo/gc on the IPFS daemon of every member (or only this one's): peer id -> IPFS Cluster's
  // RepoGC object (peer, peername, keys [{key} | {error}], error). A peer that cannot be reached
  // or whose IPFS fails gets an object with its error.
  void repo_gc_everywhere(bool local_only, std::function<void(std::map<std::string, std::string>)> done);
  Result<std::optional<TrackerRecord>> recover_local(const Cid& cid) { return worker_->recover(cid); }
  // Recovers `cid` here and (unless local_only) on the other members gather_status asks about it
  // (StatusScope::allocated); `errors` maps each member whose recover failed to why.
  void recover_one(const Cid& cid, bool local_only,
                   std::function<void(std::map<std::string, std::string> errors)> done);
  // The cluster_error entry gather_status gives a member, for an error found elsewhere.
  std::string status_error_json(const std::string& id, const std::string& error);
  PinWorker& worker() { return *worker_; }
  // Metrics and alerts (null until the peer is ready).
  const Monitor* monitor() const { return monitor_.get(); }
  // Allocations for a pin: request.candidates are filled from the metrics (every member with
  // a valid ping and every allocator.balanced.allocate_by metric, in the balanced order).
  Result<std::vector<PeerId>> allocate_pin(const Cid& cid, AllocationRequest request) const;
  // GET /health/graph: the ConnectGraph JSON, gathered from every member.
  void gather_graph(std::function<void(std::string json)> done);
  void call_peer(const std::string& id, std::string_view method, std::string payload,
                 std::function<void(Result<Bytes>)> reply,
                 std::optional<std::chrono::milliseconds> timeout = std::nullopt);
  UnixNanos now() const;

 private:
  Peer(asio::io_context& io, PeerOptions options, Identity identity);
  Status open_stores();
  Status start_raft_with(std::unique_ptr<store::LogWriter> writer, raft::DurableState durable);
  void on_applied(const raft::Entry& entry, const std::optional<Command>& command,
                  const store::StateDb::Applied& effects);
  void run_local(const std::string& method, std::function<void(std::vector<Cid>, std::string error)> done);
  void repo_gc_local(std::function<void(std::string json)> done);
  // The members but this peer (none when `none`: a --local request).
  std::vector<std::string> other_members(bool none) const;
  static std::string repo_gc_json(const std::string& peer, const std::string& peername,
                                  const std::vector<Cid>& keys, const std::string& error);
  void handle_request(const PeerId& from, std::string_view method, ByteView payload,
                      net::RpcEndpoint::Responder responder);
  void handle_message(const PeerId& from, std::string_view method, ByteView payload);
  void remove_attempt(const std::string& peer_id, int attempts_left, Done done);
  void commit_data(std::string data, int attempts_left, Done done);
  // Pinset changes asked of this peer within one turn of the io thread share one Raft entry (up
  // to kOpsPerEntry ops, what `pin add -` sends per request, and kMaxEntryBytes), proposed here
  // or forwarded to the leader as one: one log row, message and apply per turn instead of one
  // per REST request. Each asker is answered when the entries holding its ops are applied here
  // (or gets the first error). An entry never outgrows a peer link's frame: a request of 10,000
  // pins that each name an allocation encodes to over 1 MiB, which used to wedge replication.
  void commit_gathered();
  static constexpr std::size_t kOpsPerEntry = 10000;
  static constexpr std::size_t kMaxEntryBytes = 512 * 1024;
  // Peer-link messages that list pins stay under this size (a frame holds 1 MiB): a "status"
  // request names CIDs up to it, its answer holds statuses up to it (or one status) and the
  // asker asks again for the CIDs not answered; a "recover_all" answer lists touched CIDs up to
  // it and counts the others.
  static constexpr std::size_t kMaxPinListBytes = 512 * 1024;
  // A "leaving" answer lists at most kLeavingPage CIDs (and those that fit in kMaxPinListBytes)
  // and looks at most at kLeavingScan tracker records (TrackerStore::load_leaving).
  static constexpr std::size_t kLeavingPage = 500;
  static constexpr std::size_t kLeavingScan = 10000;
  Result<LeavingPage> leaving_local(const std::optional<Cid>& after);
  void commit_at_leader(std::string data, int attempts_left, Done done,
                        std::chrono::steady_clock::time_point waited_since);
  void wait_applied(raft::Index index, Done done);
  void release_applied_waiters(raft::Index index);
  // Asks the bootstrap addresses in turn to add this peer; answers the index it joined at.
  void join(std::size_t next, std::function<void(Result<raft::Index>)> joined);
  // Calls on_removed_ (once) when the configuration at the applied `index` lacks this peer and
  // `index` is past member_since_.
  void check_membership(raft::Index index);
  // `id`: the sender's id as its raft message names it (checked equal to `from`).
  void tell_if_removed(const PeerId& from, const std::string& id);
  void removal_reported(const PeerId& from, ByteView payload);
  // Waits for a leader and for this peer to catch up; `since` is the last progress (or start).
  void check_ready(Done ready, std::chrono::steady_clock::time_point since);
  std::chrono::steady_clock::duration ready_wait_limit() const;
  static constexpr int kJoinedWaits = 4;
  void announce_addresses();
  void start_monitor();
  void start_rereplication();
  // ipfs_connector.ipfshttp.connect_swarms_delay after ready: swarm/connect this peer's IPFS
  // daemon to every other peer's (addresses from their ping metrics).
  void connect_swarms_later();
  void local_graph(std::function<void(std::string json)> done);  // this peer's part of the graph
  void write_shutdown_backup();
  void add_peer_addresses(const std::string& record_id, const std::string& record_text);
  void load_known_addresses();
  std::vector<std::string> own_addresses() const;
  std::string describe_reachability() const;

  asio::io_context& io_;
  PeerOptions options_;
  Identity identity_;
  PeerId peer_id_;
  std::string self_;
  std::map<std::string, std::string> peernames_;  // id -> peername, from the peer records
  std::filesystem::path data_dir_;
  std::string cluster_id_;
  std::optional<store::StateDb> state_;
  std::unique_ptr<net::RpcEndpoint> rpc_;
  std::unique_ptr<RaftDriver> driver_;
  std::unique_ptr<PinWorker> worker_;
  std::unique_ptr<Monitor> monitor_;
  std::unique_ptr<Rereplicator> rereplicator_;
  std::multimap<raft::Index, Done> applied_waiters_;
  std::function<void()> on_removed_;
  bool removed_ = false;
  std::map<std::string, std::chrono::steady_clock::time_point> removal_told_;  // by tell_if_removed
  bool joining_ = false;
  // The log index this peer joined at (raft.db's member_since; 0 for a founding peer).
  raft::Index member_since_ = 0;
  std::uint64_t last_ready_progress_ = 0;  // applied index + snapshot bytes, last seen by check_ready
  bool announced_ = false;
  bool stopped_ = false;
  std::shared_ptr<bool> alive_ = std::make_shared<bool>(true);
  // See commit_gathered: the ops gathered for the next entry, encoded back to back.
  WireWriter gathered_body_;
  std::size_t gathered_count_ = 0;
  std::vector<Done> gathered_done_;
  WireWriter op_scratch_;  // one op's encoding, before it joins gathered_body_
  OncePerTurn commit_gathered_soon_;
  // Each gathered entry carries a request id (core/request_id.hpp): this process's
  // random session, its number, and the lowest number still open (proposed, not yet ended).
  std::uint64_t request_session_ = 0;
  std::uint64_t next_request_seq_ = 1;
  std::set<std::uint64_t> open_requests_;
  OncePerTurn end_state_reads_soon_;  // the lookups of one turn share a read (StateDb::begin_reads)
};

}  // namespace clusterpin::node
