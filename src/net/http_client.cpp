// HTTP client: one Exchange object per request (connect or reuse, write, read and parse, finish)
// and a pool of idle keep-alive sockets per endpoint. Two timers guard an exchange: the overall
// deadline and the stall check, which fires at last-progress + stall_timeout and re-arms itself
// instead of being reset on every read. Whatever happens, `done` runs exactly once.
#include "net/http_client.hpp"

#include <array>
#include <cassert>
#include <cerrno>

#include <fmt/format.h>

namespace clusterpin::net {

using std::chrono::milliseconds;
using Clock = std::chrono::steady_clock;

struct HttpClient::Shared {
  asio::io_context* io = nullptr;
  HttpClientOptions options;
  std::map<std::string, std::vector<std::unique_ptr<HttpSocket>>> idle;
};

namespace {

std::string format_duration(milliseconds d) {
  if (d.count() % 1000 == 0) return fmt::format("{}s", d.count() / 1000);
  return fmt::format("{}ms", d.count());
}

class Exchange : public std::enable_shared_from_this<Exchange> {
 public:
  Exchange(std::shared_ptr<HttpClient::Shared> shared, HttpEndpoint endpoint,
           HttpClientRequest request, HttpResponseCallback done, HttpBodySink sink)
      : shared_(std::move(shared)),
        endpoint_(std::move(endpoint)),
        key_(endpoint_.to_string()),
        request_(std::move(request)),
        done_(std::move(done)),
        sink_(std::move(sink)),
        parser_(HttpParser::Mode::response, body_limits()),
        deadline_(*shared_->io),
        stall_timer_(*shared_->io),
        pace_timer_(*shared_->io) {}

  void start() {
    if (const auto& cancel = request_.cancel) {
      // Posted: the caller's callback must not run inside request() or cancel().
      auto end = [weak = weak_from_this(), io = shared_->io](const std::string& why) {
        asio::post(*io, [weak, why] {
          if (auto self = weak.lock()) self->fail(why);
        });
      };
      if (cancel->cancelled()) {
        // Nothing else holds this exchange yet: the posted failure keeps it.
        asio::post(*shared_->io, [self = shared_from_this(), why = cancel->why()] { self->fail(why); });
        return;
      }
      cancel->on_cancel(end);
    }
    const auto& o = shared_->options;
    if (o.timeout.count() > 0) {
      deadline_.expires_after(o.timeout);
      deadline_.async_wait([self = shared_from_this()](asio::error_code ec) {
        if (!ec)
          self->expire(fmt::format("timed out after {} waiting for {} (request timeout)",
                                   format_duration(self->shared_->options.timeout), self->key_));
      });
    }
    auto& idle = shared_->idle[key_];
    if (!idle.empty()) {
      socket_ = std::move(idle.back());
      idle.pop_back();
      reused_ = true;
      send();
    } else {
      connect();
    }
  }

 private:
  HttpLimits body_limits() const {
    HttpLimits limits = shared_->options.limits;
    if (sink_.on_data || sink_.on_line) limits.max_body_bytes = 0;  // streamed: nothing is kept
    return limits;
  }

  void progress() { last_progress_ = Clock::now(); }

  void arm_stall(milliseconds limit) {
    stall_limit_ = limit;
    progress();
    ++stall_generation_;
    stall_timer_.cancel();
    if (limit.count() == 0) return;
    wait_stall(limit);
  }

  void wait_stall(milliseconds after) {
    stall_timer_.expires_after(after);
    stall_timer_.async_wait([self = shared_from_this(),
                             generation = stall_generation_](asio::error_code ec) {
      if (ec || generation != self->stall_generation_ || self->finished_) return;
      if (self->pausing_) self->progress();  // a paced reader's own pause is not a stall
      auto idle_for = std::chrono::duration_cast<milliseconds>(Clock::now() - self->last_progress_);
      if (idle_for >= self->stall_limit_) {
        if (self->connecting_) {
          self->expire(fmt::format("timed out after {} connecting to {}",
                                   format_duration(self->stall_limit_), self->key_));
        } else {
          self->expire(fmt::format("timed out: no data from {} for {} (stall timeout)", self->key_,
                                   format_duration(self->stall_limit_)));
        }
      } else {
        self->wait_stall(self->stall_limit_ - idle_for);
      }
    });
  }

  // A timer fired: remember why, and close the socket so pending operations end.
  void expire(std::string why) {
    if (finished_) return;
    fail(std::move(why));
  }

