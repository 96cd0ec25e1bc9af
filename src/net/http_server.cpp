// HTTP/1.1 server: an accept loop per endpoint and one HttpConnection per client socket.
// A connection alternates between reading one request (parser fed from the socket, timers
// guarding each phase) and answering it (reading paused, so pipelined requests wait in the buffer
// and answers stay in order). Writes are coalesced: bytes queued while a write is in flight go
// out together in the next one, which keeps many small NDJSON chunks cheap.
#include "net/http_server.hpp"

#include <algorithm>
#include <array>
#include <cassert>
#include <filesystem>
#include <unordered_map>

#include <fmt/format.h>

namespace clusterpin::net {

using std::chrono::milliseconds;
using Clock = std::chrono::steady_clock;

namespace {

std::string format_duration(milliseconds d) {
  if (d.count() % 1000 == 0) return fmt::format("{}s", d.count() / 1000);
  return fmt::format("{}ms", d.count());
}

}  // namespace

struct HttpServer::Shared {
  asio::io_context* io = nullptr;
  HttpServerOptions options;
  HttpHandler handler;
  HttpHeadCheck head_check;
  size_t body_bytes = 0;  // held by connections reading a body (max_body_bytes_in_flight)
  size_t refusing = 0;    // connections answering 503 for max_connections (max_refusing)
  std::unordered_map<HttpConnection*, std::weak_ptr<HttpConnection>> connections;
  std::vector<std::unique_ptr<asio::ip::tcp::acceptor>> tcp_acceptors;
  std::vector<std::unique_ptr<asio::local::stream_protocol::acceptor>> unix_acceptors;
  bool stopped = false;
};

class HttpConnection : public std::enable_shared_from_this<HttpConnection> {
 public:
  HttpConnection(HttpSocket socket, std::shared_ptr<HttpServer::Shared> shared)
      : socket_(std::move(socket)),
        shared_(std::move(shared)),
        parser_(HttpParser::Mode::request, shared_->options.limits),
        read_timer_(*shared_->io),
        write_timer_(*shared_->io) {}
  ~HttpConnection() {
    release_body_bytes();
    stop_refusing();
    shared_->connections.erase(this);
  }

  void start() {
    socket_.set_no_delay();
    remote_ = socket_.remote();
    // A fresh connection must deliver its first header within read_header_timeout.
    phase_ = Phase::header;
    arm_read_timer(shared_->options.read_header_timeout);
    read();
  }

  // Answers 503 and closes: used when the server is at max_connections.
  void reject() {
    refusing_ = true;
    ++shared_->refusing;
    answer_error(503, "too many connections, try again later");
  }

  bool open() const { return !closed_; }
  size_t buffered() const { return out_.size() + inflight_.size(); }
  size_t high_water() const { return shared_->options.stream_high_water_bytes; }

  // Queues the status line and headers of the answer to the current request. Decides whether
  // the connection stays open: the request must allow it and the handler must not refuse it.
  void write_head(int status, HttpHeaders& headers, bool can_keep_alive) {
    keep_alive_ = keep_alive_ && can_keep_alive && !headers.has_token("Connection", "close") &&
                  !shared_->stopped;
    headers.remove("Connection");
    std::string head = fmt::format("HTTP/1.1 {} {}\r\n", status, status_reason(status));
    for (const auto& [name, value] : shared_->options.default_headers.fields()) {
      if (!headers.has(name)) append_header_field(head, name, value);
    }
    for (const auto& [name, value] : headers.fields()) append_header_field(head, name, value);
    if (!keep_alive_) {
      head += "Connection: close\r\n";
    } else if (request_minor_ == 0) {
      head += "Connection: keep-alive\r\n";
    }
    head += "\r\n";
    append(head);  // not sent yet: the body usually follows, and one write beats two
  }

  // Adds bytes to the queue without starting a write; push() sends.
  void append(std::string_view bytes) {
    if (!closed_) out_.append(bytes);
  }
  // Starts writing what is queued unless a write is in flight (its completion continues).
  void push() {
    if (!closed_ && !writing_) flush();
  }
  void queue(std::string_view bytes) {
    append(bytes);
    push();
  }

