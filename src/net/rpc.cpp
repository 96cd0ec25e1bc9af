// RpcEndpoint. State lives in Impl, shared with every async handler, so a handler that runs after
// close() finds closed_ set and does nothing. Deadlines sit in one ordered set served by one timer
// (re-armed only when an earlier deadline arrives), which keeps a call cheap at high rates.
#include "net/rpc.hpp"

#include <sodium.h>

#include <algorithm>
#include <cassert>
#include <deque>
#include <random>
#include <set>
#include <unordered_map>
#include <vector>

#include <fmt/core.h>

#include "net/address_text.hpp"
#include "net/rpc_wire.hpp"

namespace clusterpin::net {

using asio::ip::tcp;
using Clock = std::chrono::steady_clock;

Result<tcp::endpoint> tcp_endpoint_of(const Multiaddr& address) {
  const auto host = address.host();
  const auto transport = address.transport();
  const auto port = address.port();
  if (!host || !transport || *transport != Protocol::tcp || !port ||
      (host->protocol != Protocol::ip4 && host->protocol != Protocol::ip6)) {
    return make_error(
        fmt::format("multiaddr \"{}\" is not a TCP address (expected /ip4/<ip>/tcp/<port> or "
                    "/ip6/<ip>/tcp/<port>)",
                    address.to_string()));
  }
  asio::error_code ec;
  const auto ip = asio::ip::make_address(host->value, ec);
  if (ec) {
    return make_error(fmt::format("multiaddr \"{}\": \"{}\" is not an IP address",
                                  address.to_string(), host->value));
  }
  return tcp::endpoint(ip, *port);
}

Result<DialTarget> dial_target_of(const Multiaddr& address) {
  const auto host = address.host();
  const auto transport = address.transport();
  const auto port = address.port();
  const bool named = host && (host->protocol == Protocol::dns || host->protocol == Protocol::dns4 ||
                              host->protocol == Protocol::dns6);
  if (!named) {
    auto endpoint = tcp_endpoint_of(address);
    if (!endpoint) {
      return make_error(fmt::format(
          "multiaddr \"{}\" is not a TCP address (expected /ip4/<ip>/tcp/<port>, "
          "/ip6/<ip>/tcp/<port> or /dns4/<name>/tcp/<port>)",
          address.to_string()));
    }
    return DialTarget{*endpoint, {}, AddressFamily::any};
  }
  if (!transport || *transport != Protocol::tcp || !port) {
    return make_error(fmt::format("multiaddr \"{}\" is not a TCP address (expected "
                                  "/dns4/<name>/tcp/<port>)",
                                  address.to_string()));
  }
  if (auto valid = validate_host_name(host->value); !valid)
    return make_error(fmt::format("multiaddr \"{}\": {}", address.to_string(), valid.error().message));
  DialTarget target;
  target.endpoint.port(*port);
  target.host = host->value;
  target.family = host->protocol == Protocol::dns4   ? AddressFamily::v4
                  : host->protocol == Protocol::dns6 ? AddressFamily::v6
                                                     : AddressFamily::any;
  return target;
}

std::chrono::milliseconds redial_delay(unsigned failures, std::chrono::milliseconds initial,
                                       std::chrono::milliseconds max, double jitter01) {
  assert(jitter01 >= 0 && jitter01 <= 1);
  // Doubling stops well before the shift could overflow; the cap applies long before that.
  const unsigned exponent = std::min(failures, 30u);
  const double base =
      std::min(static_cast<double>(max.count()),
               static_cast<double>(initial.count()) * static_cast<double>(1ull << exponent));
  return std::chrono::milliseconds(
      static_cast<std::chrono::milliseconds::rep>(base * (0.5 + 0.5 * jitter01)));
}

class RpcEndpoint::Impl : public std::enable_shared_from_this<Impl> {
 public:
  Impl(asio::io_context& io, const Identity& identity, RpcOptions options)
      : io_(io),
        options_(std::move(options)),
        self_id_(identity.peer_id()),
        deadline_timer_(io),
        rng_(randombytes_random()) {
    auto config = std::make_shared<LinkConfig>();
    config->keys = ClusterKeys::derive(options_.secret);
    config->identity = LocalIdentity::from_identity(identity);
    config->frame_limits = options_.frame_limits;
    config->handshake_timeout = options_.handshake_timeout;
    config->failure_limits = options_.failure_limits;
    config->log = options_.log;
    link_config_ = std::move(config);
  }