  void connect() {
    connecting_ = true;
    milliseconds limit = shared_->options.connect_timeout.count() > 0
                             ? shared_->options.connect_timeout
                             : shared_->options.stall_timeout;
    arm_stall(limit);  // the name's resolution included
    if (!endpoint_.is_named()) return dial();
    // A name is resolved at each new connection (a container's address changes when it is
    // restarted), with the system's resolv.conf and hosts file as they are now.
    const auto& configured = shared_->options.resolver;
    resolve_host(*shared_->io, configured ? *configured : load_resolver_config(), endpoint_.host,
                 endpoint_.family,
                 [self = shared_from_this()](Result<std::vector<asio::ip::address>> r) {
                   if (self->finished_) return;
                   if (!r) return self->fail(r.error().message);
                   if (r->empty())
                     return self->fail(fmt::format("cannot resolve {}: no address", self->endpoint_.host));
                   self->addresses_ = std::move(r).value();
                   self->dial();
                 });
  }

  // Connects to endpoint_, or to the next of the addresses its name resolved to.
  void dial() {
    auto on_connected = [self = shared_from_this()](asio::error_code ec) {
      if (self->finished_) return;
      if (ec && self->next_address_ < self->addresses_.size()) {
        self->socket_.reset();
        return self->dial();  // the name has another address: try it
      }
      self->connecting_ = false;
      if (ec) {
        if (ec == asio::error::connection_refused) {
          self->fail(fmt::format("connection refused at {}", self->key_));
        } else if (ec.value() == ENOENT) {
          self->fail(fmt::format("no unix socket at {}", self->key_));
        } else {
          self->fail(fmt::format("cannot connect to {}: {}", self->key_, ec.message()));
        }
        return;
      }
      self->socket_->set_no_delay();
      self->send();
    };
    // The socket moves into HttpSocket after the connect; until then it is a member, so that a
    // timer firing first can close it (see fail()).
    if (endpoint_.kind == HttpEndpoint::Kind::tcp) {
      asio::ip::tcp::endpoint target = endpoint_.tcp_endpoint();
      if (endpoint_.is_named()) target.address(addresses_.at(next_address_++));
      connecting_tcp_ = std::make_unique<asio::ip::tcp::socket>(*shared_->io);
      connecting_tcp_->async_connect(
          target, [self = shared_from_this(), on_connected](asio::error_code ec) {
            if (self->finished_) return;  // fail() closed the socket: nothing to hand over
            self->socket_ = std::make_unique<HttpSocket>(std::move(*self->connecting_tcp_));
            self->connecting_tcp_.reset();
            on_connected(ec);
          });
    } else {
      connecting_local_ = std::make_unique<asio::local::stream_protocol::socket>(*shared_->io);
      connecting_local_->async_connect(
          asio::local::stream_protocol::endpoint(endpoint_.path),
          [self = shared_from_this(), on_connected](asio::error_code ec) {
            if (self->finished_) return;
            self->socket_ = std::make_unique<HttpSocket>(std::move(*self->connecting_local_));
            self->connecting_local_.reset();
            on_connected(ec);
          });
    }
  }

  std::string encode_request() const {
    std::string out = fmt::format("{} {} HTTP/1.1\r\n", request_.method, request_.target);
    if (!request_.headers.has("Host")) {
      out += fmt::format("Host: {}\r\n",
                         endpoint_.kind == HttpEndpoint::Kind::tcp ? key_ : "localhost");
    }
    if (!request_.headers.has("User-Agent"))
      out += "User-Agent: clusterpin/" CLUSTERPIN_VERSION "\r\n";
    for (const auto& [name, value] : request_.headers.fields()) {
      if (!equals_ignore_case(name, "Content-Length") &&
          !equals_ignore_case(name, "Transfer-Encoding"))
        append_header_field(out, name, value);
    }
    bool needs_length = !request_.body.empty() || request_.method == "POST" ||
                        request_.method == "PUT" || request_.method == "PATCH";
    if (request_.body_source) {
      out += "Transfer-Encoding: chunked\r\n";
    } else if (needs_length) {
      out += fmt::format("Content-Length: {}\r\n", request_.body.size());
    }
    out += "\r\n";
    return out;
  }

  void send() {
    arm_stall(shared_->options.stall_timeout);
    parser_.expect_response_to(request_.method);
    wire_ = encode_request();
    std::string_view body = request_.body_source ? std::string_view() : request_.body;
    write(wire_, body);
  }

  // Writes head and body (or the next chunk), then continues with the next chunk or the answer.
  void write(std::string_view first, std::string_view second) {
    std::array<asio::const_buffer, 2> buffers{asio::buffer(first), asio::buffer(second)};
    socket_->async_write(buffers, [self = shared_from_this()](asio::error_code ec, size_t) {
      if (self->finished_) return;
      if (ec) {
        if (self->retry()) return;
        self->fail(fmt::format("connection to {} lost while sending the request: {}", self->key_,
                               ec.message()));
        return;
      }
      self->progress();
      if (self->request_.body_source && !self->body_done_) {
        self->write_next_piece();
      } else {
        self->read();
      }
    });
  }

