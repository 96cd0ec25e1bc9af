// Secure links: HandshakeRun drives one PeerHandshake over a socket (2-byte big-endian length
// before each handshake message, a single timer for connect + handshake), SecureLink runs the
// frame loops, SecureListener accepts with bounds on handshakes in progress (making room by
// ending the oldest one that has not proven the secret). Every async handler
// holds a shared_ptr to its owner, so closing never leaves a handler with a dangling object.
#include "net/secure_link.hpp"

#include <algorithm>
#include <cassert>

#include <fmt/core.h>

#include "net/address_text.hpp"

namespace clusterpin::net {

using asio::ip::tcp;

void log_to_stderr(const std::string& line) {
  fmt::print(stderr, "{}\n", line);
}

namespace {

constexpr std::size_t kReadChunk = 64 * 1024;
constexpr std::chrono::milliseconds kFirstMessageDeadline{1'000};
constexpr std::string_view kNotClusterPeer =
    "it does not share this cluster's secret or is not a clusterpin peer";

}  // namespace

// ---- HandshakeRun ----

class HandshakeRun : public std::enable_shared_from_this<HandshakeRun> {
 public:
  HandshakeRun(tcp::socket socket, std::shared_ptr<const LinkConfig> config, bool initiator,
               RemoteCheck check, std::shared_ptr<Message1ReplayFilter> filter, LinkHandler done)
      : socket_(std::move(socket)),
        timer_(socket_.get_executor()),
        first_message_timer_(socket_.get_executor()),
        config_(std::move(config)),
        handshake_(initiator ? PeerHandshake::initiator(config_->keys, config_->identity)
                             : PeerHandshake::responder(config_->keys, config_->identity)),
        initiator_(initiator),
        check_(std::move(check)),
        filter_(std::move(filter)),
        done_(std::move(done)) {}

  void start_connect(const tcp::endpoint& endpoint) {
    address_ = address_text(endpoint);
    arm_timer();
    socket_.async_connect(endpoint, [self = shared_from_this()](const asio::error_code& ec) {
      if (self->finished_) return;
      if (ec) {
        return self->finish(make_error(
            fmt::format("secure link: cannot connect to {}: {}", self->address_, ec.message())));
      }
      asio::error_code ignored;
      self->socket_.set_option(tcp::no_delay(true), ignored);
      self->step();
    });
  }

  void start_accepted() {
    asio::error_code ec;
    const tcp::endpoint remote = socket_.remote_endpoint(ec);
    address_ = ec ? std::string("unknown address") : address_text(remote);
    socket_.set_option(tcp::no_delay(true), ec);
    arm_timer();
    arm_first_message_timer();
    step();
  }

  void abort(const std::string& why) { finish(make_error(why)); }

  // Responder: message 1 was read, passed mac1 (only a holder of the secret makes one) and was
  // not a replay. Until then a run may be evicted for a newer connection (SecureListener).
  bool proven() const { return proven_; }
  bool finished() const { return finished_; }
  const std::string& address() const { return address_; }
  // The listener's bookkeeping: the source key it counted the run under, and whether it ended
  // the run to make room (not a failure of that source).
  std::string source;
  bool evicted = false;
  void set_done(LinkHandler done) { done_ = std::move(done); }

 private:
  void arm_timer() {
    timer_.expires_after(config_->handshake_timeout);
    timer_.async_wait([self = shared_from_this()](const asio::error_code& ec) {
      if (ec || self->finished_) return;
      self->finish(make_error(fmt::format(
          "secure link with {}: handshake timed out after {} ms ({} or is unreachable/overloaded)",
          self->address_, self->config_->handshake_timeout.count(), kNotClusterPeer)));
    });
  }

