// Loopback tests of HttpServer and HttpClient together, plus raw sockets for what a well-behaved
// client never sends (garbage, pipelining, slowloris, oversized headers). Servers run on their own
// io_context thread on 127.0.0.1 with an OS-chosen port. Timings are bounds that only a hung or
// broken implementation exceeds; the throughput case prints numbers and asserts none.
#define DOCTEST_CONFIG_IMPLEMENT_WITH_MAIN
#include <doctest/doctest.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <filesystem>
#include <future>
#include <mutex>
#include <optional>
#include <thread>

#include <fmt/format.h>

#include "net/http_client.hpp"
#include "net/http_multipart.hpp"
#include "net/http_server.hpp"
#include "net/http_url.hpp"

using namespace clusterpin::net;
using namespace std::chrono_literals;
using std::chrono::milliseconds;
using Clock = std::chrono::steady_clock;

namespace {

// `size` bytes of a sequence that does not repeat every power of two.
std::string pattern(size_t size) {
  std::string out(size, '\0');
  for (size_t i = 0; i < size; ++i) out[i] = static_cast<char>('a' + i % 23);
  return out;
}

// Streams `count` NDJSON lines, waiting for the socket to drain whenever the responder asks.
struct LineStream : std::enable_shared_from_this<LineStream> {
  std::shared_ptr<HttpResponder> responder;
  size_t count = 0;
  size_t next = 0;
  std::string error;
  std::atomic<size_t>* max_buffered = nullptr;
  std::atomic<size_t>* lines_written = nullptr;

  void pump() {
    while (next < count) {
      if (!responder->connected()) return;
      bool more = responder->write_chunk(
          fmt::format("{{\"n\":{},\"pad\":\"{}\"}}\n", next, std::string(40, 'x')));
      ++next;
      if (lines_written) ++*lines_written;
      size_t buffered = responder->buffered_bytes();
      if (max_buffered && buffered > max_buffered->load()) max_buffered->store(buffered);
      if (!more) {
        responder->on_drained([self = shared_from_this()] { self->pump(); });
        return;
      }
    }
    HttpHeaders trailers;
    if (!error.empty()) trailers.add("X-Stream-Error", error);
    responder->finish(trailers);
  }
};

// Writes ten lines, one every 50ms.
struct Drip : std::enable_shared_from_this<Drip> {
  Drip(asio::io_context& io, std::shared_ptr<HttpResponder> w)
      : timer(io), responder(std::move(w)) {}
  asio::steady_timer timer;
  std::shared_ptr<HttpResponder> responder;
  int left = 10;

  void tick() {
    if (!responder->connected()) return;
    if (left-- == 0) {
      responder->finish();
      return;
    }
    responder->write_chunk("{\"Progress\":1}\n");
    timer.expires_after(50ms);
    timer.async_wait([self = shared_from_this()](asio::error_code ec) {
      if (!ec) self->tick();
    });
  }
};

// A server on its own thread with the routes the tests need.
class TestServer {
 public:
  explicit TestServer(HttpServerOptions options = {}, std::string unix_path = {})
      : server_(io_, std::move(options), [this](HttpRequest r, std::shared_ptr<HttpResponder> w) {
          handle(std::move(r), std::move(w));
        }) {
    auto bound = unix_path.empty()
                     ? server_.listen(HttpEndpoint::tcp(asio::ip::address_v4::loopback(), 0))
                     : server_.listen(HttpEndpoint::unix_socket(unix_path));
    REQUIRE(bound.ok());
    endpoint_ = *bound;
    thread_ = std::thread([this] { io_.run(); });
  }
  ~TestServer() {
    asio::post(io_, [this] {
      server_.stop();
      io_.stop();
    });
    thread_.join();
  }

  const HttpEndpoint& endpoint() const { return endpoint_; }
  uint16_t port() const { return endpoint_.port; }
  std::atomic<size_t> max_buffered{0};
  std::atomic<size_t> stream_lines{0};  // lines the /stream producers wrote, all together
  std::atomic<int> requests{0};

  std::vector<std::string> remotes() {
    std::lock_guard<std::mutex> lock(mutex_);
    return remotes_;
  }
  size_t connection_count() {
    std::promise<size_t> p;
    asio::post(io_, [&] { p.set_value(server_.connection_count()); });
    return p.get_future().get();
  }
  void set_head_check(HttpHeadCheck check) {
    std::promise<void> p;
    asio::post(io_, [&] {
      server_.set_head_check(std::move(check));
      p.set_value();
    });
    p.get_future().get();
  }

 private:
  void handle(HttpRequest r, std::shared_ptr<HttpResponder> w) {
    ++requests;
    {
      std::lock_guard<std::mutex> lock(mutex_);
      remotes_.push_back(r.remote);
    }
    if (r.path == "/hello") {
      w->send(200, {{"Content-Type", "text/plain"}}, "hello");
    } else if (r.path == "/echo") {
      std::string args;
      for (auto a : r.query_values("arg")) args += std::string(a) + ";";
      HttpHeaders h{{"X-Method", r.method},
                    {"X-Args", args},
                    {"X-Content-Type", std::string(r.headers.get("content-type").value_or(""))}};
      w->send(200, std::move(h), r.body);
    } else if (r.path == "/stream" || r.path == "/stream-error") {
      auto s = std::make_shared<LineStream>();
      s->responder = w;
      s->count = std::stoul(std::string(r.query_value("n").value_or("10")));
      s->max_buffered = &max_buffered;
      s->lines_written = &stream_lines;
      if (r.path == "/stream-error") s->error = "boom";
      w->start_stream(200, {{"Content-Type", "application/json"}});
      s->pump();
    } else if (r.path == "/empty") {
      w->start_stream(200, {{"Content-Type", "application/json"}});
      w->finish();
    } else if (r.path == "/fail-first") {
      w->start_stream(200, {{"Content-Type", "application/json"}});
      w->finish({{"X-Stream-Error", "no peer answered"}});
    } else if (r.path == "/later" || r.path == "/silent") {
      // Answers from a timer, as a handler waiting for a Raft commit would.
      milliseconds delay(std::stoi(std::string(r.query_value("ms").value_or("100"))));
      auto timer = std::make_shared<asio::steady_timer>(io_, delay);
      timer->async_wait([timer, w](asio::error_code) { w->send(200, {}, "later"); });
    } else if (r.path == "/drip") {
      // Ten lines, one every 50ms: steady progress for a long time.
      w->start_stream(200);
      auto drip = std::make_shared<Drip>(io_, w);
      drip->tick();
    } else if (r.path == "/big") {
      // One whole body of `bytes` bytes in a pattern that shows a lost or repeated piece.
      size_t bytes = std::stoul(std::string(r.query_value("bytes").value_or("0")));
      w->send(200, {{"Content-Type", "application/octet-stream"}}, pattern(bytes));
    } else if (r.path == "/line-breaks") {
      // Field values with line breaks, as an error text taken from elsewhere may have.
      w->start_stream(200, {{"X-Note", "first\r\nX-Injected: yes"}});
      w->write_chunk("{}\n");
      w->finish(
          {{"X-Stream-Error", "line one\r\n\r\nline two"}, {"X-Other", "a\nb\rc\001d\te\177"}});
    } else if (r.path == "/drop") {
      // The handler forgets to answer: the responder's destructor answers 500.
    } else if (r.path == "/stream-throw") {
      w->start_stream(200);
      w->write_chunk("{\"n\":0}\n");
      throw std::runtime_error("stream exploded");
    } else if (r.path == "/throw") {
      throw std::runtime_error("handler exploded");
    } else {
      w->send_error(404, fmt::format("no route for {}", r.path));
    }
  }