  // The whole answer to the current request is queued.
  void response_complete() {
    if (closed_) return;
    assert(phase_ == Phase::handling);  // only the current request's responder completes it
    if (!keep_alive_) {
      phase_ = Phase::closing;
      close_after_write_ = true;
      if (!writing_) close_gracefully();
      return;
    }
    phase_ = Phase::idle;
    // Parse pipelined requests only once this answer is sent, so a client that never reads
    // cannot make us queue answers without bound. Posting avoids recursion through handlers.
    // The idle timeout starts there too: while the answer is still being written (a listing's
    // tail to a slow reader) the write stall timeout bounds the connection, not idle_timeout.
    resume_after_write_ = true;
    if (!writing_) {
      asio::post(*shared_->io, [self = shared_from_this()] { self->resume(); });
    }
  }

  // Runs `f` on the server's io_context, after the current handler returns.
  void post(std::function<void()> f) { asio::post(*shared_->io, std::move(f)); }

  void on_drained(std::function<void()> callback) {
    drained_ = std::move(callback);
    if (closed_ || buffered() <= high_water() / 2) {
      asio::post(*shared_->io, [self = shared_from_this()] { self->run_drained(); });
    }
  }

  // Closes at once: used on errors and when a stream is abandoned.
  void close() {
    if (closed_) return;
    closed_ = true;
    release_body_bytes();
    stop_refusing();
    socket_.close();
    read_timer_.cancel();
    write_timer_.cancel();
    shared_->connections.erase(this);
    // The producer learns of the close through its drain callback. The callback leaves the
    // connection now: it usually holds the responder, which holds the connection (a cycle).
    if (drained_) asio::post(*shared_->io, [callback = std::move(drained_)] { callback(); });
    drained_ = nullptr;
  }

 private:
  enum class Phase {
    idle,      // keep-alive, waiting for the next request (idle_timeout)
    header,    // reading a request head (read_header_timeout)
    body,      // reading a request body (read_timeout)
    handling,  // the handler owns the request; reading is paused
    closing,   // answer sent or being sent, input is discarded until close
  };

  void stop_refusing() {
    if (refusing_) --shared_->refusing;
    refusing_ = false;
  }

  void run_drained() {
    if (!drained_) return;
    if (!closed_ && buffered() > high_water() / 2) return;
    auto callback = std::move(drained_);
    drained_ = nullptr;
    callback();
  }

  void resume() {
    resume_after_write_ = false;
    if (closed_ || phase_ != Phase::idle) return;
    arm_read_timer(shared_->options.idle_timeout);
    process();
  }

  // Bounds the current phase by `timeout`. With `no_progress` it bounds silence instead: every
  // read pushes the expiry back (checked when the timer fires, so a read costs no re-arm).
  void arm_read_timer(milliseconds timeout, bool no_progress = false) {
    ++read_timer_generation_;
    read_timer_.cancel();
    read_silence_limit_ = no_progress ? timeout : milliseconds(0);
    if (timeout.count() == 0) return;
    last_read_ = Clock::now();
    wait_read_timer(timeout);
  }

  void wait_read_timer(Clock::duration after) {
    read_timer_.expires_after(after);
    read_timer_.async_wait(
        [self = shared_from_this(), generation = read_timer_generation_](asio::error_code ec) {
          if (ec || self->closed_ || generation != self->read_timer_generation_) return;
          milliseconds limit = self->read_silence_limit_;
          auto quiet = Clock::now() - self->last_read_;
          if (limit.count() > 0 && quiet < limit) {
            self->wait_read_timer(limit - quiet);
            return;
          }
          self->on_read_timeout();
        });
  }