  // A peer sends message 1 as soon as it connected: a connection silent for
  // kFirstMessageDeadline (or the handshake timeout, when shorter) gives its slot back.
  void arm_first_message_timer() {
    const auto deadline = std::min(kFirstMessageDeadline, config_->handshake_timeout);
    first_message_timer_.expires_after(deadline);
    first_message_timer_.async_wait([self = shared_from_this(), deadline](const asio::error_code& ec) {
      if (ec || self->finished_ || self->received_any_) return;
      self->finish(make_error(fmt::format(
          "secure link from {}: no handshake message within {} ms of the connect ({})",
          self->address_, deadline.count(), kNotClusterPeer)));
    });
  }

  void step() {
    if (handshake_.done()) {
      LinkSession session = handshake_.finish();
      timer_.cancel();
      finished_ = true;
      auto link = std::make_shared<SecureLink>(std::move(socket_), std::move(session),
                                               config_->frame_limits, initiator_);
      auto done = std::move(done_);
      done(std::move(link));
      return;
    }
    if (!handshake_.wants_write()) return read_header();
    Result<Bytes> message = handshake_.write();
    if (!message) return fail_with(message.error());
    assert(message->size() <= kMaxHandshakeMessage);
    out_.clear();
    out_.push_back(static_cast<std::uint8_t>(message->size() >> 8));
    out_.push_back(static_cast<std::uint8_t>(message->size()));
    out_.insert(out_.end(), message->begin(), message->end());
    asio::async_write(socket_, asio::buffer(out_),
                      [self = shared_from_this()](const asio::error_code& ec, std::size_t) {
                        if (self->finished_) return;
                        if (ec) return self->lost(ec);
                        self->step();
                      });
  }

  void read_header() {
    asio::async_read(socket_, asio::buffer(header_),
                     [self = shared_from_this()](const asio::error_code& ec, std::size_t) {
                       if (self->finished_) return;
                       if (ec) return self->lost(ec);
                       const std::size_t len =
                           (std::size_t{self->header_[0]} << 8) | self->header_[1];
                       if (len == 0 || len > kMaxHandshakeMessage) {
                         return self->finish(make_error(fmt::format(
                             "secure link with {}: handshake message of {} bytes is invalid; {}",
                             self->address_, len, kNotClusterPeer)));
                       }
                       self->read_body(len);
                     });
  }

  void read_body(std::size_t len) {
    message_.resize(len);
    asio::async_read(socket_, asio::buffer(message_),
                     [self = shared_from_this()](const asio::error_code& ec, std::size_t) {
                       if (self->finished_) return;
                       if (ec) return self->lost(ec);
                       self->on_message();
                     });
  }

  void on_message() {
    const bool was_first = !initiator_ && !received_any_;
    received_any_ = true;
    if (Status st = handshake_.read(message_); !st) return fail_with(st.error());
    if (was_first && filter_) {
      // Checked after mac1 so unauthenticated garbage cannot fill the filter.
      auto e = PeerHandshake::message1_ephemeral(message_);
      assert(e.has_value());
      if (!filter_->first_sight(*e)) {
        return finish(make_error(
            fmt::format("secure link with {}: replayed handshake message 1 refused", address_)));
      }
    }
    if (was_first) {
      proven_ = true;
      first_message_timer_.cancel();
    }
    if (initiator_ && handshake_.remote_identity() && check_) {
      if (Status st = check_(*handshake_.remote_identity()); !st) {
        return finish(
            make_error(fmt::format("secure link to {}: {}", address_, st.error().message)));
      }
    }
    step();
  }

  void lost(const asio::error_code& ec) {
    if (initiator_ && !handshake_.remote_identity()) {
      return finish(make_error(fmt::format(
          "secure link to {}: the remote closed the connection during the handshake ({}): {}",
          address_, ec.message(), kNotClusterPeer)));
    }
    if (!initiator_ && !received_any_) {
      return finish(
          make_error(fmt::format("secure link from {}: connection closed before a handshake ({})",
                                 address_, ec.message())));
    }
    finish(make_error(fmt::format(
        "secure link with {}: the remote closed the connection during the handshake ({}); it may "
        "have refused our identity",
        address_, ec.message())));
  }