  asio::io_context io_;
  HttpServer server_;
  HttpEndpoint endpoint_;
  std::thread thread_;
  std::mutex mutex_;
  std::vector<std::string> remotes_;
};

// A plain POSIX socket for sending exactly the bytes a test wants.
class RawClient {
 public:
  // `receive_buffer` > 0 sets SO_RCVBUF before the connect, so that the window stays small.
  explicit RawClient(uint16_t port, int receive_buffer = 0) {
    fd_ = ::socket(AF_INET, SOCK_STREAM, 0);
    if (receive_buffer > 0)
      ::setsockopt(fd_, SOL_SOCKET, SO_RCVBUF, &receive_buffer, sizeof receive_buffer);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_port = htons(port);
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    REQUIRE(::connect(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0);
  }
  ~RawClient() { ::close(fd_); }

  bool send(std::string_view data) {
    return ::send(fd_, data.data(), data.size(), MSG_NOSIGNAL) == static_cast<ssize_t>(data.size());
  }
  // Reads until `done(received)` holds, the peer closes, or `timeout` passes.
  // With `piece` and `pause` set, reads at most `piece` bytes at a time and sleeps `pause`
  // after each read: a slow but steady reader.
  std::string read_until(const std::function<bool(const std::string&)>& done, milliseconds timeout,
                         size_t piece = 65536, milliseconds pause = 0ms) {
    auto end = Clock::now() + timeout;
    while (!done(received_) && !eof_) {
      auto left = std::chrono::duration_cast<milliseconds>(end - Clock::now());
      if (left.count() <= 0) break;
      pollfd p{fd_, POLLIN, 0};
      if (::poll(&p, 1, static_cast<int>(left.count())) <= 0) break;
      char buf[65536];
      ssize_t n = ::recv(fd_, buf, std::min(piece, sizeof buf), 0);
      if (n <= 0) {
        eof_ = true;
        break;
      }
      received_.append(buf, static_cast<size_t>(n));
      if (pause.count() > 0) std::this_thread::sleep_for(pause);
    }
    return received_;
  }
  std::string read_to_eof(milliseconds timeout) {
    return read_until([](const std::string&) { return false; }, timeout);
  }
  bool eof() const { return eof_; }

 private:
  int fd_ = -1;
  std::string received_;
  bool eof_ = false;
};

// A TCP port on 127.0.0.1 where connects are never answered, like a host that drops packets:
// its listener (backlog 0) never accepts and its queue is filled first, so Linux drops every
// further SYN. close() makes the port refuse instead, which ends any connect still trying.
class Blackhole {
 public:
  Blackhole() {
    listener_ = ::socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    REQUIRE(::bind(listener_, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0);
    REQUIRE(::listen(listener_, 0) == 0);
    socklen_t length = sizeof addr;
    REQUIRE(::getsockname(listener_, reinterpret_cast<sockaddr*>(&addr), &length) == 0);
    port_ = ntohs(addr.sin_port);
    for (int i = 0; i < 2; ++i) {
      int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
      ::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr);  // in progress
      fillers_.push_back(fd);
    }
    // The first filler takes the queue's only place; once it is connected the queue is full.
    pollfd p{fillers_[0], POLLOUT, 0};
    REQUIRE(::poll(&p, 1, 2000) == 1);
  }
  ~Blackhole() {
    close();
    for (int fd : fillers_) ::close(fd);
  }
  void close() {
    if (listener_ >= 0) ::close(listener_);
    listener_ = -1;
  }
  uint16_t port() const { return port_; }