  void write_next_piece() {
    piece_ = request_.body_source();
    if (piece_.empty()) {
      body_done_ = true;
      write("0\r\n\r\n", {});
      return;
    }
    wire_ = fmt::format("{:x}\r\n", piece_.size());
    piece_ += "\r\n";
    write(wire_, piece_);
  }

  // A reused connection may have been closed by the server while idle; that is not the
  // request's fault, so it goes once more on a fresh connection if no answer byte was seen.
  bool retry() {
    // A streamed body cannot be replayed: its pieces are gone.
    if (!reused_ || received_any_ || request_.body_source) return false;
    reused_ = false;
    socket_->close();
    socket_.reset();
    parser_ = HttpParser(HttpParser::Mode::response, body_limits());
    connect();
    return true;
  }

  void read() {
    socket_->async_read_some(asio::buffer(buffer_),
                             [self = shared_from_this()](asio::error_code ec, size_t n) {
                               if (self->finished_) return;
                               if (ec) {
                                 self->on_eof(ec);
                                 return;
                               }
                               self->received_any_ = true;
                               self->progress();
                               self->handled_from_ = Clock::now();
                               self->consume(std::string_view(self->buffer_.data(), n));
                             });
  }

  // The next read once the sink's pace allows it (see HttpBodySink::pace).
  void read_paced() {
    Clock::duration wait{0};
    if (sink_.pace) wait = sink_.pace(Clock::now() - handled_from_);
    if (wait <= Clock::duration::zero()) return read();
    pausing_ = true;
    pace_timer_.expires_after(wait);
    pace_timer_.async_wait([self = shared_from_this()](asio::error_code ec) {
      self->pausing_ = false;
      if (ec || self->finished_) return;
      self->progress();
      self->read();
    });
  }

  void on_eof(asio::error_code ec) {
    if (ec != asio::error::eof) {
      if (retry()) return;
      fail(fmt::format("connection to {} failed while reading the response: {}", key_,
                       ec.message()));
      return;
    }
    auto step = parser_.finish_eof();
    if (step.event == HttpParser::Event::done) {
      // The close ends the body: a last line without a newline is whole now, as in consume().
      keep_alive_ = false;
      if (!flush_last_line()) {
        fail(fmt::format("reading the response from {} was stopped by its consumer", key_));
        return;
      }
      complete();
      return;
    }
    if (retry()) return;
    fail(fmt::format("connection to {} closed before the response was complete", key_));
  }

  void consume(std::string_view input) {
    for (;;) {
      auto step = parser_.next(input);
      switch (step.event) {
        case HttpParser::Event::need_more:
          read_paced();
          return;
        case HttpParser::Event::head: {
          const auto& head = parser_.response();
          response_.status = head.status;
          response_.reason = head.reason;
          response_.headers = head.headers;
          if (sink_.on_head) sink_.on_head(head);
          break;
        }
        case HttpParser::Event::body:
          if (!deliver(parser_.body_piece())) {
            fail(fmt::format("reading the response from {} was stopped by its consumer", key_));
            return;
          }
          break;
        case HttpParser::Event::done:
          // Extra bytes after a complete answer mean the connection is not in a known state.
          keep_alive_ = parser_.keep_alive() && step.consumed == input.size();
          response_.trailers = parser_.trailers();
          if (!flush_last_line()) {
            fail(fmt::format("reading the response from {} was stopped by its consumer", key_));
            return;
          }
          complete();
          return;
        case HttpParser::Event::error:
          fail(fmt::format("invalid HTTP response from {}: {}", key_, describe(parser_.error())));
          return;
      }
      input.remove_prefix(step.consumed);
    }
  }

  bool deliver(std::string_view data) {
    if (sink_.on_data && !sink_.on_data(data)) return false;
    if (sink_.on_line) return lines_.feed(data, sink_.on_line);
    if (!sink_.on_data) response_.body.append(data);
    return true;
  }

  bool flush_last_line() { return !sink_.on_line || lines_.finish(sink_.on_line); }

  void stop_timers() {
    finished_ = true;
    ++stall_generation_;
    deadline_.cancel();
    stall_timer_.cancel();
    pace_timer_.cancel();
  }

  void complete() {
    stop_timers();
    if (keep_alive_ && socket_) {
      auto& idle = shared_->idle[key_];
      if (idle.size() < shared_->options.max_idle_per_endpoint) idle.push_back(std::move(socket_));
    }
    if (socket_) socket_->close();
    auto done = std::move(done_);
    done(std::move(response_));
  }