  void fail_with(const Error& e) {
    finish(make_error(
        fmt::format("secure link {} {}: {}", initiator_ ? "to" : "from", address_, e.message)));
  }

  void finish(Result<std::shared_ptr<SecureLink>> result) {
    if (finished_) return;
    finished_ = true;
    timer_.cancel();
    first_message_timer_.cancel();
    asio::error_code ignored;
    socket_.close(ignored);
    auto done = std::move(done_);
    if (done) done(std::move(result));
  }

  tcp::socket socket_;
  asio::steady_timer timer_;
  asio::steady_timer first_message_timer_;
  std::shared_ptr<const LinkConfig> config_;
  PeerHandshake handshake_;
  bool initiator_;
  RemoteCheck check_;
  std::shared_ptr<Message1ReplayFilter> filter_;
  LinkHandler done_;
  std::string address_;
  std::array<std::uint8_t, 2> header_{};
  Bytes message_;
  Bytes out_;
  bool received_any_ = false;
  bool proven_ = false;
  bool finished_ = false;
};

void dial_secure(asio::io_context& io, const tcp::endpoint& endpoint,
                 std::shared_ptr<const LinkConfig> config, RemoteCheck check, LinkHandler done) {
  auto run = std::make_shared<HandshakeRun>(tcp::socket(io), std::move(config), true,
                                            std::move(check), nullptr, std::move(done));
  run->start_connect(endpoint);
}

void accept_secure(tcp::socket socket, std::shared_ptr<const LinkConfig> config,
                   std::shared_ptr<Message1ReplayFilter> replay_filter, LinkHandler done) {
  auto run = std::make_shared<HandshakeRun>(std::move(socket), std::move(config), false, nullptr,
                                            std::move(replay_filter), std::move(done));
  run->start_accepted();
}

// ---- SecureLink ----

SecureLink::SecureLink(tcp::socket socket, LinkSession session, FrameLimits limits,
                       bool initiated_locally)
    : socket_(std::move(socket)),
      sealer_(std::move(session.send), limits),
      opener_(std::move(session.receive), limits),
      remote_identity_(session.remote_identity),
      remote_static_(session.remote_static),
      initiated_locally_(initiated_locally) {
  asio::error_code ec;
  const tcp::endpoint remote = socket_.remote_endpoint(ec);
  remote_address_ = ec ? std::string("unknown address") : address_text(remote);
  // A peer that vanishes without a FIN is eventually noticed even on a link with no traffic.
  socket_.set_option(asio::socket_base::keep_alive(true), ec);
}

void SecureLink::start(FrameHandler on_frame, CloseHandler on_close) {
  assert(!started_ && "a link's read loop starts once");
  started_ = true;
  on_frame_ = std::move(on_frame);
  on_close_ = std::move(on_close);
  read_buffer_.resize(kReadChunk);
  read_more();
}

void SecureLink::read_more() {
  socket_.async_read_some(
      asio::buffer(read_buffer_),
      [self = shared_from_this()](const asio::error_code& ec, std::size_t n) {
        if (self->closed_) return;
        if (ec) {
          return self->close(make_error(
              ec == asio::error::eof
                  ? fmt::format("link with {}: the remote closed the link", self->remote_address_)
                  : fmt::format("link with {}: {}", self->remote_address_, ec.message())));
        }
        self->opener_.feed(ByteView(self->read_buffer_.data(), n));
        while (!self->closed_) {
          Result<bool> got = self->opener_.next(self->frame_);
          if (!got) {
            return self->close(make_error(
                fmt::format("link with {}: {}", self->remote_address_, got.error().message)));
          }
          if (!*got) break;
          self->in_frame_handler_ = true;
          self->on_frame_(self->frame_);
          self->in_frame_handler_ = false;
        }
        if (!self->closed_) self->read_more();
      });
}

Status SecureLink::send(ByteView payload) {
  if (closed_) return make_error(fmt::format("link with {} is closed", remote_address_));
  if (Status st = sealer_.seal(payload, pending_); !st) return st;
  if (writing_.empty()) write_more();
  return {};
}

void SecureLink::write_more() {
  assert(writing_.empty() && "one write in flight at a time");
  if (pending_.empty() || closed_) return;
  std::swap(writing_, pending_);
  asio::async_write(
      socket_, asio::buffer(writing_),
      [self = shared_from_this()](const asio::error_code& ec, std::size_t) {
        if (self->closed_) return;
        if (ec) {
          return self->close(make_error(
              fmt::format("link with {}: write failed: {}", self->remote_address_, ec.message())));
        }
        self->writing_.clear();
        // Keep big buffers from a burst only while they are likely to be reused.
        if (self->writing_.capacity() > 4 * kReadChunk) Bytes().swap(self->writing_);
        self->write_more();
      });
}

void SecureLink::close(const Error& why) {
  if (closed_) return;
  closed_ = true;
  asio::error_code ignored;
  socket_.shutdown(tcp::socket::shutdown_both, ignored);
  socket_.close(ignored);
  pending_.clear();
  auto on_close = std::move(on_close_);
  // Break reference cycles through handler captures. A close from inside the frame handler
  // (a frame whose handling removes its own peer) must not destroy the handler while it runs:
  // its captures (the sender's id, referenced by the call) are released once it returned.
  if (in_frame_handler_) {
    asio::post(socket_.get_executor(), [handler = std::move(on_frame_)] {});
  }
  on_frame_ = nullptr;
  if (on_close) on_close(why);
}

// ---- SecureListener ----

SecureListener::SecureListener(asio::io_context& io, std::shared_ptr<const LinkConfig> config,
                               AcceptHandler on_link)
    : acceptor_(io),
      config_(std::move(config)),
      on_link_(std::move(on_link)),
      limiter_(config_->failure_limits),
      replay_filter_(std::make_shared<Message1ReplayFilter>()) {}

Result<std::shared_ptr<SecureListener>> SecureListener::open(
    asio::io_context& io, const tcp::endpoint& endpoint, std::shared_ptr<const LinkConfig> config,
    AcceptHandler on_link) {
  auto listener = std::make_shared<SecureListener>(io, std::move(config), std::move(on_link));
  asio::error_code ec;
  listener->acceptor_.open(endpoint.protocol(), ec);
  if (!ec) listener->acceptor_.set_option(tcp::acceptor::reuse_address(true), ec);
  if (!ec) listener->acceptor_.bind(endpoint, ec);
  if (!ec) listener->acceptor_.listen(asio::socket_base::max_listen_connections, ec);
  if (ec) {
    return make_error(fmt::format("cluster.listen_multiaddress: cannot listen on {}: {}",
                                  address_text(endpoint), ec.message()));
  }
  listener->accept_more();
  return listener;
}

tcp::endpoint SecureListener::local_endpoint() const {
  asio::error_code ec;
  return acceptor_.local_endpoint(ec);
}

void SecureListener::close() {
  if (closed_) return;
  closed_ = true;
  asio::error_code ignored;
  acceptor_.close(ignored);
  for (auto& weak : in_progress_) {
    if (auto run = weak.lock()) run->abort("secure link: listener closed");
  }
  in_progress_.clear();
}

std::string source_key(const asio::ip::address& address) {
  if (address.is_v4()) return address.to_string();
  const asio::ip::address_v6 v6 = address.to_v6();
  if (v6.is_v4_mapped()) return asio::ip::make_address_v4(asio::ip::v4_mapped, v6).to_string();
  auto bytes = v6.to_bytes();
  std::fill(bytes.begin() + 8, bytes.end(), 0);
  return asio::ip::address_v6(bytes).to_string() + "/64";
}

// Makes room for a new connection: the oldest handshake that has not proven the secret yet
// (from `source`, or from anyone when `source` is empty) is ended. False when every one in
// progress has proven it. Refusing the newcomer instead let anyone without the secret keep
// peers out by holding silent connections, or by failing handshakes from a peer's address.
bool SecureListener::evict_unproven(const std::string& source) {
  for (auto& weak : in_progress_) {
    auto run = weak.lock();
    if (!run || run->finished() || run->proven()) continue;
    if (!source.empty() && run->source != source) continue;
    run->evicted = true;
    run->abort(fmt::format("secure link from {}: no handshake message yet; closed to make room "
                           "for a newer connection",
                           run->address()));
    return true;
  }
  return false;
}

void SecureListener::accept_more() {
  acceptor_.async_accept([self = shared_from_this()](const asio::error_code& ec,
                                                     tcp::socket socket) {
    if (self->closed_) return;
    if (ec) {
      // Out of descriptors and similar: pause briefly instead of spinning, then keep listening.
      self->config_->log(
          fmt::format("secure link: accept failed: {}; retrying in 100 ms", ec.message()));
      auto pause = std::make_shared<asio::steady_timer>(self->acceptor_.get_executor(),
                                                        std::chrono::milliseconds(100));
      pause->async_wait([self, pause](const asio::error_code&) {
        if (!self->closed_) self->accept_more();
      });
      return;
    }
    asio::error_code rec;
    const tcp::endpoint remote = socket.remote_endpoint(rec);
    const std::string source = rec ? std::string("unknown") : source_key(remote.address());
    auto from_source = self->pending_by_source_.find(source);
    const bool source_full = from_source != self->pending_by_source_.end() &&
                             from_source->second >= self->config_->max_pending_per_source;
    const bool all_full = self->pending_handshakes_ >= self->config_->max_pending_handshakes;
    // Evicting ends the run at once (its slot is given back before the abort returns).
    if ((source_full && !self->evict_unproven(source)) ||
        (!source_full && all_full && !self->evict_unproven({}))) {
      // Every slot holds a handshake that proved the secret: refused before reading a byte.
      socket.close(rec);
      return self->accept_more();
    }
    ++self->pending_handshakes_;
    ++self->pending_by_source_[source];
    auto run = std::make_shared<HandshakeRun>(std::move(socket), self->config_, false, nullptr,
                                              self->replay_filter_, nullptr);
    run->source = source;
    // Called from inside the run (its finish), which is alive then.
    run->set_done([self, raw = run.get()](Result<std::shared_ptr<SecureLink>> r) {
      self->handshake_finished(raw->source, std::move(r), raw->evicted);
    });
    // Drop records of finished runs so the list stays as small as the handshakes in progress.
    std::erase_if(self->in_progress_, [](const auto& w) { return w.expired(); });
    self->in_progress_.push_back(run);
    run->start_accepted();
    self->accept_more();
  });
}

void SecureListener::handshake_finished(const std::string& address,
                                        Result<std::shared_ptr<SecureLink>> r, bool evicted) {
  assert(pending_handshakes_ > 0);
  --pending_handshakes_;
  if (auto it = pending_by_source_.find(address); it != pending_by_source_.end() && --it->second == 0) {
    pending_by_source_.erase(it);
  }
  if (closed_) {
    if (r) (*r)->close(make_error("secure link: listener closed"));
    return;
  }
  if (!r) {
    if (evicted) return;  // not the source's failure: it may be a peer that was about to speak
    // Failures are logged, up to max_failures per source and window; then once that the rest
    // of the window is not.
    const auto now = AddressFailureLimiter::Clock::now();
    if (limiter_.allowed(address, now)) {
      config_->log(fmt::format("{}; connection refused", r.error().message));
      if (limiter_.record_failure(address, now)) {
        config_->log(fmt::format(
            "secure link: {} failed {} handshakes; its further failures in the next {} s are "
            "not logged",
            address, config_->failure_limits.max_failures,
            std::chrono::duration_cast<std::chrono::seconds>(config_->failure_limits.window)
                .count()));
      }
    }
    return;
  }
  limiter_.record_success(address);
  on_link_(std::move(*r));
}

}  // namespace clusterpin::net
