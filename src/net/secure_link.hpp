// Secure peer links over TCP (Asio): the clusterpin handshake with a timeout, then AEAD frames.
// Guarantees: a link is handed out only after the remote proved the cluster secret and its
// identity; any read, write, decode or authentication failure closes the link and reports the
// reason once; writes are coalesced and their backlog is visible (queued_bytes) so callers can
// bound it. The listener refuses addresses whose handshakes keep failing and caps handshakes in
// progress. Everything runs on the caller's io_context thread; nothing here is thread-safe.
#pragma once

#include <asio.hpp>

#include <chrono>
#include <functional>
#include <memory>
#include <string>
#include <unordered_map>
#include <vector>

#include "core/bytes.hpp"
#include "core/result.hpp"
#include "net/frame.hpp"
#include "net/noise_handshake.hpp"
#include "net/secure_link_limiter.hpp"

namespace clusterpin::net {

class HandshakeRun;

// Receives one log line (already complete, no newline).
using LogSink = std::function<void(const std::string&)>;
void log_to_stderr(const std::string& line);

struct LinkConfig {
  ClusterKeys keys;
  LocalIdentity identity;
  FrameLimits frame_limits;
  std::chrono::milliseconds handshake_timeout{5'000};  // connect + all three messages
  // Listener: handshakes in progress at most, in all and from one source (an IPv4 address, an
  // IPv6 /64). A connection beyond either ends the oldest handshake (of that source, or of
  // anyone) that has not yet proven the secret with its message 1; it is refused only when
  // all have. So silent connections (each also ends 1 s after its connect without a message)
  // and failing ones do not keep a peer that holds the secret out, short of a flood of more
  // new connections per round trip than these bounds.
  std::size_t max_pending_handshakes = 256;
  std::size_t max_pending_per_source = 16;
  // Failed handshakes are logged up to max_failures per source and window, then not.
  AddressFailureLimiter::Limits failure_limits;
  LogSink log = log_to_stderr;
};

class SecureLink : public std::enable_shared_from_this<SecureLink> {
 public:
  using FrameHandler = std::function<void(Bytes& frame)>;
  using CloseHandler = std::function<void(const Error& why)>;

  SecureLink(asio::ip::tcp::socket socket, LinkSession session, FrameLimits limits,
             bool initiated_locally);
  SecureLink(const SecureLink&) = delete;
  SecureLink& operator=(const SecureLink&) = delete;

  // Starts the read loop. on_frame sees each payload in order; on_close is called once.
  void start(FrameHandler on_frame, CloseHandler on_close);
  // Seals one payload into the write backlog and starts writing if idle.
  Status send(ByteView payload);
  // Closes the socket now; on_close runs with why (unless it already ran).
  void close(const Error& why);

  bool is_open() const { return !closed_; }
  bool initiated_locally() const { return initiated_locally_; }
  const IdentityKey& remote_identity() const { return remote_identity_; }
  // Differs between two links of one peer id only when they come from different runs of it.
  const noise::Key& remote_static() const { return remote_static_; }
  const std::string& remote_address() const { return remote_address_; }
  // Bytes sealed but not yet written to the socket.
  std::size_t queued_bytes() const { return pending_.size() + writing_.size(); }
  std::uint64_t frames_sent() const { return sealer_.frames_sealed(); }

 private:
  void read_more();
  void write_more();

  asio::ip::tcp::socket socket_;
  FrameSealer sealer_;
  FrameOpener opener_;
  IdentityKey remote_identity_;
  noise::Key remote_static_;
  std::string remote_address_;
  bool initiated_locally_;
  bool closed_ = false;
  bool in_frame_handler_ = false;  // on_frame_ is running (see close)
  bool started_ = false;
  Bytes pending_;  // sealed frames waiting for the current write to finish
  Bytes writing_;  // bytes owned by the write in flight
  Bytes read_buffer_;
  Bytes frame_;
  FrameHandler on_frame_;
  CloseHandler on_close_;
};

using LinkHandler = std::function<void(Result<std::shared_ptr<SecureLink>>)>;
// Decides whether the proven remote identity is the peer we meant to reach (dial side).
using RemoteCheck = std::function<Status(const IdentityKey&)>;

// Connects to endpoint and runs the handshake as initiator; done gets the link or the reason.
// check runs after message 2, before this side reveals its own identity in message 3.
void dial_secure(asio::io_context& io, const asio::ip::tcp::endpoint& endpoint,
                 std::shared_ptr<const LinkConfig> config, RemoteCheck check, LinkHandler done);

// Runs the responder handshake on an accepted socket (the listener uses this; exposed for tests).
void accept_secure(asio::ip::tcp::socket socket, std::shared_ptr<const LinkConfig> config,
                   std::shared_ptr<Message1ReplayFilter> replay_filter, LinkHandler done);

class SecureListener : public std::enable_shared_from_this<SecureListener> {
 public:
  using AcceptHandler = std::function<void(std::shared_ptr<SecureLink>)>;

  // Binds and starts accepting; every authenticated link goes to on_link.
  static Result<std::shared_ptr<SecureListener>> open(asio::io_context& io,
                                                      const asio::ip::tcp::endpoint& endpoint,
                                                      std::shared_ptr<const LinkConfig> config,
                                                      AcceptHandler on_link);
  asio::ip::tcp::endpoint local_endpoint() const;
  // Stops accepting and abandons handshakes in progress.
  void close();

  SecureListener(asio::io_context& io, std::shared_ptr<const LinkConfig> config,
                 AcceptHandler on_link);

 private:
  void accept_more();
  void handshake_finished(const std::string& source, Result<std::shared_ptr<SecureLink>> r,
                          bool evicted);
  bool evict_unproven(const std::string& source);

  asio::ip::tcp::acceptor acceptor_;
  std::shared_ptr<const LinkConfig> config_;
  AcceptHandler on_link_;
  AddressFailureLimiter limiter_;
  std::shared_ptr<Message1ReplayFilter> replay_filter_;
  std::vector<std::weak_ptr<HandshakeRun>> in_progress_;
  std::size_t pending_handshakes_ = 0;
  std::unordered_map<std::string, std::size_t> pending_by_source_;  // in progress, by source_key
  bool closed_ = false;
};

// The key a listener limits a connecting host by: its IPv4 address (also when mapped into IPv6),
// or the /64 of an IPv6 address (one host commonly holds a whole /64).
std::string source_key(const asio::ip::address& address);

}  // namespace clusterpin::net
