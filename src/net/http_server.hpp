// HTTP/1.1 server on Asio: many keep-alive connections served by one io_context thread.
// A handler receives each request with an HttpResponder and may answer at once or later (after a
// Raft commit), with a whole body or as a chunked stream with backpressure and trailers.
// Guarantees: responses on a connection go out in request order (pipelining); a slow client
// (slowloris) is cut off by read_header_timeout without delaying anyone else; limit violations
// are answered 400/408/413/414/431/501/503/505 with a JSON {"code","message"} body.
#pragma once

#include <chrono>
#include <cstddef>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include <asio.hpp>

#include "core/result.hpp"
#include "net/http_endpoint.hpp"
#include "net/http_message.hpp"
#include "net/http_parser.hpp"

namespace clusterpin::net {

struct HttpServerOptions {
  HttpLimits limits;
  // From the first byte of a request (or the accept) until its header is complete: the
  // slowloris guard (ipfs-cluster restapi read_header_timeout, 5s). Expiry answers 408.
  std::chrono::milliseconds read_header_timeout{5000};
  // From the end of the header until the whole body is read (ipfs-cluster read_timeout). Expiry
  // answers 408. 0 = no limit on the whole body, but it must keep coming: when no byte of it
  // arrives for idle_timeout, the answer is 408 and the connection closes (a client gone silent
  // mid-body would otherwise hold one of max_connections for good). Both 0: no limit at all.
  std::chrono::milliseconds read_timeout{0};
  // How long a keep-alive connection may wait for its next request (ipfs-cluster: 2m0s); also
  // the longest silence within a request body when read_timeout is 0.
  std::chrono::milliseconds idle_timeout{120000};
  // A write that makes no progress for this long closes the connection; 0 = no limit. Progress is
  // any part of a write the socket takes, so a slow reader of a large answer is not cut while it
  // reads. A reader trickling a segment at a time does not keep it moving: Linux wakes a blocked
  // writer only once half of what it queued has drained (measured on loopback with a 536-byte
  // MSS and 4 KiB window: the socket took 39-48 KB a time, seconds apart).
  std::chrono::milliseconds write_stall_timeout{60000};
  // Connections beyond this many are answered 503 and closed. A refused connection is held
  // while its answer is written and the client closes (at most 3 s); beyond max_refusing of
  // them at once, further connections are closed at once without an answer, so that a flood of
  // connections cannot hold the process's file descriptors (which peer links and the stores
  // need too).
  size_t max_connections = 1024;
  size_t max_refusing = 64;
  // Request bodies being read, all connections together, may hold this many bytes; a body that
  // would go beyond is answered 503 and its connection closed. Each body alone is bounded by
  // limits.max_body_bytes, but 1024 connections of 64 MiB would be 64 GiB.
  size_t max_body_bytes_in_flight = 128ull << 20;
  // Streaming: write_chunk() asks the producer to wait above this many unsent bytes.
  size_t stream_high_water_bytes = 256 * 1024;
  // Added to every response (ipfs-cluster restapi "headers").
  HttpHeaders default_headers;
};

class HttpConnection;

// What a head check (HttpServer::set_head_check) answers instead of the handler.
struct HttpRefusal {
  int status = 400;
  std::string message;
  HttpHeaders headers;
};
// Looks at a request's head before its body is read (and before 100 Continue): a refusal is
// answered with {"code","message"} and the connection closes (its body is never read); nullopt
// lets the request go on to the handler. For checks that need no body, such as credentials:
// a client without them cannot make the server hold a body.
using HttpHeadCheck = std::function<std::optional<HttpRefusal>(const HttpRequest& head)>;

// How a handler answers one request. Handed out as a shared_ptr: keep it to answer later.
// Use it on the io_context's thread only (post there from other threads).
// If it is dropped without an answer the client gets 500; if a started stream is dropped
// unfinished, the connection is closed so the client sees a truncated body, not a complete one.
class HttpResponder {
 public:
  HttpResponder(std::shared_ptr<HttpConnection> connection, bool head_request, int version_minor);
  ~HttpResponder();
  HttpResponder(const HttpResponder&) = delete;
  HttpResponder& operator=(const HttpResponder&) = delete;