  void on_read_timeout() {
    switch (phase_) {
      case Phase::header:
      case Phase::body:
        // Nothing received yet: a silent close, as for an idle connection.
        if (!parser_.in_message()) {
          close();
        } else if (read_silence_limit_.count() > 0) {
          answer_error(408, fmt::format("timed out reading the request: no bytes of the request "
                                        "body for {} (idle timeout)",
                                        format_duration(read_silence_limit_)));
        } else if (phase_ == Phase::header) {
          answer_error(408, fmt::format("timed out reading the request head: it must arrive "
                                        "within {} (read_header_timeout)",
                                        format_duration(shared_->options.read_header_timeout)));
        } else {
          answer_error(408, fmt::format("timed out reading the request body: it must arrive "
                                        "within {} (read_timeout)",
                                        format_duration(shared_->options.read_timeout)));
        }
        return;
      case Phase::idle:
      case Phase::closing:
        close();
        return;
      case Phase::handling:
        return;  // the timer is cancelled when handling starts; a stale expiry is ignored
    }
  }

  void read() {
    if (reading_ || closed_) return;
    reading_ = true;
    socket_.async_read_some(asio::buffer(read_buffer_),
                            [self = shared_from_this()](asio::error_code ec, size_t n) {
                              self->reading_ = false;
                              self->on_read(ec, n);
                            });
  }

  void on_read(asio::error_code ec, size_t n) {
    if (closed_) return;
    if (phase_ == Phase::closing) {
      if (ec) {
        close();
      } else {
        read();  // discard what the client still sends, so closing does not reset the answer
      }
      return;
    }
    if (ec) {
      close();  // the client went away (between requests or in the middle of one)
      return;
    }
    last_read_ = Clock::now();
    buffer_.append(read_buffer_.data(), n);
    process();
  }

  void process() {
    while (!closed_ && phase_ != Phase::handling && phase_ != Phase::closing) {
      if (phase_ == Phase::idle && !buffer_.empty()) {
        phase_ = Phase::header;
        arm_read_timer(shared_->options.read_header_timeout);
      }
      auto step = parser_.next(buffer_);
      switch (step.event) {
        case HttpParser::Event::need_more:
          buffer_.erase(0, step.consumed);
          read();
          return;
        case HttpParser::Event::head:
          buffer_.erase(0, step.consumed);
          request_ = std::move(parser_.request());
          request_.remote = remote_;
          if (shared_->head_check) {
            if (auto refusal = shared_->head_check(request_)) {
              buffer_.clear();
              answer_error(refusal->status, refusal->message, std::move(refusal->headers),
                           request_.method != "HEAD");
              return;
            }
          }
          phase_ = Phase::body;
          // Without read_timeout the body must still keep coming: a client gone silent mid-body
          // would otherwise hold its connection, one of max_connections, for good.
          if (shared_->options.read_timeout.count() > 0) {
            arm_read_timer(shared_->options.read_timeout);
          } else {
            arm_read_timer(shared_->options.idle_timeout, true);
          }
          if (request_.version_minor >= 1 && request_.headers.has_token("Expect", "100-continue")) {
            queue("HTTP/1.1 100 Continue\r\n\r\n");
          }
          break;
        case HttpParser::Event::body: {
          std::string_view piece = parser_.body_piece();
          if (shared_->body_bytes + piece.size() > shared_->options.max_body_bytes_in_flight) {
            buffer_.clear();
            answer_error(503, "the server holds too many request bodies being received; try "
                              "again later");
            return;
          }
          shared_->body_bytes += piece.size();
          body_bytes_ += piece.size();
          request_.body.append(piece);
          buffer_.erase(0, step.consumed);
          break;
        }
        case HttpParser::Event::done:
          buffer_.erase(0, step.consumed);
          request_.trailers = parser_.trailers();
          release_body_bytes();  // the handler owns the body now
          dispatch();
          return;
        case HttpParser::Event::error:
          buffer_.clear();
          answer_error(status_for(parser_.error()), parser_.error_message());
          return;
      }
    }
  }