 private:
  int listener_ = -1;
  uint16_t port_ = 0;
  std::vector<int> fillers_;
};

// Answers one connection with fixed bytes once the request head is in, then closes it: for
// answers our server never gives (an HTTP/1.0 body delimited by the close).
class CannedServer {
 public:
  explicit CannedServer(std::string answer) {
    listener_ = ::socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    REQUIRE(::bind(listener_, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0);
    REQUIRE(::listen(listener_, 8) == 0);
    socklen_t length = sizeof addr;
    REQUIRE(::getsockname(listener_, reinterpret_cast<sockaddr*>(&addr), &length) == 0);
    port_ = ntohs(addr.sin_port);
    thread_ = std::thread([this, answer = std::move(answer)] {
      int fd = ::accept(listener_, nullptr, nullptr);
      if (fd < 0) return;  // the destructor shut the listener down
      std::string request;
      char buf[4096];
      while (request.find("\r\n\r\n") == std::string::npos) {
        ssize_t n = ::recv(fd, buf, sizeof buf, 0);
        if (n <= 0) break;
        request.append(buf, static_cast<size_t>(n));
      }
      ::send(fd, answer.data(), answer.size(), MSG_NOSIGNAL);
      ::close(fd);
    });
  }
  ~CannedServer() {
    ::shutdown(listener_, SHUT_RDWR);  // wakes an accept that never got a connection
    thread_.join();
    ::close(listener_);
  }
  HttpEndpoint endpoint() const {
    return HttpEndpoint::tcp(asio::ip::address_v4::loopback(), port_);
  }

 private:
  int listener_ = -1;
  uint16_t port_ = 0;
  std::thread thread_;
};

size_t count_of(const std::string& text, std::string_view needle) {
  size_t n = 0;
  for (size_t pos = text.find(needle); pos != std::string::npos; pos = text.find(needle, pos + 1))
    ++n;
  return n;
}

HttpClientRequest get(std::string target) {
  HttpClientRequest r;
  r.target = std::move(target);
  return r;
}

}  // namespace

TEST_CASE("a request and its answer round-trip: method, repeated query args, headers and body") {
  TestServer server;
  BlockingHttpClient client;
  auto form = MultipartForm();
  form.add_file("file", "hello.txt", "hello clusterpin\n");
  auto multipart = form.encode();
  HttpClientRequest r;
  r.method = "POST";
  r.target = make_target("/echo", {{"arg", "/ipfs/Qm a"}, {"arg", "b&c"}});
  r.headers.add("Content-Type", multipart.content_type);
  r.body = multipart.body;
  auto answer = client.request(server.endpoint(), r);
  REQUIRE(answer.ok());
  CHECK(answer->status == 200);
  CHECK(answer->reason == "OK");
  CHECK(answer->headers.get("x-method") == "POST");
  CHECK(answer->headers.get("X-ARGS") == "/ipfs/Qm a;b&c;");
  CHECK(answer->headers.get("x-content-type") == multipart.content_type);
  CHECK(answer->body == multipart.body);
  CHECK(answer->body.find("name=\"file\"; filename=\"hello.txt\"") != std::string::npos);

  auto missing = client.request(server.endpoint(), get("/nowhere"));
  REQUIRE(missing.ok());
  CHECK(missing->status == 404);
  CHECK(missing->headers.get("Content-Type") == "application/json");
  CHECK(missing->body == "{\"code\":404,\"message\":\"no route for /nowhere\"}");
}

TEST_CASE("a streamed request body goes out chunked, piece by piece, and arrives whole") {
  TestServer server;
  BlockingHttpClient client;
  HttpClientRequest r;
  r.method = "POST";
  r.target = "/echo";
  int pieces = 0;
  std::string expected;
  r.body_source = [&]() -> std::string {
    if (pieces == 500) return {};
    std::string piece = fmt::format("block {:04} {}\n", pieces++, std::string(1000, 'z'));
    expected += piece;
    return piece;
  };
  auto answer = client.request(server.endpoint(), r);
  REQUIRE(answer.ok());
  CHECK(answer->status == 200);
  CHECK(pieces == 500);
  CHECK(answer->body.size() == expected.size());
  CHECK(answer->body == expected);
  CHECK(client.idle_connections() == 1);
}

TEST_CASE("keep-alive: sequential requests reuse one connection") {
  TestServer server;
  BlockingHttpClient client;
  for (int i = 0; i < 20; ++i) {
    auto answer = client.request(server.endpoint(), get("/hello"));
    REQUIRE(answer.ok());
    CHECK(answer->body == "hello");
  }
  auto remotes = server.remotes();
  REQUIRE(remotes.size() == 20);
  for (const auto& remote : remotes) CHECK(remote == remotes[0]);
  CHECK(client.idle_connections() == 1);
  CHECK(server.connection_count() == 1);
}

TEST_CASE(
    "a stream of 200000 NDJSON lines arrives line by line with its trailer, under backpressure") {
  HttpServerOptions options;
  options.stream_high_water_bytes = 64 * 1024;
  TestServer server(options);
  BlockingHttpClient client;
  size_t lines = 0;
  bool ordered = true;
  HttpBodySink sink;
  // Each line whole and exact, also those split between two reads of the socket.
  sink.on_line = [&](std::string_view line) {
    ordered = ordered && line == fmt::format("{{\"n\":{},\"pad\":\"{}\"}}", lines, std::string(40, 'x'));
    ++lines;
    return true;
  };
  auto answer = client.request(server.endpoint(), get("/stream?n=200000"), sink);
  REQUIRE(answer.ok());
  CHECK(answer->status == 200);
  CHECK(answer->headers.get("Transfer-Encoding") == "chunked");
  CHECK(answer->headers.get("Trailer") == "X-Stream-Error");
  CHECK(answer->body.empty());  // consumed by the sink, not collected
  CHECK(lines == 200000);
  CHECK(ordered);
  CHECK(answer->trailers.has("X-Stream-Error"));
  CHECK(answer->stream_error().empty());
  // ~14 MB went out, but unsent bytes never grew far past the high-water mark.
  CHECK(server.max_buffered.load() < 64 * 1024 + 1024);
  // The connection is reusable after a chunked answer.
  CHECK(client.request(server.endpoint(), get("/hello"))->body == "hello");
  CHECK(client.idle_connections() == 1);
}

TEST_CASE("a paced reader waits as its pace says after each read; the pauses are not stalls") {
  TestServer server;
  HttpClientOptions options;
  options.stall_timeout = 100ms;  // shorter than each pause below
  BlockingHttpClient client(options);
  size_t lines = 0;
  bool ordered = true;
  size_t paces = 0;
  bool took_measured = true;
  std::optional<Clock::time_point> resume_at;  // no line may arrive before this
  bool early = false;
  HttpBodySink sink;
  sink.on_line = [&](std::string_view line) {
    if (resume_at) {
      early = early || Clock::now() < *resume_at;
      resume_at.reset();
    }
    ordered = ordered && line == fmt::format("{{\"n\":{},\"pad\":\"{}\"}}", lines, std::string(40, 'x'));
    ++lines;
    return true;
  };
  sink.pace = [&](Clock::duration took) -> Clock::duration {
    ++paces;
    took_measured = took_measured && took >= Clock::duration::zero();
    if (paces > 3) return Clock::duration::zero();
    resume_at = Clock::now() + 150ms;
    return 150ms;
  };
  auto answer = client.request(server.endpoint(), get("/stream?n=20000"), sink);
  REQUIRE(answer.ok());
  CHECK(lines == 20000);
  CHECK(ordered);
  CHECK(paces > 3);  // ~1.1 MB comes in many reads, each followed by a call
  CHECK(took_measured);
  CHECK_FALSE(early);
  CHECK(client.request(server.endpoint(), get("/hello"))->body == "hello");
}

TEST_CASE("a stream that fails midway reports the error in the X-Stream-Error trailer") {
  TestServer server;
  BlockingHttpClient client;
  auto answer = client.request(server.endpoint(), get("/stream-error?n=3"));
  REQUIRE(answer.ok());
  CHECK(answer->status == 200);
  CHECK(count_of(answer->body, "\n") == 3);
  CHECK(answer->stream_error() == "boom");
}

TEST_CASE("line breaks in header and trailer values are sent as spaces: one field, one value") {
  HttpServerOptions options;
  options.default_headers.add("X-Default", "a\r\nX-Injected-Default: yes");
  TestServer server(options);
  BlockingHttpClient client;
  auto answer = client.request(server.endpoint(), get("/line-breaks"));
  REQUIRE(answer.ok());
  CHECK(answer->status == 200);
  CHECK(answer->headers.get_all("X-Note").size() == 1);
  CHECK(answer->headers.get("X-Note") == "first  X-Injected: yes");
  CHECK(answer->headers.get("X-Default") == "a  X-Injected-Default: yes");
  CHECK_FALSE(answer->headers.has("X-Injected"));
  CHECK_FALSE(answer->headers.has("X-Injected-Default"));
  CHECK(answer->body == "{}\n");
  CHECK(answer->stream_error() == "line one    line two");
  CHECK(answer->trailers.get("X-Other") == "a b c d\te");  // a tab is allowed, DEL is not
  // Nothing was left over after the trailers: the connection is clean and reused.
  CHECK(client.idle_connections() == 1);
  CHECK(client.request(server.endpoint(), get("/hello"))->body == "hello");
  CHECK(server.remotes().front() == server.remotes().back());
}

TEST_CASE(
    "an empty stream answers 204 and a stream failing before its first item answers 500 JSON") {
  TestServer server;
  BlockingHttpClient client;
  auto empty = client.request(server.endpoint(), get("/empty"));
  REQUIRE(empty.ok());
  CHECK(empty->status == 204);
  CHECK(empty->body.empty());
  CHECK(!empty->headers.has("Content-Length"));
  auto failed = client.request(server.endpoint(), get("/fail-first"));
  REQUIRE(failed.ok());
  CHECK(failed->status == 500);
  CHECK(failed->body == "{\"code\":500,\"message\":\"no peer answered\"}");
  CHECK(client.idle_connections() == 1);  // both kept the connection alive
}

TEST_CASE("HEAD gets the headers of GET without a body") {
  TestServer server;
  BlockingHttpClient client;
  HttpClientRequest r = get("/hello");
  r.method = "HEAD";
  auto answer = client.request(server.endpoint(), r);
  REQUIRE(answer.ok());
  CHECK(answer->status == 200);
  CHECK(answer->headers.get("Content-Length") == "5");
  CHECK(answer->body.empty());
  CHECK(client.request(server.endpoint(), get("/hello"))->body == "hello");
}

TEST_CASE("HEAD of a stream ends at its head: the producer stops, the connection goes on") {
  TestServer server;
  BlockingHttpClient client;
  HttpClientRequest r = get("/stream?n=100000");
  r.method = "HEAD";
  auto answer = client.request(server.endpoint(), r);
  REQUIRE(answer.ok());
  CHECK(answer->status == 200);
  CHECK(answer->headers.get("Content-Type") == "application/json");
  CHECK(answer->body.empty());
  // The same connection answers the next request, and the producer never got past its first
  // line (before, it produced all 100,000 for nobody).
  auto next = client.request(server.endpoint(), get("/hello"));
  REQUIRE(next.ok());
  CHECK(next->body == "hello");
  CHECK(client.idle_connections() == 1);
  CHECK(server.stream_lines.load() == 1);
  // GET of the same stream still sends every line.
  auto whole = client.request(server.endpoint(), get("/stream?n=500"));
  REQUIRE(whole.ok());
  CHECK(std::count(whole->body.begin(), whole->body.end(), '\n') == 500);
}

TEST_CASE("OPTIONS * is answered by the server itself; OPTIONS on a path goes to the handler") {
  TestServer server;
  RawClient raw(server.port());
  raw.send("OPTIONS * HTTP/1.1\r\n\r\nOPTIONS /hello HTTP/1.1\r\n\r\nGET * HTTP/1.1\r\n\r\n");
  std::string got = raw.read_until(
      [](const std::string& s) { return s.find("\"code\":400") != std::string::npos; }, 2s);
  CHECK(got.rfind("HTTP/1.1 204 No Content\r\nAllow: GET, HEAD, POST, PUT, DELETE, OPTIONS\r\n",
                  0) == 0);
  CHECK(got.find("hello") != std::string::npos);  // the test handler answers any method on /hello
  CHECK(got.find("HTTP/1.1 400 Bad Request") != std::string::npos);
  CHECK(server.requests.load() == 1);
}

TEST_CASE("handlers may answer later, and a dropped or throwing handler yields 500") {
  TestServer server;
  BlockingHttpClient client;
  auto later = client.request(server.endpoint(), get("/later?ms=100"));
  REQUIRE(later.ok());
  CHECK(later->body == "later");
  auto dropped = client.request(server.endpoint(), get("/drop"));
  REQUIRE(dropped.ok());
  CHECK(dropped->status == 500);
  CHECK(dropped->body.find("did not answer") != std::string::npos);
  auto thrown = client.request(server.endpoint(), get("/throw"));
  REQUIRE(thrown.ok());
  CHECK(thrown->status == 500);
  CHECK(thrown->body.find("handler exploded") != std::string::npos);
}

TEST_CASE(
    "a stream cut by a handler failure is seen by the client as incomplete, not as complete") {
  TestServer server;
  BlockingHttpClient client;
  auto answer = client.request(server.endpoint(), get("/stream-throw"));
  REQUIRE(!answer.ok());
  CHECK(answer.error().message ==
        fmt::format("connection to 127.0.0.1:{} closed before the response was complete",
                    server.port()));
}

TEST_CASE("pipelined requests are answered in order on one connection") {
  TestServer server;
  RawClient raw(server.port());
  REQUIRE(
      raw.send("GET /later?ms=150 HTTP/1.1\r\nHost: x\r\n\r\n"
               "POST /echo?arg=second HTTP/1.1\r\nHost: x\r\nContent-Length: 6\r\n\r\nsecond"
               "GET /hello HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"));
  std::string all = raw.read_to_eof(5s);
  CHECK(raw.eof());
  CHECK(count_of(all, "HTTP/1.1 200 OK") == 3);
  size_t first = all.find("later");
  size_t second = all.find("second");
  size_t third = all.find("hello");
  CHECK(first != std::string::npos);
  CHECK(first < second);
  CHECK(second < third);
  CHECK(all.find("Connection: close") != std::string::npos);
}

TEST_CASE("a slowloris client is cut off with 408 while another client is served") {
  HttpServerOptions options;
  options.read_header_timeout = 300ms;
  TestServer server(options);
  RawClient slow(server.port());
  REQUIRE(slow.send("GET /hello HTTP/1.1\r\nX-Slow: "));
  auto started = Clock::now();
  BlockingHttpClient client;
  int served = 0;
  // Keep dripping one header byte every 20ms while a normal client makes requests.
  while (Clock::now() - started < 1500ms && !slow.eof()) {
    if (!slow.send("a")) break;
    auto answer = client.request(server.endpoint(), get("/hello"));
    if (answer.ok() && answer->body == "hello") ++served;
    std::this_thread::sleep_for(20ms);
    slow.read_until([](const std::string& s) { return !s.empty(); }, 1ms);
  }
  std::string got = slow.read_to_eof(2s);
  auto elapsed = Clock::now() - started;
  CHECK(got.rfind("HTTP/1.1 408 Request Timeout\r\n", 0) == 0);
  CHECK(got.find("{\"code\":408,") != std::string::npos);
  // The message names what was late and the limit it missed.
  CHECK(got.find("timed out reading the request head: it must arrive within 300ms "
                 "(read_header_timeout)") != std::string::npos);
  CHECK(slow.eof());
  CHECK(elapsed < 3s);
  CHECK(served > 5);
}

TEST_CASE("read_header_timeout covers only the header: a slow body is still accepted") {
  HttpServerOptions options;
  options.read_header_timeout = 200ms;
  TestServer server(options);
  RawClient raw(server.port());
  raw.send("POST /echo HTTP/1.1\r\nContent-Length: 4\r\n\r\nab");
  std::this_thread::sleep_for(400ms);
  raw.send("cd");
  std::string got =
      raw.read_until([](const std::string& s) { return s.find("abcd") != std::string::npos; }, 2s);
  CHECK(got.rfind("HTTP/1.1 200 OK\r\n", 0) == 0);
  CHECK(got.find("abcd") != std::string::npos);
}

TEST_CASE("read_timeout 0: a body that stops coming is cut after idle_timeout, a slow one is not") {
  HttpServerOptions options;
  options.idle_timeout = 300ms;  // read_timeout stays 0, the default
  TestServer server(options);
  {
    RawClient raw(server.port());
    raw.send("POST /echo HTTP/1.1\r\nContent-Length: 1000\r\n\r\nabc");
    auto start = Clock::now();
    std::string got = raw.read_to_eof(5s);
    CHECK(raw.eof());
    CHECK(Clock::now() - start < 3s);
    CHECK(got.rfind("HTTP/1.1 408 Request Timeout\r\n", 0) == 0);
    CHECK(got.find("no bytes of the request body for 300ms") != std::string::npos);
  }
  {
    // One byte every 100ms: over a second in all, but never 300ms without progress.
    RawClient raw(server.port());
    raw.send("POST /echo HTTP/1.1\r\nContent-Length: 10\r\n\r\n");
    for (char c : std::string_view("0123456789")) {
      std::this_thread::sleep_for(100ms);
      REQUIRE(raw.send(std::string(1, c)));
    }
    std::string got = raw.read_until(
        [](const std::string& s) { return s.find("0123456789") != std::string::npos; }, 2s);
    CHECK(got.rfind("HTTP/1.1 200 OK\r\n", 0) == 0);
    CHECK(got.find("\r\n\r\n0123456789") != std::string::npos);
    CHECK_FALSE(raw.eof());
  }
}

TEST_CASE("Expect: 100-continue gets an interim 100 before the body is sent") {
  TestServer server;
  RawClient raw(server.port());
  raw.send("POST /echo HTTP/1.1\r\nContent-Length: 5\r\nExpect: 100-continue\r\n\r\n");
  std::string interim = raw.read_until(
      [](const std::string& s) { return s.find("\r\n\r\n") != std::string::npos; }, 2s);
  CHECK(interim == "HTTP/1.1 100 Continue\r\n\r\n");
  raw.send("hello");
  std::string got = raw.read_until(
      [](const std::string& s) { return s.find("\r\n\r\nhello") != std::string::npos; }, 2s);
  CHECK(got.find("HTTP/1.1 200 OK") != std::string::npos);
}

TEST_CASE("a head check refuses before the body is read, with its headers, and closes") {
  TestServer server;
  server.set_head_check([](const HttpRequest& head) -> std::optional<HttpRefusal> {
    if (head.headers.get("Authorization") == std::optional<std::string_view>("let me in"))
      return std::nullopt;
    return HttpRefusal{401, "unauthorized: no", {{"WWW-Authenticate", "Basic realm=\"x\""}}};
  });
  {
    // A body of 10 MB is announced and never sent: the answer comes anyway, without a 100.
    RawClient raw(server.port());
    raw.send("POST /echo HTTP/1.1\r\nContent-Length: 10000000\r\nExpect: 100-continue\r\n\r\n");
    std::string got = raw.read_to_eof(3s);
    CHECK(raw.eof());
    CHECK(got.rfind("HTTP/1.1 401 Unauthorized\r\n", 0) == 0);
    CHECK(got.find("WWW-Authenticate: Basic realm=\"x\"\r\n") != std::string::npos);
    CHECK(got.find("Connection: close\r\n") != std::string::npos);
    CHECK(got.find("{\"code\":401,\"message\":\"unauthorized: no\"}") != std::string::npos);
    CHECK(got.find("100 Continue") == std::string::npos);
  }
  CHECK(server.requests == 0);  // the handler never saw it
  {
    // HEAD: the refusal's headers without its body.
    RawClient raw(server.port());
    raw.send("HEAD /echo HTTP/1.1\r\n\r\n");
    std::string got = raw.read_to_eof(3s);
    CHECK(got.rfind("HTTP/1.1 401 Unauthorized\r\n", 0) == 0);
    CHECK(got.size() == got.find("\r\n\r\n") + 4);
  }
  RawClient raw(server.port());
  raw.send("POST /echo HTTP/1.1\r\nAuthorization: let me in\r\nContent-Length: 5\r\n\r\nhello");
  std::string got = raw.read_until(
      [](const std::string& s) { return s.find("\r\n\r\nhello") != std::string::npos; }, 2s);
  CHECK(got.rfind("HTTP/1.1 200 OK\r\n", 0) == 0);
  CHECK(server.requests == 1);
}

TEST_CASE("bodies being received share a budget: beyond it 503 and close, freed once handled") {
  HttpServerOptions options;
  options.max_body_bytes_in_flight = 1000;
  TestServer server(options);
  RawClient first(server.port());
  first.send("POST /echo HTTP/1.1\r\nContent-Length: 800\r\n\r\n" + std::string(700, 'a'));
  std::this_thread::sleep_for(200ms);  // the server holds 700 bytes of it
  {
    RawClient second(server.port());
    second.send("POST /echo HTTP/1.1\r\nContent-Length: 800\r\n\r\n" + std::string(800, 'b'));
    std::string got = second.read_to_eof(3s);
    CHECK(got.rfind("HTTP/1.1 503 ", 0) == 0);
    CHECK(got.find("too many request bodies") != std::string::npos);
    CHECK(second.eof());
  }
  first.send(std::string(100, 'a'));
  std::string got = first.read_until(
      [](const std::string& s) { return s.find(std::string(800, 'a')) != std::string::npos; }, 2s);
  CHECK(got.rfind("HTTP/1.1 200 OK\r\n", 0) == 0);
  // The first body was handed to the handler: its bytes left the budget.
  RawClient third(server.port());
  third.send("POST /echo HTTP/1.1\r\nContent-Length: 900\r\n\r\n" + std::string(900, 'c'));
  std::string again = third.read_until(
      [](const std::string& s) { return s.find(std::string(900, 'c')) != std::string::npos; }, 2s);
  CHECK(again.rfind("HTTP/1.1 200 OK\r\n", 0) == 0);
}

TEST_CASE("oversized headers get 431, oversized bodies 413, garbage 400, all as JSON, then close") {
  HttpServerOptions options;
  options.limits.max_body_bytes = 1000;
  TestServer server(options);
  {
    RawClient raw(server.port());
    raw.send("GET /hello HTTP/1.1\r\nX-Big: " + std::string(5000, 'a') + "\r\n\r\n");
    std::string got = raw.read_to_eof(2s);
    CHECK(got.rfind("HTTP/1.1 431 ", 0) == 0);
    CHECK(got.find("{\"code\":431,\"message\":") != std::string::npos);
    CHECK(raw.eof());
  }
  {
    BlockingHttpClient client;
    HttpClientRequest r;
    r.method = "POST";
    r.target = "/echo";
    r.body = std::string(5000, 'b');
    auto answer = client.request(server.endpoint(), r);
    REQUIRE(answer.ok());
    CHECK(answer->status == 413);
    CHECK(answer->body.find("{\"code\":413,") == 0);
    CHECK(answer->headers.get("Connection") == "close");
    CHECK(client.idle_connections() == 0);
  }
  {
    RawClient raw(server.port());
    // The start of a TLS ClientHello: no line end ever comes, the first byte is enough.
    raw.send(std::string("\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03", 11));
    std::string got = raw.read_to_eof(2s);
    CHECK(got.rfind("HTTP/1.1 400 Bad Request\r\n", 0) == 0);
    CHECK(got.find("\"code\":400") != std::string::npos);
    CHECK(raw.eof());
  }
  {
    RawClient raw(server.port());
    raw.send("GET / HTTP/3.0\r\n\r\n");
    CHECK(raw.read_to_eof(2s).rfind("HTTP/1.1 505 ", 0) == 0);
  }
  // The server is still fine.
  BlockingHttpClient client;
  CHECK(client.request(server.endpoint(), get("/hello"))->body == "hello");
}

TEST_CASE(
    "an idle keep-alive connection is closed after idle_timeout and the client retries once") {
  HttpServerOptions options;
  options.idle_timeout = 150ms;
  TestServer server(options);
  {
    RawClient raw(server.port());
    raw.send("GET /hello HTTP/1.1\r\n\r\n");
    auto start = Clock::now();
    raw.read_to_eof(3s);
    CHECK(raw.eof());
    CHECK(Clock::now() - start < 2s);
  }
  BlockingHttpClient client;
  CHECK(client.request(server.endpoint(), get("/hello"))->body == "hello");
  CHECK(client.idle_connections() == 1);
  std::this_thread::sleep_for(400ms);  // the pooled connection is now closed by the server
  auto answer = client.request(server.endpoint(), get("/hello"));
  REQUIRE(answer.ok());
  CHECK(answer->body == "hello");
  auto remotes = server.remotes();
  CHECK(remotes.front() != remotes.back());  // a new connection carried the retry
}

TEST_CASE("connections beyond max_connections get 503") {
  HttpServerOptions options;
  options.max_connections = 2;
  TestServer server(options);
  RawClient a(server.port());
  RawClient b(server.port());
  a.send("GET /hello HTTP/1.1\r\n\r\n");
  b.send("GET /hello HTTP/1.1\r\n\r\n");
  CHECK(a.read_until([](const std::string& s) { return s.find("hello") != std::string::npos; }, 2s)
            .find("200 OK") != std::string::npos);
  CHECK(b.read_until([](const std::string& s) { return s.find("hello") != std::string::npos; }, 2s)
            .find("200 OK") != std::string::npos);
  RawClient c(server.port());
  std::string got = c.read_to_eof(2s);
  CHECK(got.rfind("HTTP/1.1 503 ", 0) == 0);
  CHECK(got.find("\"code\":503") != std::string::npos);
}

TEST_CASE("beyond max_refusing refused connections at once, further ones are closed unanswered") {
  HttpServerOptions options;
  options.max_connections = 1;
  options.max_refusing = 2;
  TestServer server(options);
  RawClient a(server.port());
  a.send("GET /hello HTTP/1.1\r\n\r\n");
  REQUIRE(a.read_until([](const std::string& s) { return s.find("hello") != std::string::npos; }, 2s)
              .find("200 OK") != std::string::npos);
  auto answered_503 = [](const std::string& s) { return s.find("\"code\":503") != std::string::npos; };
  // Two refused clients that read their 503 and keep their sockets open: the server holds them.
  auto b = std::make_unique<RawClient>(server.port());
  RawClient c(server.port());
  CHECK(answered_503(b->read_until(answered_503, 2s)));
  CHECK(answered_503(c.read_until(answered_503, 2s)));
  CHECK_FALSE(b->eof());
  // A third while both are held: closed without an answer, and nothing more is held for it.
  RawClient d(server.port());
  CHECK(d.read_to_eof(2s).empty());
  CHECK(d.eof());
  CHECK(server.connection_count() == 3);
  // Once one refused client has gone, the next is answered 503 again.
  b.reset();
  const auto deadline = Clock::now() + 2s;
  while (server.connection_count() != 2 && Clock::now() < deadline) std::this_thread::sleep_for(10ms);
  RawClient e(server.port());
  CHECK(answered_503(e.read_to_eof(4s)));
}

TEST_CASE("a streaming client that stops reading is dropped after write_stall_timeout") {
  HttpServerOptions options;
  options.write_stall_timeout = 300ms;
  TestServer server(options);
  RawClient raw(server.port());
  raw.send("GET /stream?n=5000000 HTTP/1.1\r\n\r\n");
  raw.read_until([](const std::string& s) { return s.size() > 1000; }, 2s);
  // Now never read again: the socket buffers fill, the server's write stalls.
  auto start = Clock::now();
  while (server.connection_count() != 0 && Clock::now() - start < 10s)
    std::this_thread::sleep_for(50ms);
  CHECK(server.connection_count() == 0);
  CHECK(server.max_buffered.load() < options.stream_high_water_bytes + 1024);
}

// GET /big of 12 MiB (more than the socket buffers hold) read 32 KiB every 2 ms, a slow but
// steady reader: whether it all arrived intact, and how long it took.
struct SlowRead {
  bool whole = false;
  Clock::duration took{};
};
SlowRead read_big_slowly(RawClient& raw) {
  const size_t size = 12u << 20;
  raw.send(fmt::format("GET /big?bytes={} HTTP/1.1\r\n\r\n", size));
  auto start = Clock::now();
  auto complete = [&](const std::string& s) {
    size_t head_end = s.find("\r\n\r\n");
    return head_end != std::string::npos && s.size() >= head_end + 4 + size;
  };
  std::string got = raw.read_until(complete, 30s, 32 * 1024, 2ms);
  SlowRead out;
  out.took = Clock::now() - start;
  out.whole = complete(got) && got.rfind("HTTP/1.1 200 OK\r\n", 0) == 0 &&
              got.substr(got.find("\r\n\r\n") + 4) == pattern(size);
  return out;
}

TEST_CASE("write_stall_timeout spares a large answer that a slow reader takes in steadily") {
  HttpServerOptions options;
  options.write_stall_timeout = 250ms;
  TestServer server(options);
  RawClient raw(server.port(), 64 * 1024);
  SlowRead read = read_big_slowly(raw);
  CHECK(read.whole);
  CHECK_FALSE(raw.eof());
  // The reader was slow: the answer took longer than the stall timeout, more than once over.
  CHECK(read.took > 2 * options.write_stall_timeout);
}

TEST_CASE("idle_timeout starts once the answer is written, not while a slow reader takes it") {
  // The answer is complete on the server's side at once; writing it to a reader slower than
  // idle_timeout used to be cut by the idle timer, armed as the answer was queued.
  HttpServerOptions options;
  options.idle_timeout = 200ms;
  TestServer server(options);
  RawClient raw(server.port(), 64 * 1024);
  SlowRead read = read_big_slowly(raw);
  REQUIRE(read.whole);
  CHECK(read.took > 2 * options.idle_timeout);  // the reader was that slow
  // Once it is written the idle timeout applies: the connection closes after it.
  raw.read_to_eof(3s);
  CHECK(raw.eof());
}

TEST_CASE("HTTP/1.0 clients get their answer and the connection closes") {
  TestServer server;
  RawClient raw(server.port());
  raw.send("GET /stream?n=2 HTTP/1.0\r\n\r\n");
  std::string got = raw.read_to_eof(2s);
  CHECK(raw.eof());
  CHECK(got.rfind("HTTP/1.1 200 OK\r\n", 0) == 0);
  CHECK(got.find("Transfer-Encoding") == std::string::npos);
  CHECK(got.find("Connection: close") != std::string::npos);
  CHECK(count_of(got, "{\"n\":") == 2);
}

TEST_CASE("client stall timeout: no bytes for T cancels, steady progress does not") {
  TestServer server;
  HttpClientOptions options;
  options.stall_timeout = 400ms;
  BlockingHttpClient client(options);
  auto start = Clock::now();
  auto silent = client.request(server.endpoint(), get("/silent?ms=2000"));
  REQUIRE(!silent.ok());
  CHECK(
      silent.error().message ==
      fmt::format("timed out: no data from 127.0.0.1:{} for 400ms (stall timeout)", server.port()));
  CHECK(Clock::now() - start < 1500ms);
  // /drip takes ~500ms in all, but never pauses for 400ms.
  auto drip = client.request(server.endpoint(), get("/drip"));
  REQUIRE(drip.ok());
  CHECK(count_of(drip->body, "Progress") == 10);
}

TEST_CASE("client overall timeout ends a request that makes progress for too long") {
  TestServer server;
  HttpClientOptions options;
  options.timeout = 200ms;
  BlockingHttpClient client(options);
  auto drip = client.request(server.endpoint(), get("/drip"));
  REQUIRE(!drip.ok());
  CHECK(drip.error().message ==
        fmt::format("timed out after 200ms waiting for 127.0.0.1:{} (request timeout)",
                    server.port()));
}

TEST_CASE("a refused connection names the address") {
  uint16_t port = 0;
  {
    asio::io_context io;
    asio::ip::tcp::acceptor probe(io, asio::ip::tcp::endpoint(asio::ip::address_v4::loopback(), 0));
    port = probe.local_endpoint().port();
  }  // closed: nothing listens there now
  BlockingHttpClient client;
  auto answer = client.request(HttpEndpoint::tcp(asio::ip::address_v4::loopback(), port), get("/"));
  REQUIRE(!answer.ok());
  CHECK(answer.error().message == fmt::format("connection refused at 127.0.0.1:{}", port));
  auto missing = client.request(HttpEndpoint::unix_socket("no-such-dir/api.sock"), get("/"));
  REQUIRE(!missing.ok());
  CHECK(missing.error().message == "no unix socket at unix:no-such-dir/api.sock");
}

TEST_CASE("a connect that is never answered ends at the connect, stall or request timeout") {
  Blackhole hole;
  auto endpoint = HttpEndpoint::tcp(asio::ip::address_v4::loopback(), hole.port());
  // On its own thread, so that a connect left to the kernel (it gives up after about two minutes)
  // fails the test instead of holding it: closing the port makes it refuse the next SYN.
  auto attempt = [&](HttpClientOptions options) {
    auto pending = std::async(std::launch::async, [&endpoint, options] {
      BlockingHttpClient client(options);
      auto answer = client.request(endpoint, get("/hello"));
      return answer.ok() ? std::string("an answer") : answer.error().message;
    });
    if (pending.wait_for(5s) != std::future_status::ready) {
      FAIL_CHECK("the request outlived its timeout by seconds");
      hole.close();
    }
    return pending.get();
  };
  std::string address = fmt::format("127.0.0.1:{}", hole.port());
  HttpClientOptions connect;
  connect.connect_timeout = 300ms;
  CHECK(attempt(connect) == fmt::format("timed out after 300ms connecting to {}", address));
  HttpClientOptions stall;  // no connect timeout of its own: the stall timeout bounds it
  stall.connect_timeout = 0ms;
  stall.stall_timeout = 300ms;
  CHECK(attempt(stall) == fmt::format("timed out after 300ms connecting to {}", address));
  HttpClientOptions overall;
  overall.connect_timeout = 0ms;
  overall.timeout = 300ms;
  CHECK(attempt(overall) ==
        fmt::format("timed out after 300ms waiting for {} (request timeout)", address));
}

TEST_CASE("a line consumer can stop a long stream early") {
  TestServer server;
  BlockingHttpClient client;
  size_t lines = 0;
  HttpBodySink sink;
  sink.on_line = [&](std::string_view) { return ++lines < 5; };
  auto answer = client.request(server.endpoint(), get("/stream?n=100000"), sink);
  REQUIRE(!answer.ok());
  CHECK(answer.error().message.find("stopped by its consumer") != std::string::npos);
  CHECK(lines == 5);
  CHECK(client.request(server.endpoint(), get("/hello"))->body == "hello");
}

TEST_CASE("a body ended by the close hands over its last line even without a final newline") {
  const std::string answer =
      "HTTP/1.0 200 OK\r\nContent-Type: application/json\r\n\r\n{\"n\":0}\n{\"n\":1}";
  {
    CannedServer server(answer);
    BlockingHttpClient client;
    std::vector<std::string> lines;
    HttpBodySink sink;
    sink.on_line = [&](std::string_view line) {
      lines.emplace_back(line);
      return true;
    };
    auto got = client.request(server.endpoint(), get("/pins"), sink);
    REQUIRE(got.ok());
    CHECK(got->status == 200);
    CHECK(lines == std::vector<std::string>{"{\"n\":0}", "{\"n\":1}"});
    CHECK(client.idle_connections() == 0);
  }
  {
    // A consumer that stops at that last line stops the request, as it would mid-stream.
    CannedServer server(answer);
    BlockingHttpClient client;
    size_t lines = 0;
    HttpBodySink sink;
    sink.on_line = [&](std::string_view) { return ++lines < 2; };
    auto got = client.request(server.endpoint(), get("/pins"), sink);
    REQUIRE(!got.ok());
    CHECK(got.error().message ==
          fmt::format("reading the response from 127.0.0.1:{} was stopped by its consumer",
                      server.endpoint().port));
    CHECK(lines == 2);
  }
}

TEST_CASE("server and client work over a unix socket") {
  auto path =
      std::filesystem::temp_directory_path() / fmt::format("clusterpin-http-{}.sock", ::getpid());
  {
    TestServer server({}, path.string());
    BlockingHttpClient client;
    auto endpoint = parse_http_endpoint("unix:" + path.string());
    REQUIRE(endpoint.ok());
    auto answer = client.request(*endpoint, get("/hello"));
    REQUIRE(answer.ok());
    CHECK(answer->body == "hello");
    CHECK(server.remotes().at(0) == "unix");
  }
  std::filesystem::remove(path);
}

TEST_CASE("endpoints parse from host:port, multiaddr and unix forms; names are kept to resolve") {
  CHECK(parse_http_endpoint("127.0.0.1:9094")->to_string() == "127.0.0.1:9094");
  CHECK(parse_http_endpoint("[::1]:5001")->to_string() == "[::1]:5001");
  CHECK(parse_http_endpoint("localhost:5001")->to_string() == "127.0.0.1:5001");
  CHECK(parse_http_endpoint("http://127.0.0.1:5001/")->to_string() == "127.0.0.1:5001");
  CHECK(parse_http_endpoint("/ip4/127.0.0.1/tcp/5001")->to_string() == "127.0.0.1:5001");
  CHECK(parse_http_endpoint("/ip6/::1/tcp/5001")->to_string() == "[::1]:5001");
  CHECK(parse_http_endpoint("/dns4/localhost/tcp/9094")->to_string() == "127.0.0.1:9094");
  CHECK(parse_http_endpoint("unix:/run/x.sock")->path == "/run/x.sock");
  CHECK(parse_http_endpoint("/unix/run/x.sock")->path == "/run/x.sock");
  // Names are resolved by the client at each connection, not here.
  auto named = parse_http_endpoint("ipfs0:5001");
  REQUIRE(named.ok());
  CHECK(named->is_named());
  CHECK(named->host == "ipfs0");
  CHECK(named->port == 5001);
  CHECK(named->family == AddressFamily::any);
  CHECK(named->to_string() == "ipfs0:5001");
  CHECK(parse_http_endpoint("http://ipfs.example.org:5001/")->host == "ipfs.example.org");
  CHECK(parse_http_endpoint("/dns4/ipfs0/tcp/5001")->family == AddressFamily::v4);
  CHECK(parse_http_endpoint("/dns6/ipfs0/tcp/5001")->family == AddressFamily::v6);
  CHECK(parse_http_endpoint("/dns/ipfs0/tcp/5001")->family == AddressFamily::any);
  CHECK_FALSE(parse_http_endpoint("/dns4/localhost/tcp/9094")->is_named());
  for (const char* bad : {"bad_name!:80", "a..b:80", ".x:80", ":80", "/dns4/a..b/tcp/1",
                          "/dns4/ipfs0/tcp/70000", "[ipfs0]:80"}) {
    CAPTURE(bad);
    auto refused = parse_http_endpoint(bad);
    REQUIRE_FALSE(refused.ok());
    CHECK(refused.error().message.find(std::string("\"") + bad + "\"") != std::string::npos);
  }
  CHECK(!parse_http_endpoint("127.0.0.1").ok());
  CHECK(!parse_http_endpoint("127.0.0.1:70000").ok());
  CHECK(!parse_http_endpoint("/ip4/::1/tcp/1").ok());
  // A server listens on an address: a name is refused there, naming it.
  auto listen = parse_http_listen_endpoint("/dns4/api.example.org/tcp/9094");
  REQUIRE_FALSE(listen.ok());
  CHECK(listen.error().message.find("not on the name \"api.example.org\"") != std::string::npos);
  CHECK(parse_http_listen_endpoint("/ip4/127.0.0.1/tcp/9094").ok());
}

TEST_CASE("a request to a name whose name server is silent ends at the connect timeout") {
  // A name server that never answers: a bound UDP socket that nobody reads. The resolver alone
  // would wait 2 attempts of 2 s; the request must end at its 300 ms connect timeout.
  asio::io_context dns_io;
  asio::ip::udp::socket silent(dns_io, {asio::ip::make_address("127.0.0.1"), 0});
  ResolverConfig resolver;
  resolver.nameservers = {silent.local_endpoint()};
  resolver.timeout = 2000ms;
  resolver.attempts = 2;
  resolver.hosts_file.clear();
  HttpClientOptions options;
  options.connect_timeout = 300ms;
  options.resolver = resolver;
  BlockingHttpClient client(options);
  auto start = Clock::now();
  auto answer = client.request(*parse_http_endpoint("ipfs0:5001"), get("/hello"));
  REQUIRE_FALSE(answer.ok());
  CHECK(answer.error().message.find("connecting to ipfs0:5001") != std::string::npos);
  CHECK(Clock::now() - start < 3s);
  // A mistyped IP address is refused as one, not taken for a name.
  auto typo = parse_http_endpoint("10.0.0.256:5001");
  REQUIRE_FALSE(typo.ok());
  CHECK(typo.error().message.find("invalid IP address") != std::string::npos);
}

TEST_CASE("a client connects to a named endpoint, resolved when it connects") {
  // Names under localhost resolve to the loopback without asking anyone (RFC 6761): nothing
  // leaves this machine.
  TestServer server;
  BlockingHttpClient client;
  auto named = parse_http_endpoint(fmt::format("api.localhost:{}", server.port()));
  REQUIRE(named.ok());
  REQUIRE(named->is_named());
  auto answer = client.request(*named, get("/hello"));
  REQUIRE_MESSAGE(answer.ok(), (answer.ok() ? "" : answer.error().message));
  CHECK(answer->body == "hello");
  // The name, not its address, is the Host the server sees, and the pool's key: a second
  // request reuses the connection.
  CHECK(client.request(*named, get("/hello"))->body == "hello");
  CHECK(client.idle_connections() == 1);
}

TEST_CASE("Host header values that name the loopback are told from other names") {
  for (const char* host : {"localhost", "localhost:9094", "LocalHost.", "api.localhost:80",
                           "127.0.0.1", "127.0.0.1:9094", "127.9.9.9:1", "[::1]", "[::1]:9094"}) {
    CAPTURE(host);
    CHECK(is_loopback_host(host));
  }
  for (const char* host : {"", "example.com", "example.com:9094", "localhost.example.com",
                           "mylocalhost", "10.0.0.1:9094", "0.0.0.0", "[::]:9094", "[::1",
                           "[::1]x", "127.0.0.1:99999", "127.0.0.1:", "[127.0.0.1]", "::1",
                           "127.0.0.1.nip.io"}) {
    CAPTURE(host);
    CHECK(!is_loopback_host(host));
  }
}

TEST_CASE("throughput of small keep-alive requests with 1 and 16 concurrent clients (printed)") {
  TestServer server;
  for (int concurrency : {1, 16}) {
    asio::io_context io;
    HttpClientOptions options;
    options.max_idle_per_endpoint = 16;
    HttpClient client(io, options);
    const int per_client = 2000 / concurrency + 1;
    int completed = 0;
    int failures = 0;
    std::function<void(int)> issue = [&](int left) {
      if (left == 0) return;
      client.request(server.endpoint(), get("/hello"),
                     [&, left](clusterpin::Result<HttpClientResponse> r) {
                       if (r.ok() && r->body == "hello") {
                         ++completed;
                       } else {
                         ++failures;
                       }
                       issue(left - 1);
                     });
    };
    auto start = Clock::now();
    for (int i = 0; i < concurrency; ++i) issue(per_client);
    io.run();
    double seconds = std::chrono::duration<double>(Clock::now() - start).count();
    CHECK(failures == 0);
    CHECK(completed == per_client * concurrency);
    MESSAGE(fmt::format("{} concurrent client(s): {} requests in {:.3f}s = {:.0f} requests/s",
                        concurrency, completed, seconds, completed / seconds));
  }
}