  void fail(std::string message) {
    if (finished_) return;
    stop_timers();
    if (socket_) socket_->close();
    // A connect still pending (a timer fired first) would otherwise keep the io_context busy
    // until the kernel gives up on the SYN, about two minutes, long after `done` ran.
    asio::error_code ignored;
    if (connecting_tcp_) connecting_tcp_->close(ignored);
    if (connecting_local_) connecting_local_->close(ignored);
    auto done = std::move(done_);
    done(make_error(std::move(message)));
  }

  std::shared_ptr<HttpClient::Shared> shared_;
  HttpEndpoint endpoint_;
  std::string key_;
  HttpClientRequest request_;
  HttpResponseCallback done_;
  HttpBodySink sink_;
  HttpParser parser_;
  asio::steady_timer deadline_;
  asio::steady_timer stall_timer_;
  uint64_t stall_generation_ = 0;
  milliseconds stall_limit_{0};
  Clock::time_point last_progress_ = Clock::now();
  asio::steady_timer pace_timer_;
  bool pausing_ = false;
  Clock::time_point handled_from_ = Clock::now();  // when the last read's bytes arrived
  std::unique_ptr<HttpSocket> socket_;
  // The socket of a connect in progress (one of the two, by endpoint kind).
  std::unique_ptr<asio::ip::tcp::socket> connecting_tcp_;
  std::unique_ptr<asio::local::stream_protocol::socket> connecting_local_;
  std::vector<asio::ip::address> addresses_;  // a named endpoint's, as resolved
  std::size_t next_address_ = 0;
  std::string wire_;
  std::string piece_;  // the chunk of a streamed body being written
  bool body_done_ = false;
  std::array<char, 16 * 1024> buffer_{};
  LineSplitter lines_;
  HttpClientResponse response_;
  bool reused_ = false;
  bool received_any_ = false;
  bool connecting_ = false;
  bool keep_alive_ = false;
  bool finished_ = false;
};

}  // namespace

HttpClient::HttpClient(asio::io_context& io, HttpClientOptions options)
    : io_(io), shared_(std::make_shared<Shared>()) {
  shared_->io = &io_;
  shared_->options = std::move(options);
}

HttpClient::~HttpClient() {
  close_idle();
}

void HttpClient::request(const HttpEndpoint& endpoint, HttpClientRequest request,
                         HttpResponseCallback done, HttpBodySink sink) {
  assert(done);  // the only way the caller learns the outcome
  auto exchange = std::make_shared<Exchange>(shared_, endpoint, std::move(request), std::move(done),
                                             std::move(sink));
  exchange->start();
}

void HttpCancel::cancel(std::string why) {
  if (why_) return;
  why_ = std::move(why);
  if (auto hook = std::exchange(hook_, nullptr)) hook(*why_);
}

size_t HttpClient::idle_connections() const {
  size_t n = 0;
  for (const auto& [key, sockets] : shared_->idle) n += sockets.size();
  return n;
}

void HttpClient::close_idle() {
  for (auto& [key, sockets] : shared_->idle) {
    for (auto& s : sockets) s->close();
  }
  shared_->idle.clear();
}

bool LineSplitter::feed(std::string_view data, const OnLine& on_line) {
  while (!data.empty()) {
    const std::size_t nl = data.find('\n');
    if (nl == std::string_view::npos) {
      partial_.append(data);
      return true;
    }
    std::string_view line = data.substr(0, nl);
    if (!partial_.empty()) line = partial_.append(line);
    data.remove_prefix(nl + 1);
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    const bool go_on = line.empty() || on_line(line);
    partial_.clear();
    if (!go_on) return false;
  }
  return true;
}

bool LineSplitter::finish(const OnLine& on_line) {
  if (partial_.empty()) return true;
  std::string line = std::move(partial_);
  partial_.clear();
  if (line.back() == '\r') line.pop_back();
  return line.empty() || on_line(line);
}

BlockingHttpClient::BlockingHttpClient(HttpClientOptions options)
    : client_(io_, std::move(options)) {}

Result<HttpClientResponse> BlockingHttpClient::request(const HttpEndpoint& endpoint,
                                                       HttpClientRequest request,
                                                       HttpBodySink sink) {
  std::optional<Result<HttpClientResponse>> outcome;
  client_.request(
      endpoint, std::move(request),
      [&outcome](Result<HttpClientResponse> r) { outcome.emplace(std::move(r)); }, std::move(sink));
  io_.restart();
  // Until the outcome, not until no work is left: a name resolution that the exchange gave up
  // on (its connect timeout) may still wait for a silent name server, up to its own bound.
  // What is left runs in a later request or ends with this client.
  while (!outcome && io_.run_one() > 0) {
  }
  io_.poll();
  if (!outcome) return make_error(fmt::format("the request to {} ended without an answer", endpoint.to_string()));
  return std::move(*outcome);
}

}  // namespace clusterpin::net