  void dispatch() {
    phase_ = Phase::handling;
    arm_read_timer(milliseconds(0));  // the handler may take as long as it needs
    keep_alive_ = request_.keep_alive;
    request_minor_ = request_.version_minor;
    auto responder = std::make_shared<HttpResponder>(shared_from_this(), request_.method == "HEAD",
                                                     request_.version_minor);
    if (request_.path == "*") {
      // "OPTIONS *" asks about the server, not a resource: answered here, never routed.
      if (request_.method == "OPTIONS") {
        responder->send(204, {{"Allow", "GET, HEAD, POST, PUT, DELETE, OPTIONS"}});
      } else {
        responder->send_error(400, "the target * is only valid with OPTIONS");
      }
      return;
    }
    try {
      shared_->handler(std::move(request_), responder);
    } catch (const std::exception& e) {
      if (responder->streaming()) {
        responder->abort();
      } else if (!responder->answered()) {
        responder->send_error(500, fmt::format("internal error: {}", e.what()));
      }
    }
  }

  void release_body_bytes() {
    shared_->body_bytes -= body_bytes_;
    body_bytes_ = 0;
  }

  // Answers an error that ends the connection (parse errors, timeouts, overload, refusals).
  // An answer to HEAD (`with_body` false) has the headers of the body it leaves out.
  void answer_error(int status, std::string_view message, HttpHeaders headers = {},
                    bool with_body = true) {
    phase_ = Phase::closing;
    keep_alive_ = false;
    release_body_bytes();
    request_.body.clear();
    request_.body.shrink_to_fit();
    arm_read_timer(milliseconds(2000));  // upper bound on the whole goodbye
    std::string body = json_error_body(status, message);
    headers.add("Content-Type", "application/json");
    headers.add("Content-Length", std::to_string(body.size()));
    write_head(status, headers, false);
    queue(with_body ? std::string_view(body) : std::string_view());
    close_after_write_ = true;
  }

  // Half-closes, then reads and drops input until the client closes or the timer fires: closing
  // with unread input would send a reset that can destroy the answer before the client reads it.
  void close_gracefully() {
    phase_ = Phase::closing;
    socket_.shutdown_send();
    arm_read_timer(milliseconds(1000));
    read();
  }

  void flush() {
    assert(!writing_);  // one write in flight at a time keeps bytes in order
    if (closed_ || out_.empty()) return;
    writing_ = true;
    std::swap(out_, inflight_);
    out_.clear();
    inflight_sent_ = 0;
    milliseconds stall = shared_->options.write_stall_timeout;
    ++write_timer_generation_;
    if (stall.count() > 0) {
      last_written_ = Clock::now();
      wait_write_timer(stall);
    }
    write_some();
  }

  // The stall timer fires at last progress + write_stall_timeout and re-arms itself while writes
  // keep completing: a large answer to a slow reader is not cut as long as it moves.
  void wait_write_timer(Clock::duration after) {
    write_timer_.expires_after(after);
    write_timer_.async_wait(
        [self = shared_from_this(), generation = write_timer_generation_](asio::error_code ec) {
          if (ec || generation != self->write_timer_generation_) return;
          milliseconds stall = self->shared_->options.write_stall_timeout;
          auto quiet = Clock::now() - self->last_written_;
          if (quiet < stall) {
            self->wait_write_timer(stall - quiet);
            return;
          }
          self->close();
        });
  }

  // Writes `inflight_` as the socket takes it: each write that took some bytes is progress for
  // the stall timer. One write_some per completion, not fixed slices: a listing's 1 MB chunk
  // still goes in as few send calls as the socket buffer allows.
  void write_some() {
    socket_.async_write_some(asio::buffer(inflight_.data() + inflight_sent_, inflight_.size() - inflight_sent_),
                             [self = shared_from_this()](asio::error_code ec, size_t written) {
                               if (!ec && !self->closed_) {
                                 self->inflight_sent_ += written;
                                 self->last_written_ = Clock::now();
                                 if (self->inflight_sent_ < self->inflight_.size()) {
                                   self->write_some();
                                   return;
                                 }
                               }
                               self->on_written(ec);
                             });
  }