  // ---- public operations ----

  Status listen(const Multiaddr& address) {
    Result<tcp::endpoint> endpoint = tcp_endpoint_of(address);
    if (!endpoint) {
      return make_error("cluster.listen_multiaddress: " + endpoint.error().message);
    }
    std::weak_ptr<Impl> weak = shared_from_this();
    auto listener = SecureListener::open(io_, *endpoint, link_config_,
                                         [weak](std::shared_ptr<SecureLink> link) {
                                           if (auto self = weak.lock())
                                             self->link_established(std::move(link));
                                         });
    if (!listener) return listener.error();
    listener_ = *listener;
    return {};
  }

  std::optional<Multiaddr> listen_address() const {
    if (!listener_) return std::nullopt;
    const tcp::endpoint ep = listener_->local_endpoint();
    auto text = fmt::format("/{}/{}/tcp/{}", ep.address().is_v6() ? "ip6" : "ip4",
                            ep.address().to_string(), ep.port());
    auto parsed = Multiaddr::parse(text);
    if (!parsed) return std::nullopt;
    return *parsed;
  }

  Status add_peer(const Multiaddr& address) {
    const auto id = address.peer_id();
    if (!id) {
      return make_error(
          fmt::format("peer address \"{}\" has no /p2p/<peer id> component", address.to_string()));
    }
    if (*id == self_id_)
      return make_error(fmt::format("peer address \"{}\" is this peer", address.to_string()));
    Result<DialTarget> target = dial_target_of(address);
    if (!target) return target.error();
    Peer& peer = peer_for(*id);
    peer.dial_to = std::move(target).value();
    peer.failures = 0;
    if (!peer.active) dial(peer);
    return {};
  }

  void remove_peer(const PeerId& id) {
    auto it = peers_.find(id);
    if (it == peers_.end()) return;
    Peer& peer = *it->second;
    peer.dial_to.reset();
    if (peer.redial_timer) peer.redial_timer->cancel();
    auto links = peer.retired;
    if (peer.active) links.push_back(peer.active);
    peer.active.reset();
    for (auto& l : links) l->close(make_error("rpc: peer removed"));
    fail_calls_to(id, "rpc: peer was removed", /*only_sent=*/false);
    peers_.erase(it);
  }

  void call(const PeerId& id, std::string_view method, ByteView payload, Reply reply,
            std::optional<std::chrono::milliseconds> timeout) {
    assert(reply && "every call needs a reply handler");
    if (closed_) return post_reply(std::move(reply), make_error("rpc: endpoint is closed"));
    if (method.size() > kMaxMethodSize) {
      return post_reply(std::move(reply),
                        make_error(fmt::format("rpc: method name \"{}\" is longer than {} bytes",
                                               method, kMaxMethodSize)));
    }
    Peer* peer = known_peer(id);
    if (!peer) return post_reply(std::move(reply), unknown_peer(id));
    const std::uint64_t id_num = next_id_++;
    Bytes message;
    encode_rpc(RpcKind::request, id_num, method, payload, message);
    const auto wait = timeout.value_or(options_.network_timeout);
    Pending p{id, std::string(method), std::move(reply), Clock::now() + wait, false, wait};
    auto [it, inserted] = pending_.emplace(id_num, std::move(p));
    assert(inserted && "request ids are unique: a 64-bit counter does not wrap");
    add_deadline(it->second.deadline, id_num);
    if (Status st = enqueue(*peer, std::move(message), id_num); !st) {
      Reply r = std::move(it->second.reply);
      drop_pending(id_num);
      post_reply(std::move(r), st.error());
    }
  }

  Status send(const PeerId& id, std::string_view method, ByteView payload) {
    if (closed_) return make_error("rpc: endpoint is closed");
    if (method.size() > kMaxMethodSize) {
      return make_error(
          fmt::format("rpc: method name \"{}\" is longer than {} bytes", method, kMaxMethodSize));
    }
    Peer* peer = known_peer(id);
    if (!peer) return unknown_peer(id);
    Bytes message;
    encode_rpc(RpcKind::one_way, 0, method, payload, message);
    return enqueue(*peer, std::move(message), 0);
  }

