// The Kubo RPC client: every call clusterpin makes to its IPFS daemon (POST /api/v0/...) over the
// async HTTP client, on the daemon's io_context. It accepts Kubo's documented answers (streamed
// pin/add progress, NDJSON pin/ls, base32 CIDv1) and js-ipfs's (one JSON body, base58btc CIDv1,
// numbers as strings, no pin/update). CIDs from IPFS are compared by their bytes, never as text.
// Failures are one sentence: "IPFS error (pin/add): <IPFS's own message>" or
// "IPFS daemon unreachable at /ip4/127.0.0.1/tcp/5001: connection refused".
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <asio.hpp>

#include "core/cid.hpp"
#include "core/pin.hpp"
#include "core/result.hpp"
#include "net/http_client.hpp"

namespace clusterpin::net {

struct IpfsConnectorOptions {
  // ipfs_connector.ipfshttp.node_multiaddress: /ip4|ip6/<addr>/tcp/<port> or /unix/<path>.
  std::string node_multiaddress = "/ip4/127.0.0.1/tcp/5001";
  // ipfs_request_timeout: the whole answer of a short call (id, repo/stat, pin/ls of one CID,
  // swarm/connect); for long streams (pin/ls of everything) the longest silence.
  std::chrono::milliseconds request_timeout{std::chrono::minutes(5)};
  // pin_timeout: pin/add and pin/update are cancelled when they make no progress for this long
  // (no byte at all, or Kubo's {"Progress":N} not growing). 0 = no limit.
  std::chrono::milliseconds pin_timeout{std::chrono::minutes(2)};
  // unpin_timeout: the whole answer of pin/rm.
  std::chrono::milliseconds unpin_timeout{std::chrono::hours(3)};
  // repogc_timeout: the whole answer of repo/gc.
  std::chrono::milliseconds repogc_timeout{std::chrono::hours(24)};
  std::chrono::milliseconds connect_timeout{std::chrono::seconds(5)};
  // unpin_disable: pin_rm fails without calling IPFS (as IPFS Cluster's connector does), so
  // nothing this peer's IPFS holds is unpinned, e.g. during an upgrade.
  bool unpin_disable = false;
  // Rate limiter (as IPFS Cluster's): after more than `failures_before_limit` consecutive
  // failures to reach the daemon, requests start at most once per `limited_interval` until one
  // gets an answer.
  int failures_before_limit = 10;
  std::chrono::milliseconds limited_interval{std::chrono::seconds(1)};
};

// An IPFS path: its namespace ("ipfs", "ipns" or "ipld"), its root (a CID for ipfs and ipld, a
// name for ipns) and what follows the root ("" or "/sub/path", empty segments dropped).
struct IpfsPath {
  std::string ns;
  std::string root;
  std::string rest;
  std::optional<Cid> cid;  // the root as a CID (always for ipfs/ipld, when it is one for ipns)

  // "/<ns>/<root><rest>", the form sent to IPFS.
  std::string to_string() const;
  // A plain /ipfs/<cid> or /ipld/<cid>: names its CID without asking IPFS.
  bool is_plain_cid() const { return ns != "ipns" && rest.empty(); }
};

// Checks the form of an IPFS path (what resolve accepts) without contacting anything: an error
// names what is wrong and what is accepted.
Result<IpfsPath> parse_ipfs_path(std::string_view text);

// What `id` reports: the IPFS peer id and the addresses it listens on.
struct IpfsId {
  std::string id;
  std::vector<std::string> addresses;
};

// What `repo/stat?size-only=true` reports, in bytes.
struct RepoStat {
  std::uint64_t repo_size = 0;
  std::uint64_t storage_max = 0;
};

// One pin of a listing: its CID and IPFS's type ("recursive", "direct"). Return false to stop.
using PinVisitor = std::function<bool(const Cid& cid, std::string_view type)>;

// Every callback runs once, on the io_context's thread. Destroying the connector abandons the
// requests in flight: their callbacks never run. Use it on the io_context's thread only.
class IpfsConnector {
 public:
  IpfsConnector(asio::io_context& io, IpfsConnectorOptions options);
  ~IpfsConnector();
  IpfsConnector(const IpfsConnector&) = delete;
  IpfsConnector& operator=(const IpfsConnector&) = delete;