  void on_written(asio::error_code ec) {
    writing_ = false;
    ++write_timer_generation_;
    write_timer_.cancel();
    inflight_.clear();
    if (ec || closed_) {
      close();
      return;
    }
    if (!out_.empty()) flush();
    if (drained_ && buffered() <= high_water() / 2) run_drained();
    if (writing_ || closed_) return;
    if (close_after_write_) {
      close_after_write_ = false;
      close_gracefully();
    } else if (resume_after_write_) {
      resume();
    }
  }

  HttpSocket socket_;
  std::shared_ptr<HttpServer::Shared> shared_;
  HttpParser parser_;
  asio::steady_timer read_timer_;
  asio::steady_timer write_timer_;
  uint64_t read_timer_generation_ = 0;
  uint64_t write_timer_generation_ = 0;
  milliseconds read_silence_limit_{0};  // > 0: the read timer bounds silence (see arm_read_timer)
  Clock::time_point last_read_ = Clock::now();
  Clock::time_point last_written_ = Clock::now();
  std::array<char, 16 * 1024> read_buffer_{};
  std::string buffer_;  // received, not yet parsed
  HttpRequest request_;
  std::string remote_;
  size_t body_bytes_ = 0;  // of request_.body, counted in shared_->body_bytes
  Phase phase_ = Phase::header;
  bool reading_ = false;
  bool writing_ = false;
  bool closed_ = false;
  bool keep_alive_ = true;
  int request_minor_ = 1;
  bool close_after_write_ = false;
  bool refusing_ = false;  // counted in shared_->refusing
  bool resume_after_write_ = false;
  std::string out_;           // queued, not yet handed to the socket
  std::string inflight_;      // handed to the socket by the current write
  size_t inflight_sent_ = 0;  // how much of inflight_ the socket took so far
  std::function<void()> drained_;
};

// ---- HttpResponder ----

HttpResponder::HttpResponder(std::shared_ptr<HttpConnection> connection, bool head_request,
                             int version_minor)
    : connection_(std::move(connection)),
      head_request_(head_request),
      version_minor_(version_minor) {}

HttpResponder::~HttpResponder() {
  if (state_ == State::idle) {
    send_error(500, "the request handler did not answer");
  } else if (state_ == State::stream_pending) {
    finish({{"X-Stream-Error", "the stream was abandoned before it finished"}});
  } else if (state_ == State::streaming) {
    // Ending the chunked body cleanly would tell the client it got everything: close instead.
    if (auto* c = connection_.get()) c->close();
  }
}

void HttpResponder::abort() {
  if (state_ == State::done) return;  // answered: the connection may be serving the next one
  state_ = State::done;
  if (auto* c = connection_.get()) c->close();
}

bool HttpResponder::connected() const {
  auto* c = connection_.get();
  return state_ != State::done && c && c->open();
}

size_t HttpResponder::buffered_bytes() const {
  auto* c = connection_.get();
  return c ? c->buffered() : 0;
}

void HttpResponder::write_head(int status, HttpHeaders headers, bool chunked,
                               std::string_view body) {
  auto* c = connection_.get();
  if (!c || !c->open()) return;
  for (const auto& [name, value] : extra_headers_.fields()) headers.add(name, value);
  bool no_body = status == 204 || status == 304 || status / 100 == 1;
  if (no_body) {
    headers.remove("Content-Length");
    headers.remove("Transfer-Encoding");
  } else if (chunked) {
    headers.remove("Content-Length");
    if (!raw_stream_) headers.set("Transfer-Encoding", "chunked");
  } else {
    headers.set("Content-Length", std::to_string(body.size()));
  }
  c->write_head(status, headers, !raw_stream_);
  if (!chunked && !no_body && !head_request_) c->append(body);
  c->push();
}

void HttpResponder::send(int status, HttpHeaders headers, std::string body) {
  assert(state_ == State::idle || state_ == State::stream_pending);  // one answer per request
  if (state_ != State::idle && state_ != State::stream_pending) return;
  state_ = State::done;
  write_head(status, std::move(headers), false, body);
  if (auto* c = connection_.get()) c->response_complete();
}

void HttpResponder::send_json(int status, std::string json, HttpHeaders headers) {
  headers.set("Content-Type", "application/json");
  send(status, std::move(headers), std::move(json));
}

void HttpResponder::send_error(int status, std::string_view message) {
  send_json(status, json_error_body(status, message));
}

void HttpResponder::start_stream(int status, HttpHeaders headers) {
  assert(state_ == State::idle);  // a stream replaces the single answer
  state_ = State::stream_pending;
  stream_status_ = status;
  stream_headers_ = std::move(headers);
}

bool HttpResponder::write_chunk(std::string_view data) {
  if (state_ == State::done) return false;  // a HEAD answer, ended at its head (below)
  assert(state_ == State::stream_pending || state_ == State::streaming);
  auto* c = connection_.get();
  if (!c || !c->open()) return false;
  if (state_ == State::stream_pending) {
    state_ = State::streaming;
    raw_stream_ = version_minor_ == 0;  // HTTP/1.0 has no chunking: the close ends the body
    HttpHeaders headers = std::move(stream_headers_);
    if (!raw_stream_) headers.set("Trailer", "X-Stream-Error");
    write_head(stream_status_, std::move(headers), true, {});
  }
  // The head is the whole answer to HEAD: it ends here, and the producer hears so at once
  // (false, then connected() false) instead of producing a listing nobody reads.
  if (head_request_) {
    c->push();
    state_ = State::done;
    c->response_complete();
    return false;
  }
  if (data.empty()) {  // an empty chunk would end the body
    c->push();
    return true;
  }
  if (raw_stream_) {
    c->queue(data);
  } else {
    c->append(fmt::format("{:x}\r\n", data.size()));
    c->append(data);
    c->queue("\r\n");
  }
  return c->buffered() < c->high_water();
}

void HttpResponder::on_drained(std::function<void()> callback) {
  auto* c = connection_.get();
  if (!c) {
    return;  // nobody will ever drain; the producer sees connected() == false on its next call
  }
  // An answer already ended (HEAD) no longer owns the connection's drain callback, which the
  // next request's answer may be using: the producer is called back at once, to see the end.
  if (state_ == State::done) return c->post(std::move(callback));
  c->on_drained(std::move(callback));
}

void HttpResponder::finish(HttpHeaders trailers) {
  if (state_ == State::done) return;  // a HEAD answer, ended at its head (see write_chunk)
  assert(state_ == State::stream_pending || state_ == State::streaming);
  if (state_ == State::stream_pending) {
    // ipfs-cluster: an empty stream answers 204; a stream that failed before its first item
    // answers the error with status 500.
    auto error = trailers.get("X-Stream-Error");
    if (error && !error->empty()) {
      std::string message(*error);
      state_ = State::idle;
      send_error(500, message);
    } else {
      HttpHeaders headers = std::move(stream_headers_);
      headers.set("Trailer", "X-Stream-Error");
      state_ = State::idle;
      send(204, std::move(headers));
    }
    return;
  }
  if (state_ != State::streaming) return;
  state_ = State::done;
  auto* c = connection_.get();
  if (!c || !c->open()) return;
  if (!raw_stream_ && !head_request_) {
    std::string tail = "0\r\n";
    append_header_field(tail, "X-Stream-Error", trailers.get("X-Stream-Error").value_or(""));
    for (const auto& [name, value] : trailers.fields()) {
      if (!equals_ignore_case(name, "X-Stream-Error")) append_header_field(tail, name, value);
    }
    tail += "\r\n";
    c->queue(tail);
  }
  c->response_complete();
}

// ---- HttpServer ----

namespace {
void start_connection(const std::shared_ptr<HttpServer::Shared>& shared, HttpSocket socket) {
  bool full = shared->connections.size() >= shared->options.max_connections;
  if (full && shared->refusing >= shared->options.max_refusing) {
    socket.close();  // no answer: answering holds a descriptor for up to 3 s
    return;
  }
  auto connection = std::make_shared<HttpConnection>(std::move(socket), shared);
  shared->connections.emplace(connection.get(), connection);
  if (full) {
    connection->reject();
  } else {
    connection->start();
  }
}

template <class Acceptor>
void accept_loop(std::shared_ptr<HttpServer::Shared> shared, Acceptor* acceptor) {
  acceptor->async_accept(
      [shared, acceptor](asio::error_code ec, typename Acceptor::protocol_type::socket s) {
        if (shared->stopped || !acceptor->is_open()) return;
        if (!ec) {
          start_connection(shared, HttpSocket(std::move(s)));
        } else if (ec == asio::error::operation_aborted) {
          return;
        } else {
          // Other accept errors (EMFILE, ENOBUFS) may repeat at once: pause instead of spinning.
          auto pause =
              std::make_shared<asio::steady_timer>(*shared->io, std::chrono::milliseconds(100));
          pause->async_wait([shared, acceptor, pause](asio::error_code) {
            if (!shared->stopped && acceptor->is_open()) accept_loop(shared, acceptor);
          });
          return;
        }
        accept_loop(shared, acceptor);
      });
}
}  // namespace

HttpServer::HttpServer(asio::io_context& io, HttpServerOptions options, HttpHandler handler)
    : io_(io), shared_(std::make_shared<Shared>()) {
  shared_->io = &io_;
  shared_->options = std::move(options);
  shared_->handler = std::move(handler);
}

HttpServer::~HttpServer() {
  stop();
}

Result<HttpEndpoint> HttpServer::listen(const HttpEndpoint& endpoint) {
  if (endpoint.is_named())
    return make_error(fmt::format("cannot listen for HTTP on the name {}: give an address",
                                  endpoint.to_string()));
  asio::error_code ec;
  if (endpoint.kind == HttpEndpoint::Kind::tcp) {
    auto acceptor = std::make_unique<asio::ip::tcp::acceptor>(io_);
    auto ep = endpoint.tcp_endpoint();
    acceptor->open(ep.protocol(), ec);
    if (!ec) acceptor->set_option(asio::socket_base::reuse_address(true), ec);
    if (!ec) acceptor->bind(ep, ec);
    if (!ec) acceptor->listen(asio::socket_base::max_listen_connections, ec);
    if (ec) {
      return make_error(
          fmt::format("cannot listen for HTTP on {}: {}", endpoint.to_string(), ec.message()));
    }
    auto bound = acceptor->local_endpoint(ec);
    HttpEndpoint result = HttpEndpoint::tcp(bound.address(), bound.port());
    accept_loop(shared_, acceptor.get());
    shared_->tcp_acceptors.push_back(std::move(acceptor));
    return result;
  }
  std::error_code fs_ec;
  if (std::filesystem::is_socket(endpoint.path, fs_ec))
    std::filesystem::remove(endpoint.path, fs_ec);
  auto acceptor = std::make_unique<asio::local::stream_protocol::acceptor>(io_);
  asio::local::stream_protocol::endpoint ep(endpoint.path);
  acceptor->open(ep.protocol(), ec);
  if (!ec) acceptor->bind(ep, ec);
  if (!ec) acceptor->listen(asio::socket_base::max_listen_connections, ec);
  if (ec) {
    return make_error(
        fmt::format("cannot listen for HTTP on {}: {}", endpoint.to_string(), ec.message()));
  }
  accept_loop(shared_, acceptor.get());
  shared_->unix_acceptors.push_back(std::move(acceptor));
  return endpoint;
}

void HttpServer::stop() {
  if (shared_->stopped) return;
  shared_->stopped = true;
  asio::error_code ignored;
  for (auto& a : shared_->tcp_acceptors) a->close(ignored);
  for (auto& a : shared_->unix_acceptors) a->close(ignored);
  auto connections = shared_->connections;  // close() erases from the map
  for (auto& [raw, weak] : connections) {
    if (auto c = weak.lock()) c->close();
  }
  shared_->connections.clear();
}

size_t HttpServer::connection_count() const {
  return shared_->connections.size();
}

void HttpServer::set_head_check(HttpHeadCheck check) {
  shared_->head_check = std::move(check);
}

}  // namespace clusterpin::net