  void answer(const PeerId& id, std::uint64_t request, bool ok, ByteView payload) {
    if (closed_) return;
    Peer* peer = known_peer(id);
    if (!peer) return;  // removed since it asked
    Bytes message;
    encode_rpc(ok ? RpcKind::response : RpcKind::failure, request, {}, payload, message);
    if (message.size() > options_.frame_limits.max_plaintext) {
      // Dropped, the caller would only learn of it when its deadline passes: it learns why now.
      const std::string why = fmt::format(
          "rpc: the answer of {} bytes exceeds the frame maximum of {} bytes", message.size(),
          options_.frame_limits.max_plaintext);
      options_.log(fmt::format("{} (to {}); sent as a failure", why, id.to_string()));
      message.clear();
      encode_rpc(RpcKind::failure, request, {}, as_bytes(why), message);
    }
    if (Status st = enqueue(*peer, std::move(message), 0); !st) {
      options_.log(
          fmt::format("rpc: dropped an answer to {}: {}", id.to_string(), st.error().message));
    }
  }

  bool connected(const PeerId& id) const {
    auto it = peers_.find(id);
    return it != peers_.end() && it->second->active && it->second->active->is_open();
  }

  std::size_t queued_bytes(const PeerId& id) const {
    auto it = peers_.find(id);
    return it == peers_.end() ? 0 : backlog(*it->second);
  }

  std::size_t pending_calls() const { return pending_.size(); }

  void close() {
    if (closed_) return;
    closed_ = true;
    if (listener_) listener_->close();
    deadline_timer_.cancel();
    for (auto& [id, peer] : peers_) {
      if (peer->redial_timer) peer->redial_timer->cancel();
      auto links = peer->retired;
      if (peer->active) links.push_back(peer->active);
      peer->active.reset();
      for (auto& l : links) l->close(make_error("rpc: endpoint closed"));
    }
    peers_.clear();
    auto pending = std::move(pending_);
    pending_.clear();
    deadlines_.clear();
    for (auto& [n, p] : pending) post_reply(std::move(p.reply), make_error("rpc: endpoint closed"));
  }

  const PeerId& self_id() const { return self_id_; }

  RequestHandler on_request_;
  MessageHandler on_message_;
  PeerHandler on_peer_;

 private:
  struct Queued {
    Bytes message;
    std::uint64_t request;  // 0 unless a request (skipped if it expired while queued)
    // Queued while a dial was already under way: that dial's failure may predate the peer's
    // return, so the request gets one dial of its own before it fails.
    bool joined_dial = false;
  };

  struct Peer {
    explicit Peer(PeerId i) : id(std::move(i)) {}
    PeerId id;
    std::optional<DialTarget> dial_to;
    std::shared_ptr<SecureLink> active;
    std::vector<std::shared_ptr<SecureLink>> retired;
    std::deque<Queued> queue;
    std::size_t queue_bytes = 0;
    bool dialing = false;
    std::uint64_t dial_id = 0;  // of the dial under way (a dial of a name tries each address)
    // Failed dials, and links that closed before backoff_max, in a row: the redial delay grows
    // with it, so a link that every handshake sets up and something closes at once (a peer of
    // another version refusing our messages) is not redialled every 100 ms for ever.
    unsigned failures = 0;
    Clock::time_point linked_at{};  // when the active link became active
    std::unique_ptr<asio::steady_timer> redial_timer;
    std::vector<std::unique_ptr<asio::steady_timer>> retire_timers;
  };

  struct Pending {
    PeerId peer;
    std::string method;
    Reply reply;
    Clock::time_point deadline;
    bool sent;  // written to a link (lost with it) rather than waiting in the peer's queue
    std::chrono::milliseconds timeout;
  };

  Peer* known_peer(const PeerId& id) {
    auto it = peers_.find(id);
    return it == peers_.end() ? nullptr : it->second.get();
  }

  static Error unknown_peer(const PeerId& id) {
    return make_error(
        fmt::format("rpc: peer {} is unknown: it has no address (add_peer) and has not connected",
                    id.to_string()));
  }