  // A whole response. Content-Length is set here; a HEAD request gets the head only.
  // Headers added to whatever answer this responder sends (e.g. CORS headers, decided from the
  // request before it is routed).
  void add_headers(const HttpHeaders& headers) {
    for (const auto& [name, value] : headers.fields()) extra_headers_.add(name, value);
  }
  void send(int status, HttpHeaders headers = {}, std::string body = {});
  // A JSON body with Content-Type: application/json.
  void send_json(int status, std::string json, HttpHeaders headers = {});
  // {"code":status,"message":message}, the REST API's error shape.
  void send_error(int status, std::string_view message);

  // Begins a chunked stream declaring `Trailer: X-Stream-Error`. Nothing is written until the
  // first write_chunk(), so that finish() on an empty stream can still answer 204 No Content,
  // or the error as a 500 JSON body when the trailer X-Stream-Error is set (ipfs-cluster rules).
  void start_stream(int status, HttpHeaders headers = {});
  // Queues one chunk. Returns false when unsent bytes are above the high-water mark: the
  // producer should stop and call on_drained() to be resumed. The answer to HEAD ends at the
  // first chunk (its head); that call and any later one return false, and connected() turns
  // false: a producer that checks it after on_drained() stops there.
  bool write_chunk(std::string_view data);
  // Runs `callback` once, when unsent bytes fall to half the high-water mark, or at once if they
  // already have. It also runs when the connection is lost: check connected() in it.
  void on_drained(std::function<void()> callback);
  // Ends the stream with trailers; X-Stream-Error is always sent (empty when not given).
  void finish(HttpHeaders trailers = {});

  // Ends the exchange abruptly by closing the connection: for a stream that cannot go on
  // (a client must not mistake a cut stream for a complete one).
  void abort();

  // The client still takes this answer: its connection is open and the answer not ended.
  bool connected() const;
  size_t buffered_bytes() const;
  bool answered() const { return state_ == State::done; }
  bool streaming() const { return state_ == State::streaming; }

 private:
  enum class State { idle, stream_pending, streaming, done };
  void write_head(int status, HttpHeaders headers, bool chunked, std::string_view body);

  // Strong: while a handler holds the responder (waiting for a commit) the connection has no
  // pending operation of its own that would keep it alive.
  std::shared_ptr<HttpConnection> connection_;
  bool head_request_;
  HttpHeaders extra_headers_;
  int version_minor_;
  State state_ = State::idle;
  int stream_status_ = 200;
  HttpHeaders stream_headers_;
  bool raw_stream_ = false;  // HTTP/1.0 client: no chunking, the end of the body is the close
};

using HttpHandler =
    std::function<void(HttpRequest request, std::shared_ptr<HttpResponder> responder)>;

class HttpServer {
 public:
  HttpServer(asio::io_context& io, HttpServerOptions options, HttpHandler handler);
  ~HttpServer();
  HttpServer(const HttpServer&) = delete;
  HttpServer& operator=(const HttpServer&) = delete;

  // Starts accepting on `endpoint` (may be called for several endpoints). Returns the bound
  // endpoint, with the real port when port 0 was asked. A stale unix socket file is replaced.
  Result<HttpEndpoint> listen(const HttpEndpoint& endpoint);
  // Stops accepting and closes every connection (in-flight answers are dropped). Like every
  // method here, call it on the io_context's thread or once that thread has stopped.
  void stop();
  size_t connection_count() const;
  void set_head_check(HttpHeadCheck check);

  struct Shared;  // state shared with connections, which may outlive the server briefly

 private:
  asio::io_context& io_;
  std::shared_ptr<Shared> shared_;
};

}  // namespace clusterpin::net