  // `id`: the daemon's peer id and addresses; also how readiness is checked.
  void id(std::function<void(Result<IpfsId>)> done);

  // Pins `cid` (recursive or direct). Nothing is asked of pin/add when pin/ls already shows it
  // with that mode. Cancelled after pin_timeout without progress. A direct pin of a CID that is
  // already pinned recursively counts as done. `check_first` false skips that pin/ls for a
  // recursive pin (the first attempt of a CID new to this peer): Kubo's pin/add answers at once
  // for a CID it already pins recursively, so the check only saves a call when it finds the pin.
  // `cancel`, when given, lets the caller end it early (cancel() fails it with its reason).
  void pin_add(const Cid& cid, PinMode mode, std::function<void(Status)> done,
               bool check_first = true, std::shared_ptr<HttpCancel> cancel = {});

  // Pins every CID of `cids` (at least one) recursively with one pin/add (arg=<cid> repeated;
  // IPFS pins them one after another), without asking pin/ls first: for pins new to this peer.
  // Succeeds when IPFS answered with every CID in its Pins list; any failure (an error, no
  // progress for pin_timeout, a CID missing from Pins) fails the whole call, and some CIDs may be
  // pinned by then.
  void pin_add_many(std::vector<Cid> cids, std::function<void(Status)> done,
                    std::shared_ptr<HttpCancel> cancel = {});

  // Pins `to` recursively with pin/update from `from` (which stays pinned: unpin=false), reusing
  // what both DAGs share. When pin/update fails in any way (js-ipfs has none, `from` is not
  // pinned, no answer within pin_timeout: Kubo answers only when done) it falls back to
  // pin_add(to, recursive), whose progress lines keep it going as long as blocks arrive.
  void pin_update(const Cid& from, const Cid& to, std::function<void(Status)> done,
                  std::shared_ptr<HttpCancel> cancel = {});

  // Unpins `cid`; a CID that IPFS reports "not pinned" counts as unpinned, so it succeeds.
  // With unpin_disable it fails at once, naming the setting.
  void pin_rm(const Cid& cid, std::function<void(Status)> done);

  // Streams the pins of `type` ("recursive", "direct", or "all" = recursive then direct; the
  // indirect pins, one per block, are never listed) to `visit`, one at a time as the NDJSON lines
  // arrive, so a million pins are never held at once. js-ipfs's {"Keys":{...}} body is read too.
  // A visitor returning false ends the listing early with success. `pace`, when set, spaces the
  // reads of the listing (see HttpBodySink::pace): a background reader gives way to other work.
  void pin_ls(std::string_view type, PinVisitor visit, std::function<void(Status)> done,
              ReadPace pace = {});

  // Whether `cid` is pinned recursively or directly (an indirect pin does not count).
  void pin_ls_one(const Cid& cid, std::function<void(Result<bool>)> done);

  // repo/stat?size-only=true; numbers may come as JSON numbers or strings.
  void repo_stat(std::function<void(Result<RepoStat>)> done);

  // swarm/connect to another IPFS daemon's multiaddr (with its /p2p/ id).
  void swarm_connect(std::string_view multiaddr, std::function<void(Status)> done);

  // The IPFS peer ids this daemon is connected to (swarm/peers), each once, in the order given.
  void swarm_peers(std::function<void(Result<std::vector<std::string>>)> done);

  // The CID an IPFS path names: /ipfs/<cid>[/sub/path], /ipns/<name>[/sub/path] or
  // /ipld/<cid>[/sub/path], through resolve?arg=<path>. A plain /ipfs/<cid> or /ipld/<cid> is
  // answered without asking IPFS. A path IPFS cannot resolve fails quoting IPFS; a path that is not
  // one of those forms fails before anything is sent.
  void resolve(std::string_view path, std::function<void(Result<Cid>)> done);

  // repo/gc: the CIDs of the removed blocks. An error line in the stream makes it fail, quoting
  // IPFS.
  void repo_gc(std::function<void(Result<std::vector<Cid>>)> done);

  const std::string& node_multiaddress() const;
  // Failures to reach the daemon since it last answered (drives the rate limiter).
  int consecutive_failures() const;

  struct State;

 private:
  std::shared_ptr<State> state_;
};

}  // namespace clusterpin::net