  Peer& peer_for(const PeerId& id) {
    auto it = peers_.find(id);
    if (it == peers_.end()) it = peers_.emplace(id, std::make_unique<Peer>(id)).first;
    return *it->second;
  }

  static std::size_t backlog(const Peer& peer) {
    return peer.queue_bytes + (peer.active ? peer.active->queued_bytes() : 0);
  }

  void post_reply(Reply reply, Error error) {
    asio::post(io_, [reply = std::move(reply), error = std::move(error)]() mutable {
      reply(std::move(error));
    });
  }

  // ---- sending ----

  Status enqueue(Peer& peer, Bytes message, std::uint64_t request) {
    if (message.size() > options_.frame_limits.max_plaintext) {
      return make_error(fmt::format(
          "rpc: message of {} bytes to peer {} exceeds the frame maximum of {} bytes; split it",
          message.size(), peer.id.to_string(), options_.frame_limits.max_plaintext));
    }
    const std::size_t queued = backlog(peer);
    if (queued + message.size() > options_.max_queue_bytes) {
      return make_error(fmt::format(
          "rpc: send queue to peer {} is full ({} bytes queued, limit {}); the peer is slow or "
          "unreachable",
          peer.id.to_string(), queued, options_.max_queue_bytes));
    }
    if (peer.active) {
      if (Status st = peer.active->send(message); !st) return st;
      if (request != 0) pending_.at(request).sent = true;
      return {};
    }
    peer.queue_bytes += message.size();
    peer.queue.push_back(Queued{std::move(message), request, peer.dialing});
    // While a redial waits out its backoff, one-way messages wait with it; a request dials at
    // once, and fails at once if that dial fails (see dial_finished).
    if (request != 0 && redial_waiting_.erase(peer.id) != 0 && peer.redial_timer) {
      peer.redial_timer->cancel();
    }
    if (!redial_waiting_.contains(peer.id)) dial(peer);
    return {};
  }

  void flush(Peer& peer) {
    while (!peer.queue.empty() && peer.active) {
      Queued q = std::move(peer.queue.front());
      peer.queue.pop_front();
      peer.queue_bytes -= q.message.size();
      if (q.request != 0) {
        auto it = pending_.find(q.request);
        if (it == pending_.end()) continue;  // expired while waiting: do not make the peer work
        it->second.sent = true;
      }
      if (Status st = peer.active->send(q.message); !st) break;  // link closing: its handler runs
    }
  }

  // ---- links ----

  void dial(Peer& peer) {
    if (closed_ || peer.dialing || peer.active || !peer.dial_to) return;
    peer.dialing = true;
    peer.dial_id = ++dials_;
    const PeerId expected = peer.id;
    std::weak_ptr<Impl> weak = shared_from_this();
    const std::uint64_t dial_id = peer.dial_id;
    if (peer.dial_to->host.empty())
      return dial_addresses(expected, dial_id, {peer.dial_to->endpoint}, 0, {});
    const std::uint16_t port = peer.dial_to->endpoint.port();
    resolve_host(io_, load_resolver_config(), peer.dial_to->host, peer.dial_to->family,
                 [weak, expected, dial_id, port](Result<std::vector<asio::ip::address>> r) {
                   auto self = weak.lock();
                   if (!self) return;
                   Peer* peer = self->closed_ ? nullptr : self->known_peer(expected);
                   if (peer != nullptr && peer->dial_id != dial_id) return;  // removed, added again
                   if (!r) return self->dial_finished(expected, r.error());
                   if (r->empty())
                     return self->dial_finished(expected, make_error("the name has no address"));
                   std::vector<tcp::endpoint> endpoints;
                   for (const auto& ip : *r) endpoints.emplace_back(ip, port);
                   self->dial_addresses(expected, dial_id, std::move(endpoints), 0, {});
                 });
  }

