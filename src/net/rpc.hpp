// Peer RPC over secure links: request/response with ids and deadlines, one-way messages, one
// link per peer pair (when both dial, the link initiated by the smaller peer id wins on both
// sides), redial with exponential backoff and jitter, and a bounded backlog per peer so a slow or
// dead peer costs at most max_queue_bytes. Payloads are opaque bytes tagged with a method name.
// Single-threaded: every call and callback happens on the io_context's thread. Every call gets
// exactly one reply callback (answer, remote failure, timeout, full queue, lost link or close).
#pragma once

#include <asio.hpp>

#include <chrono>
#include <functional>
#include <memory>
#include <optional>
#include <string_view>

#include "core/bytes.hpp"
#include "core/identity.hpp"
#include "core/multiaddr.hpp"
#include "core/peer_id.hpp"
#include "core/result.hpp"
#include "net/dns_resolver.hpp"
#include "net/frame.hpp"
#include "net/secure_link.hpp"

namespace clusterpin::net {

struct RpcOptions {
  ClusterSecret secret{};
  // Default deadline of a call (service.json consensus.raft.network_timeout).
  std::chrono::milliseconds network_timeout{10'000};
  std::chrono::milliseconds handshake_timeout{5'000};
  std::chrono::milliseconds backoff_initial{100};
  std::chrono::milliseconds backoff_max{10'000};
  // A duplicate link that lost the tie-break stays readable this long, so answers already sent
  // on it still arrive; then it is closed.
  std::chrono::milliseconds duplicate_grace{2'000};
  std::size_t max_queue_bytes = 16u << 20;  // per peer: waiting for a link + unwritten on it
  FrameLimits frame_limits;
  AddressFailureLimiter::Limits failure_limits;
  LogSink log = log_to_stderr;
};

class RpcEndpoint {
  class Impl;

 public:
  using Reply = std::function<void(Result<Bytes>)>;

  // The handle a request handler answers through, once; it may be kept and used later. If it is
  // dropped unanswered, the caller's deadline expires.
  class Responder {
   public:
    void reply(ByteView payload);
    void fail(std::string_view message);
    const PeerId& peer() const { return peer_; }

   private:
    friend class RpcEndpoint;
    Responder(std::weak_ptr<Impl> impl, PeerId peer, std::uint64_t id);
    void answer(bool ok, ByteView payload);
    std::weak_ptr<Impl> impl_;
    PeerId peer_;
    std::uint64_t id_;
    bool answered_ = false;
  };

  using RequestHandler =
      std::function<void(const PeerId& from, std::string_view method, ByteView payload, Responder)>;
  using MessageHandler =
      std::function<void(const PeerId& from, std::string_view method, ByteView payload)>;
  using PeerHandler = std::function<void(const PeerId& peer, bool connected)>;

  RpcEndpoint(asio::io_context& io, const Identity& identity, RpcOptions options);
  ~RpcEndpoint();
  RpcEndpoint(const RpcEndpoint&) = delete;
  RpcEndpoint& operator=(const RpcEndpoint&) = delete;

  const PeerId& peer_id() const;

  // Listens on cluster.listen_multiaddress (/ip4/.../tcp/N or /ip6/.../tcp/N; port 0 = any).
  Status listen(const Multiaddr& address);
  // The address actually bound, with the real port, or nullopt when not listening.
  std::optional<Multiaddr> listen_address() const;

  // Makes a peer dialable at /ip4|ip6/.../tcp/N/p2p/<id>; the link is kept up from now on.
  Status add_peer(const Multiaddr& address);
  void remove_peer(const PeerId& peer);

  // Sends a request; reply runs once. timeout defaults to network_timeout. Without a link, the
  // request dials at once and fails with the reason when a dial made after it was queued fails.
  void call(const PeerId& peer, std::string_view method, ByteView payload, Reply reply,
            std::optional<std::chrono::milliseconds> timeout = std::nullopt);
  // Sends a one-way message; an error only when it cannot even be queued.
  Status send(const PeerId& peer, std::string_view method, ByteView payload);

  void on_request(RequestHandler handler);
  void on_message(MessageHandler handler);
  void on_peer(PeerHandler handler);

  bool connected(const PeerId& peer) const;
  std::size_t queued_bytes(const PeerId& peer) const;
  std::size_t pending_calls() const;

  // Closes every link and fails every pending call; idempotent.
  void close();

 private:
  std::shared_ptr<Impl> impl_;
};

// The wait before redial attempt number failures+1: initial * 2^failures capped at max, scaled by
// a jitter factor in [0.5, 1] (jitter01 in [0, 1]) so peers that lost each other do not redial in
// lockstep.
std::chrono::milliseconds redial_delay(unsigned failures, std::chrono::milliseconds initial,
                                       std::chrono::milliseconds max, double jitter01);

// The TCP endpoint of an /ip4 or /ip6 + /tcp multiaddr (a trailing /p2p is ignored): where to
// listen.
Result<asio::ip::tcp::endpoint> tcp_endpoint_of(const Multiaddr& address);

// Where to dial a peer: an /ip4 or /ip6 address, or a /dns, /dns4 or /dns6 name that is resolved
// at each dial (a restarted container changes address), + /tcp (a trailing /p2p is ignored).
struct DialTarget {
  asio::ip::tcp::endpoint endpoint;  // the port, and the address unless `host` is set
  std::string host;
  AddressFamily family = AddressFamily::any;
};
Result<DialTarget> dial_target_of(const Multiaddr& address);

}  // namespace clusterpin::net
