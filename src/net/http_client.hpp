// HTTP/1.1 client on Asio for the CLI (blocking calls with a timeout) and for the daemon's
// io_context (callbacks): the REST API and the Kubo RPC API (POST /api/v0/..., NDJSON streams).
// Connections are kept alive and reused per endpoint; answers can be consumed as they arrive, line
// by line, so a million-line answer never sits in memory; trailers (X-Stream-Error) are returned.
// Failures name the address: "connection refused at 127.0.0.1:5001".
#pragma once

#include <chrono>
#include <functional>
#include <map>
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

struct HttpClientOptions {
  // The whole exchange, connect to last byte; 0 = no limit.
  std::chrono::milliseconds timeout{0};
  // No byte sent or received for this long cancels the request; 0 = no limit. This is the guard
  // for long streams that are healthy as long as they make progress.
  std::chrono::milliseconds stall_timeout{0};
  // Connection establishment.
  std::chrono::milliseconds connect_timeout{5000};
  // Idle keep-alive connections kept per endpoint.
  size_t max_idle_per_endpoint = 4;
  // max_body_bytes applies to bodies collected in HttpClientResponse::body, not to streamed ones.
  HttpLimits limits{8192, 64 * 1024, 256, 256ull << 20, 64 * 1024};
  // How a named endpoint is resolved; unset: the system's resolv.conf and hosts file, read at
  // each new connection.
  std::optional<ResolverConfig> resolver;
};

// Lets the caller end a request under way (or not started yet): cancel() makes it fail with
// `why`, soon after, on the io_context's thread; its connection is closed, not reused. Made for
// one request at a time (the pin tracker cancels a pin/add that an unpin superseded).
class HttpCancel {
 public:
  void cancel(std::string why);
  bool cancelled() const { return why_.has_value(); }
  const std::string& why() const { return *why_; }
  // Set by the request while it runs; called once by cancel().
  void on_cancel(std::function<void(const std::string&)> hook) { hook_ = std::move(hook); }

 private:
  std::optional<std::string> why_;
  std::function<void(const std::string&)> hook_;
};

struct HttpClientRequest {
  std::string method = "GET";
  std::string target = "/";  // path and query, already encoded (see make_target)
  HttpHeaders headers;       // Host, User-Agent and Content-Length are added when missing
  std::string body;
  // When set, replaces `body`: the body is sent with chunked encoding, one piece per call, and
  // an empty piece ends it. Each call happens after the previous piece was written, so a large
  // upload (Kubo block/put, /add) is paced by the socket instead of held in memory.
  std::function<std::string()> body_source;
  std::shared_ptr<HttpCancel> cancel;  // optional
};

struct HttpClientResponse {
  int status = 0;
  std::string reason;
  HttpHeaders headers;
  std::string body;  // empty when a sink consumed it
  HttpHeaders trailers;

  // The X-Stream-Error trailer (ipfs-cluster and Kubo streams), empty when absent or empty.
  std::string stream_error() const {
    return std::string(trailers.get("X-Stream-Error").value_or(""));
  }
};

// How long a streamed answer's reader waits before its next read, given how long handling the
// last read's bytes took (see HttpBodySink::pace).
using ReadPace = std::function<std::chrono::steady_clock::duration(std::chrono::steady_clock::duration took)>;

// Optional streaming consumers. With on_data or on_line set, the body is not collected.
// Returning false stops the exchange: the request ends with an error saying so.
// Cuts a byte stream into lines, without their "\n" or "\r\n"; empty lines are skipped. A line
// that arrived whole is handed over where it lies; only a line split between two pieces is
// put together. `on_line` returning false stops the feed (feed and finish return false).
class LineSplitter {
 public:
  using OnLine = std::function<bool(std::string_view line)>;
  bool feed(std::string_view data, const OnLine& on_line);
  // The last line when the stream did not end with a newline.
  bool finish(const OnLine& on_line);

 private:
  std::string partial_;
};

struct HttpBodySink {
  std::function<void(const HttpResponseHead&)> on_head;
  std::function<bool(std::string_view data)> on_data;
  // One call per non-empty line, without its "\n" or "\r\n"; a last line without a newline
  // is delivered when the body ends.
  std::function<bool(std::string_view line)> on_line;
  // Called after the bytes of each read were handled, with the time handling them took; the
  // next read waits for the duration returned (zero: at once). While it waits the sender is
  // held back by TCP's flow control, so a reader of a long stream can give way to other work
  // on the same thread. The wait does not count toward stall_timeout.
  ReadPace pace;
};

using HttpResponseCallback = std::function<void(Result<HttpClientResponse>)>;

class HttpClient {
 public:
  explicit HttpClient(asio::io_context& io, HttpClientOptions options = {});
  ~HttpClient();
  HttpClient(const HttpClient&) = delete;
  HttpClient& operator=(const HttpClient&) = delete;

  // Sends `request` to `endpoint`; `done` runs once, on the io_context's thread, with the
  // response (any status: a 500 is a response, not an error) or a transport error. A request on a
  // reused connection that the server had closed is retried once on a new connection.
  void request(const HttpEndpoint& endpoint, HttpClientRequest request, HttpResponseCallback done,
               HttpBodySink sink = {});

  size_t idle_connections() const;
  void close_idle();

  struct Shared;

 private:
  asio::io_context& io_;
  std::shared_ptr<Shared> shared_;
};

// A client with its own io_context, for programs without an event loop (the CLI).
class BlockingHttpClient {
 public:
  explicit BlockingHttpClient(HttpClientOptions options = {});
  // Runs the exchange to completion on the calling thread.
  Result<HttpClientResponse> request(const HttpEndpoint& endpoint, HttpClientRequest request,
                                     HttpBodySink sink = {});
  size_t idle_connections() const { return client_.idle_connections(); }

 private:
  asio::io_context io_;
  HttpClient client_;
};

}  // namespace clusterpin::net