  // Dials endpoints[index], and on failure the next one (a name's addresses in the resolver's
  // order: a peer listening on ::1 only is still reached through a name that also has
  // 127.0.0.1). The dial fails when every address failed, with each address's reason.
  void dial_addresses(const PeerId& expected, std::uint64_t dial_id,
                      std::vector<tcp::endpoint> endpoints, std::size_t index, std::string failures) {
    std::weak_ptr<Impl> weak = shared_from_this();
    const tcp::endpoint endpoint = endpoints[index];
    dial_secure(
        io_, endpoint, link_config_,
        [expected](const IdentityKey& key) -> Status {
          const PeerId remote = PeerId::from_ed25519_public_key(key);
          if (remote == expected) return {};
          return make_error(fmt::format("expected peer {} but the remote is peer {}; refusing it",
                                        expected.to_string(), remote.to_string()));
        },
        [weak, expected, dial_id, endpoints = std::move(endpoints), index,
         failures = std::move(failures)](Result<std::shared_ptr<SecureLink>> r) mutable {
          auto self = weak.lock();
          if (!self) {
            if (r) (*r)->close(make_error("rpc: endpoint gone"));
            return;
          }
          if (r || endpoints.size() == 1) return self->dial_finished(expected, std::move(r));
          if (!failures.empty()) failures += "; ";
          failures += fmt::format("{}: {}", address_text(endpoints[index]), r.error().message);
          Peer* peer = self->closed_ ? nullptr : self->known_peer(expected);
          // Removed (and perhaps added again, with a dial of its own), or linked meanwhile (it
          // dialled in): the other addresses are not wanted, and this is no failure to count.
          if (peer == nullptr || peer->dial_id != dial_id) return;
          if (peer->active) {
            peer->dialing = false;
            return;
          }
          if (index + 1 == endpoints.size())
            return self->dial_finished(expected, make_error(std::move(failures)));
          self->dial_addresses(expected, dial_id, std::move(endpoints), index + 1, std::move(failures));
        });
  }

  void dial_finished(const PeerId& id, Result<std::shared_ptr<SecureLink>> r) {
    auto it = peers_.find(id);
    if (closed_ || it == peers_.end()) {
      if (r) (*r)->close(make_error("rpc: peer no longer wanted"));
      return;
    }
    Peer& peer = *it->second;
    peer.dialing = false;
    if (r) return link_established(std::move(*r));
    ++peer.failures;
    // Log the first failure and then at powers of two, so a dead peer does not flood the log.
    if ((peer.failures & (peer.failures - 1)) == 0) {
      options_.log(fmt::format("rpc: cannot reach peer {} (attempt {}): {}", id.to_string(),
                               peer.failures, r.error().message));
    }
    // Requests waiting for this link fail now rather than at their deadline: the caller learns
    // at once that the peer is unreachable. One-way messages stay queued for the next dial, and
    // so do requests that joined this dial after it started: they get a dial of their own now.
    std::set<std::uint64_t> retried;
    std::erase_if(peer.queue, [&](Queued& q) {
      if (q.request == 0) return false;
      if (q.joined_dial) {
        q.joined_dial = false;
        retried.insert(q.request);
        return false;
      }
      peer.queue_bytes -= q.message.size();
      return true;
    });
    fail_calls_to(id, fmt::format("rpc: cannot reach peer {}: {}", id.to_string(), r.error().message),
                  /*only_sent=*/false, retried);
    if (retried.empty()) {
      schedule_redial(peer);
    } else {
      dial(peer);
    }
  }

  void schedule_redial(Peer& peer) {
    if (closed_ || !peer.dial_to) return;
    const std::chrono::milliseconds delay =
        redial_delay(peer.failures, options_.backoff_initial, options_.backoff_max,
                     std::uniform_real_distribution<double>(0.0, 1.0)(rng_));
    if (!peer.redial_timer) peer.redial_timer = std::make_unique<asio::steady_timer>(io_);
    peer.redial_timer->expires_after(delay);
    redial_waiting_.insert(peer.id);
    std::weak_ptr<Impl> weak = shared_from_this();
    peer.redial_timer->async_wait([weak, id = peer.id](const asio::error_code& ec) {
      auto self = weak.lock();
      if (!self || self->closed_) return;
      self->redial_waiting_.erase(id);
      if (ec) return;
      auto it = self->peers_.find(id);
      if (it != self->peers_.end()) self->dial(*it->second);
    });
  }

  // Which peer dialed a link: the tie-break keeps the link dialed by the smaller peer id.
  const PeerId& initiator_of(const SecureLink& link, const Peer& peer) const {
    return link.initiated_locally() ? self_id_ : peer.id;
  }

  void link_established(std::shared_ptr<SecureLink> link) {
    if (closed_) return link->close(make_error("rpc: endpoint closed"));
    const PeerId remote = PeerId::from_ed25519_public_key(link->remote_identity());
    if (remote == self_id_) return link->close(make_error("rpc: connected to itself"));
    Peer& peer = peer_for(remote);
    std::weak_ptr<Impl> weak = shared_from_this();
    SecureLink* raw = link.get();
    link->start(
        [weak, remote, raw](Bytes& frame) {
          if (auto self = weak.lock()) self->frame_received(remote, *raw, frame);
        },
        [weak, remote, raw](const Error& why) {
          if (auto self = weak.lock()) self->link_closed(remote, raw, why);
        });
    if (!link->is_open()) return;
    bool wins = true;
    if (peer.active && peer.active->is_open() &&
        peer.active->remote_static() == link->remote_static()) {
      const PeerId& new_initiator = initiator_of(*link, peer);
      const PeerId& old_initiator = initiator_of(*peer.active, peer);
      // Same dialer: the new link replaces a stale one. Different: the smaller id's dial wins,
      // which both sides compute identically.
      wins = new_initiator == old_initiator || new_initiator == std::min(self_id_, remote);
    }
    // A link from another run of the peer (another Noise static key) always wins: that peer
    // restarted, so the link of its previous run is dead even when this side has not seen it
    // close (a half-open socket after a crash or a move to another address).
    if (!wins) return retire(peer, std::move(link));
    const bool was_connected = peer.active != nullptr;
    if (peer.active) retire(peer, std::move(peer.active));
    options_.log(fmt::format("rpc: connected to peer {} at {} ({})", remote.to_string(),
                             link->remote_address(),
                             link->initiated_locally() ? "dialed" : "accepted"));
    peer.active = std::move(link);
    peer.linked_at = Clock::now();
    if (peer.redial_timer) peer.redial_timer->cancel();
    flush(peer);
    if (!was_connected && on_peer_) on_peer_(remote, true);
  }

  void retire(Peer& peer, std::shared_ptr<SecureLink> link) {
    std::weak_ptr<SecureLink> weak = link;
    peer.retired.push_back(std::move(link));
    // Timers of links already closed are dropped here; retiring happens only on double dials.
    std::erase_if(peer.retire_timers, [&](const auto& t) { return t->expiry() < Clock::now(); });
    auto& timer = peer.retire_timers.emplace_back(
        std::make_unique<asio::steady_timer>(io_, options_.duplicate_grace));
    // Also runs (aborted) when the peer is dropped, which closes the link as well.
    timer->async_wait([weak](const asio::error_code&) {
      if (auto l = weak.lock())
        l->close(make_error("rpc: duplicate link closed after the tie-break"));
    });
  }

  void link_closed(const PeerId& id, SecureLink* link, const Error& why) {
    if (closed_) return;
    auto it = peers_.find(id);
    if (it == peers_.end()) return;
    Peer& peer = *it->second;
    std::erase_if(peer.retired, [link](const auto& l) { return l.get() == link; });
    if (peer.active.get() != link) {
      if (!peer.dial_to && !peer.active && peer.retired.empty()) forget_later(id);  // see below
      return;
    }
    peer.active.reset();
    options_.log(fmt::format("rpc: link to peer {} closed: {}", id.to_string(), why.message));
    // The remote forgot requests with the link; fail them now rather than at their deadline.
    fail_calls_to(id, fmt::format("rpc: link to peer {} lost: {}", id.to_string(), why.message),
                  /*only_sent=*/true);
    if (on_peer_) on_peer_(id, false);
    if (!peer.dial_to) return forget_later(id);
    if (Clock::now() - peer.linked_at >= options_.backoff_max) {
      peer.failures = 0;  // it served a while: redial at once
    } else {
      ++peer.failures;
    }
    schedule_redial(peer);
  }

  // A peer that only dialled in (a client, a joiner not in the peer table yet) and has no link
  // left: nothing reaches it until it dials again, and what waits for it is stale by then (its
  // calls failed with the link; Raft retransmits). Its calls fail and its entry goes, so memory
  // stays bounded however many identities come and go. Deferred: a link closes from inside
  // calls that still use the entry (a send that fails, remove_peer).
  void forget_later(const PeerId& id) {
    asio::post(io_, [weak = weak_from_this(), id] {
      auto self = weak.lock();
      if (!self || self->closed_) return;
      auto it = self->peers_.find(id);
      if (it == self->peers_.end()) return;
      const Peer& peer = *it->second;
      if (peer.dial_to || peer.active || !peer.retired.empty() || peer.dialing) return;
      self->peers_.erase(it);
      self->fail_calls_to(id, fmt::format("rpc: link to peer {} lost", id.to_string()),
                          /*only_sent=*/false);
    });
  }

  // ---- receiving ----

  void frame_received(const PeerId& from, SecureLink& link, Bytes& frame) {
    if (closed_) return;
    Result<RpcMessageView> m = decode_rpc(frame);
    if (!m) {
      return link.close(make_error(fmt::format("rpc: peer {} sent a malformed message: {}",
                                               from.to_string(), m.error().message)));
    }
    switch (m->kind) {
      case RpcKind::request:
        if (!on_request_) {
          answer(from, m->id, false,
                 as_bytes(fmt::format("no handler for method \"{}\"", m->method)));
          return;
        }
        on_request_(from, m->method, m->payload, Responder(weak_from_this(), from, m->id));
        return;
      case RpcKind::one_way:
        if (on_message_) on_message_(from, m->method, m->payload);
        return;
      case RpcKind::response:
      case RpcKind::failure: {
        auto it = pending_.find(m->id);
        // Late (already timed out) or not ours to answer: ignore.
        if (it == pending_.end() || !(it->second.peer == from)) return;
        Reply reply = std::move(it->second.reply);
        std::string method = std::move(it->second.method);
        drop_pending(m->id);
        if (m->kind == RpcKind::response) {
          reply(Bytes(m->payload.begin(), m->payload.end()));
        } else {
          reply(make_error(
              fmt::format("rpc: peer {} failed \"{}\": {}", from.to_string(), method,
                          std::string_view(reinterpret_cast<const char*>(m->payload.data()),
                                           m->payload.size()))));
        }
        return;
      }
    }
  }

  // ---- deadlines ----

  void add_deadline(Clock::time_point at, std::uint64_t id) {
    deadlines_.emplace(at, id);
    if (!timer_armed_ || at < armed_for_) arm_deadline_timer(at);
  }

  void arm_deadline_timer(Clock::time_point at) {
    timer_armed_ = true;
    armed_for_ = at;
    deadline_timer_.expires_at(at);
    std::weak_ptr<Impl> weak = shared_from_this();
    deadline_timer_.async_wait([weak, at](const asio::error_code& ec) {
      auto self = weak.lock();
      if (!self || self->closed_ || ec) return;
      if (self->armed_for_ != at) return;  // superseded by an earlier deadline
      self->timer_armed_ = false;
      self->expire(Clock::now());
    });
  }

  void expire(Clock::time_point now) {
    while (!deadlines_.empty() && deadlines_.begin()->first <= now) {
      const std::uint64_t id = deadlines_.begin()->second;
      deadlines_.erase(deadlines_.begin());
      auto it = pending_.find(id);
      if (it == pending_.end()) continue;
      Pending p = std::move(it->second);
      pending_.erase(it);
      p.reply(make_error(fmt::format("rpc: \"{}\" to peer {} timed out after {} ms", p.method,
                                     p.peer.to_string(), p.timeout.count())));
      if (closed_) return;
    }
    if (!deadlines_.empty() && !timer_armed_) arm_deadline_timer(deadlines_.begin()->first);
  }

  void drop_pending(std::uint64_t id) {
    auto it = pending_.find(id);
    if (it == pending_.end()) return;
    deadlines_.erase(std::make_pair(it->second.deadline, id));
    pending_.erase(it);
  }

  void fail_calls_to(const PeerId& peer, const std::string& why, bool only_sent,
                     const std::set<std::uint64_t>& except = {}) {
    std::vector<std::uint64_t> ids;
    for (const auto& [id, p] : pending_) {
      if (p.peer == peer && (p.sent || !only_sent) && !except.contains(id)) ids.push_back(id);
    }
    for (std::uint64_t id : ids) {
      auto it = pending_.find(id);
      Reply reply = std::move(it->second.reply);
      drop_pending(id);
      post_reply(std::move(reply), make_error(why));
    }
  }

  asio::io_context& io_;
  RpcOptions options_;
  PeerId self_id_;
  std::shared_ptr<const LinkConfig> link_config_;
  std::shared_ptr<SecureListener> listener_;
  std::unordered_map<PeerId, std::unique_ptr<Peer>> peers_;
  std::set<PeerId> redial_waiting_;
  std::uint64_t dials_ = 0;  // dials started (Peer::dial_id)
  std::unordered_map<std::uint64_t, Pending> pending_;
  std::set<std::pair<Clock::time_point, std::uint64_t>> deadlines_;
  asio::steady_timer deadline_timer_;
  bool timer_armed_ = false;
  Clock::time_point armed_for_{};
  // Call ids start at random in every run (0 marks one-way messages): answers to a peer without
  // a link wait for its next one, and are matched by (peer, id), so ids counted from 1 in every
  // run gave a restarted peer's first calls the answers its previous run had asked for.
  std::uint64_t next_id_ = first_call_id();
  static std::uint64_t first_call_id() {
    std::uint64_t id = 0;
    randombytes_buf(&id, sizeof(id));
    return (id >> 1) | 1;  // not 0, and 2^63 calls from wrapping to it
  }
  std::mt19937_64 rng_;
  bool closed_ = false;
};

// ---- Responder ----

RpcEndpoint::Responder::Responder(std::weak_ptr<Impl> impl, PeerId peer, std::uint64_t id)
    : impl_(std::move(impl)), peer_(std::move(peer)), id_(id) {}

void RpcEndpoint::Responder::reply(ByteView payload) {
  answer(true, payload);
}

void RpcEndpoint::Responder::fail(std::string_view message) {
  answer(false, as_bytes(message));
}

void RpcEndpoint::Responder::answer(bool ok, ByteView payload) {
  if (answered_) return;  // one answer per request; a second would confuse the caller's ids
  answered_ = true;
  if (auto impl = impl_.lock()) impl->answer(peer_, id_, ok, payload);
}

// ---- RpcEndpoint ----

RpcEndpoint::RpcEndpoint(asio::io_context& io, const Identity& identity, RpcOptions options)
    : impl_(std::make_shared<Impl>(io, identity, std::move(options))) {}

RpcEndpoint::~RpcEndpoint() {
  impl_->close();
}

const PeerId& RpcEndpoint::peer_id() const {
  return impl_->self_id();
}
Status RpcEndpoint::listen(const Multiaddr& address) {
  return impl_->listen(address);
}
std::optional<Multiaddr> RpcEndpoint::listen_address() const {
  return impl_->listen_address();
}
Status RpcEndpoint::add_peer(const Multiaddr& address) {
  return impl_->add_peer(address);
}
void RpcEndpoint::remove_peer(const PeerId& peer) {
  impl_->remove_peer(peer);
}

void RpcEndpoint::call(const PeerId& peer, std::string_view method, ByteView payload, Reply reply,
                       std::optional<std::chrono::milliseconds> timeout) {
  impl_->call(peer, method, payload, std::move(reply), timeout);
}

Status RpcEndpoint::send(const PeerId& peer, std::string_view method, ByteView payload) {
  return impl_->send(peer, method, payload);
}

void RpcEndpoint::on_request(RequestHandler handler) {
  impl_->on_request_ = std::move(handler);
}
void RpcEndpoint::on_message(MessageHandler handler) {
  impl_->on_message_ = std::move(handler);
}
void RpcEndpoint::on_peer(PeerHandler handler) {
  impl_->on_peer_ = std::move(handler);
}
bool RpcEndpoint::connected(const PeerId& peer) const {
  return impl_->connected(peer);
}
std::size_t RpcEndpoint::queued_bytes(const PeerId& peer) const {
  return impl_->queued_bytes(peer);
}
std::size_t RpcEndpoint::pending_calls() const {
  return impl_->pending_calls();
}
void RpcEndpoint::close() {
  impl_->close();
}

}  // namespace clusterpin::net
