// HTTP load generator for the benchmarks: N keep-alive connections on one Asio thread, each
// sending its next request as soon as the previous answer is complete (a closed loop), recording
// the latency of every request. Two request shapes, so that clusterpin and etcd are driven by the
// same code at the same concurrency:
//   --mode pins  POST /pins/<cid>        a distinct valid CIDv1 (raw, sha2-256) per request
//   --mode etcd  POST /v3/kv/put         {"key":"<base64>","value":"<base64 of 100 bytes>"}
// Requests answered in the first --warmup seconds are not counted. The run stops after
// --seconds (or --max-requests), waits for the answers in flight (bounded), and prints one JSON
// object: ok, errors, seconds, rate (ok/s), latency p50/p90/p99/max in milliseconds.
//
//   http_load --port 9094 --connections 64 --seconds 10 [--mode pins|etcd] [--host 127.0.0.1]
//             [--warmup 1] [--max-requests N] [--seed S] [--check]
//   http_load --emit N [--ndjson] [--seed S]   prints N distinct CIDs (or {"cid":...} lines)
//
// --check runs a short self-test against an in-process server (meson suite 'load').
#include <asio.hpp>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <functional>
#include <thread>
#include <array>
#include <cctype>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include <fmt/core.h>

#include "core/cid.hpp"
#include "core/encoding.hpp"
#include "net/http_endpoint.hpp"
#include "net/http_server.hpp"

using namespace clusterpin;
using Clock = std::chrono::steady_clock;
using asio::ip::tcp;

namespace {

struct Args {
  std::string host = "127.0.0.1";
  std::vector<std::uint16_t> ports{9094};
  std::size_t connections = 1;
  double seconds = 5;
  double warmup = 1;
  std::uint64_t max_requests = 0;  // 0: no limit
  std::string mode = "pins";
  std::uint64_t seed = 0;
  bool check = false;
  std::uint64_t emit = 0;     // --emit N: print N CIDs (one a line) and exit
  bool emit_ndjson = false;   // --ndjson: as {"cid":"..."} pins (for `state import`)
};

[[noreturn]] void usage(const std::string& what) {
  fmt::print(stderr,
             "http_load: {}\naccepted: --host IP --port P[,P...] --connections N --seconds S "
             "--warmup S --max-requests N --mode pins|etcd --seed N --check\n",
             what);
  std::exit(2);
}

struct Totals {
  std::uint64_t ok = 0;
  std::uint64_t errors = 0;
  std::uint64_t sent = 0;
  std::string first_error;
  std::vector<std::uint32_t> latencies_us;
};

struct Run {
  Args args;
  Clock::time_point start, measure_from, stop_at;
  Totals totals;
  std::uint64_t next_id = 0;
  std::function<void()> on_close;
};

std::string cid_text(std::uint64_t seed, std::uint64_t id);

// The request for sequence number `id` of this run.
std::string make_request(const Run& run, std::uint64_t id, std::uint16_t port) {
  const Args& a = run.args;
  std::string host = fmt::format("{}:{}", a.host, port);
  if (a.mode == "etcd") {
    std::string key = fmt::format("bench/{}/{:012}", a.seed, id);
    std::string value(100, 'v');
    std::string body = fmt::format(R"({{"key":"{}","value":"{}"}})",
                                   base64_encode(as_bytes(key)), base64_encode(as_bytes(value)));
    return fmt::format(
        "POST /v3/kv/put HTTP/1.1\r\nHost: {}\r\nContent-Type: application/json\r\n"
        "Content-Length: {}\r\n\r\n{}",
        host, body.size(), body);
  }
  return fmt::format("POST /pins/{} HTTP/1.1\r\nHost: {}\r\nContent-Length: 0\r\n\r\n",
                     cid_text(a.seed, id), host);
}

// Parses one complete response at the start of `buf`. Returns its length (0: incomplete) and
// sets `status`; supports Content-Length and chunked bodies. -1: malformed.
long parse_response(std::string_view buf, int& status) {
  auto head_end = buf.find("\r\n\r\n");
  if (head_end == std::string_view::npos) return buf.size() > 65536 ? -1 : 0;
  std::string_view head = buf.substr(0, head_end);
  if (head.size() < 12 || !head.starts_with("HTTP/1.")) return -1;
  status = std::atoi(std::string(head.substr(9, 3)).c_str());
  std::size_t body_start = head_end + 4;
  // Header lookup, case-insensitive on the name.
  auto header = [&](std::string_view name) -> std::string_view {
    std::size_t pos = head.find("\r\n");
    while (pos != std::string_view::npos && pos < head.size()) {
      std::size_t line_start = pos + 2;
      std::size_t line_end = head.find("\r\n", line_start);
      if (line_end == std::string_view::npos) line_end = head.size();
      std::string_view line = head.substr(line_start, line_end - line_start);
      auto colon = line.find(':');
      if (colon == name.size()) {
        bool same = true;
        for (std::size_t i = 0; i < name.size() && same; ++i)
          same = std::tolower(static_cast<unsigned char>(line[i])) ==
                 std::tolower(static_cast<unsigned char>(name[i]));
        if (same) {
          std::string_view v = line.substr(colon + 1);
          while (!v.empty() && v.front() == ' ') v.remove_prefix(1);
          return v;
        }
      }
      pos = line_end;
    }
    return {};
  };
  if (auto te = header("transfer-encoding"); !te.empty() && te.find("chunked") != te.npos) {
    std::size_t pos = body_start;
    for (;;) {
      auto line_end = buf.find("\r\n", pos);
      if (line_end == std::string_view::npos) return 0;
      std::size_t size = std::strtoul(std::string(buf.substr(pos, line_end - pos)).c_str(), nullptr, 16);
      pos = line_end + 2;
      if (size == 0) {
        // Trailers end with an empty line.
        auto end = buf.find("\r\n\r\n", pos - 2);
        if (end == std::string_view::npos) return 0;
        return static_cast<long>(end + 4);
      }
      if (buf.size() < pos + size + 2) return 0;
      pos += size + 2;
    }
  }
  std::size_t length = 0;
  if (auto cl = header("content-length"); !cl.empty()) length = std::strtoul(std::string(cl).c_str(), nullptr, 10);
  if (buf.size() < body_start + length) return 0;
  return static_cast<long>(body_start + length);
}

class Connection : public std::enable_shared_from_this<Connection> {
 public:
  Connection(asio::io_context& io, Run& run, std::uint16_t port) : socket_(io), run_(run), port_(port) {}

  void start() {
    auto self = shared_from_this();
    tcp::endpoint ep(asio::ip::make_address(run_.args.host), port_);
    socket_.async_connect(ep, [self](const asio::error_code& ec) {
      if (ec) return self->fail("connect: " + ec.message());
      self->socket_.set_option(tcp::no_delay(true));
      self->send_next();
    });
  }

 private:
  void send_next() {
    auto now = Clock::now();
    if (now >= run_.stop_at ||
        (run_.args.max_requests != 0 && run_.next_id >= run_.args.max_requests)) {
      return close();
    }
    request_ = make_request(run_, run_.next_id++, port_);
    ++run_.totals.sent;
    sent_at_ = Clock::now();
    auto self = shared_from_this();
    asio::async_write(socket_, asio::buffer(request_), [self](const asio::error_code& ec, std::size_t) {
      if (ec) return self->fail("write: " + ec.message());
      self->read_more();
    });
  }

  void read_more() {
    int status = 0;
    long n = parse_response(buffer_, status);
    if (n < 0) return fail("malformed response: " + buffer_.substr(0, 200));
    if (n > 0) {
      auto now = Clock::now();
      if (sent_at_ >= run_.measure_from && sent_at_ < run_.stop_at) {
        if (status >= 200 && status < 300) {
          ++run_.totals.ok;
          run_.totals.latencies_us.push_back(static_cast<std::uint32_t>(
              std::chrono::duration_cast<std::chrono::microseconds>(now - sent_at_).count()));
        } else {
          ++run_.totals.errors;
          if (run_.totals.first_error.empty()) run_.totals.first_error = buffer_.substr(0, std::min<long>(n, 300));
        }
      }
      buffer_.erase(0, static_cast<std::size_t>(n));
      return send_next();
    }
    auto self = shared_from_this();
    socket_.async_read_some(asio::buffer(chunk_), [self](const asio::error_code& ec, std::size_t got) {
      if (ec) return self->fail("read: " + ec.message());
      self->buffer_.append(self->chunk_.data(), got);
      self->read_more();
    });
  }

  void fail(const std::string& what) {
    ++run_.totals.errors;
    if (run_.totals.first_error.empty()) run_.totals.first_error = what;
    close();
  }

  void close() {
    if (closed_) return;
    closed_ = true;
    asio::error_code ignored;
    socket_.close(ignored);
    if (run_.on_close) run_.on_close();
  }

  tcp::socket socket_;
  Run& run_;
  std::uint16_t port_;
  std::string request_;
  std::string buffer_;
  std::array<char, 16384> chunk_{};
  Clock::time_point sent_at_;
  bool closed_ = false;
};

double percentile(const std::vector<std::uint32_t>& sorted, double p) {
  if (sorted.empty()) return 0;
  std::size_t i = static_cast<std::size_t>(p * static_cast<double>(sorted.size() - 1) + 0.5);
  return sorted[std::min(i, sorted.size() - 1)] / 1000.0;
}

Totals run_load(Run& run) {
  asio::io_context io;
  run.start = Clock::now();
  run.measure_from = run.start + std::chrono::milliseconds(static_cast<long>(run.args.warmup * 1000));
  run.stop_at = run.measure_from + std::chrono::milliseconds(static_cast<long>(run.args.seconds * 1000));
  // A hard bound: stop waiting for late answers 30 s after the end.
  asio::steady_timer guard(io);
  guard.expires_at(run.stop_at + std::chrono::seconds(30));
  guard.async_wait([&](const asio::error_code& ec) {
    if (!ec) io.stop();
  });
  std::size_t live = run.args.connections;
  run.on_close = [&] {
    if (--live == 0) guard.cancel();
  };
  for (std::size_t i = 0; i < run.args.connections; ++i) {
    auto port = run.args.ports[i % run.args.ports.size()];
    std::make_shared<Connection>(io, run, port)->start();
  }
  io.run();
  return run.totals;
}

void print(const Run& run, Totals& t, double elapsed) {
  std::sort(t.latencies_us.begin(), t.latencies_us.end());
  std::string err;
  for (char c : t.first_error) {
    if (c == '"' || c == '\\') err += '\\';
    if (static_cast<unsigned char>(c) >= 0x20) err += c;
  }
  fmt::print(
      "{{\"mode\":\"{}\",\"connections\":{},\"seconds\":{:.3f},\"ok\":{},\"errors\":{},"
      "\"rate\":{:.1f},\"p50_ms\":{:.3f},\"p90_ms\":{:.3f},\"p99_ms\":{:.3f},\"max_ms\":{:.3f},"
      "\"first_error\":\"{}\"}}\n",
      run.args.mode, run.args.connections, elapsed, t.ok, t.errors,
      elapsed > 0 ? static_cast<double>(t.ok) / elapsed : 0.0, percentile(t.latencies_us, 0.50),
      percentile(t.latencies_us, 0.90), percentile(t.latencies_us, 0.99),
      t.latencies_us.empty() ? 0.0 : t.latencies_us.back() / 1000.0, err);
}

// The CID of request `id` (the same content as make_request hashes), so a list printed here and
// the pins load can overlap only when the seeds are equal.
std::string cid_text(std::uint64_t seed, std::uint64_t id) {
  std::string content = fmt::format("clusterpin-bench-{}-{}", seed, id);
  return Cid::from_content(Codec::raw, as_bytes(content)).to_string();
}

int emit_cids(const Args& a) {
  std::string out;
  out.reserve(1 << 20);
  for (std::uint64_t i = 0; i < a.emit; ++i) {
    if (a.emit_ndjson) {
      out += "{\"cid\":\"";
      out += cid_text(a.seed, i);
      out += "\"}\n";
    } else {
      out += cid_text(a.seed, i);
      out += '\n';
    }
    if (out.size() > (1 << 20) - 200) {
      if (std::fwrite(out.data(), 1, out.size(), stdout) != out.size()) return 1;
      out.clear();
    }
  }
  if (std::fwrite(out.data(), 1, out.size(), stdout) != out.size()) return 1;
  return std::fflush(stdout) == 0 ? 0 : 1;
}

// --check: a server in a second thread that answers every request 200, and 4 connections.
int self_check(Args args) {
  asio::io_context server_io;
  std::uint64_t served = 0;
  net::HttpServer server(server_io, {}, [&](net::HttpRequest, std::shared_ptr<net::HttpResponder> r) {
    ++served;
    r->send_json(200, "{}");
  });
  auto bound = server.listen(net::HttpEndpoint::tcp(asio::ip::make_address("127.0.0.1"), 0));
  if (!bound) {
    fmt::print(stderr, "http_load --check: {}\n", bound.error().message);
    return 1;
  }
  std::thread t([&] { server_io.run(); });
  args.ports = {bound->port};
  args.connections = 4;
  args.warmup = 0;
  args.seconds = 10;
  args.max_requests = 2000;
  Run run;
  run.args = args;
  Totals totals = run_load(run);
  asio::post(server_io, [&] { server.stop(); server_io.stop(); });
  t.join();
  print(run, totals, 1);
  bool good = totals.ok == 2000 && totals.errors == 0 && totals.latencies_us.size() == 2000;
  // Response parsing: Content-Length, chunked with trailers, incomplete.
  int status = 0;
  good = good && parse_response("HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n{}", status) == 40 && status == 200;
  std::string chunked = "HTTP/1.1 201 Created\r\nTransfer-Encoding: chunked\r\n\r\n2\r\n{}\r\n0\r\nX: y\r\n\r\n";
  good = good && parse_response(chunked, status) == static_cast<long>(chunked.size()) && status == 201;
  good = good && parse_response("HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\n{}", status) == 0;
  fmt::print(stderr, "http_load --check: {}\n", good ? "ok" : "FAILED");
  return good ? 0 : 1;
}

}  // namespace

int main(int argc, char** argv) {
  Args a;
  for (int i = 1; i < argc; ++i) {
    std::string flag = argv[i];
    auto value = [&]() -> std::string {
      if (i + 1 >= argc) usage(flag + " needs a value");
      return argv[++i];
    };
    if (flag == "--host") {
      a.host = value();
    } else if (flag == "--port") {
      a.ports.clear();
      std::string v = value();
      std::size_t pos = 0;
      while (pos <= v.size()) {
        auto comma = v.find(',', pos);
        if (comma == std::string::npos) comma = v.size();
        int port = std::atoi(v.substr(pos, comma - pos).c_str());
        if (port <= 0 || port > 65535) usage("--port: bad port in " + v);
        a.ports.push_back(static_cast<std::uint16_t>(port));
        pos = comma + 1;
      }
    } else if (flag == "--connections") {
      a.connections = std::strtoul(value().c_str(), nullptr, 10);
      if (a.connections == 0 || a.connections > 10000) usage("--connections: 1..10000");
    } else if (flag == "--seconds") {
      a.seconds = std::atof(value().c_str());
      if (a.seconds <= 0 || a.seconds > 3600) usage("--seconds: (0, 3600]");
    } else if (flag == "--warmup") {
      a.warmup = std::atof(value().c_str());
      if (a.warmup < 0 || a.warmup > 600) usage("--warmup: [0, 600]");
    } else if (flag == "--max-requests") {
      a.max_requests = std::strtoull(value().c_str(), nullptr, 10);
    } else if (flag == "--mode") {
      a.mode = value();
      if (a.mode != "pins" && a.mode != "etcd") usage("--mode: pins or etcd");
    } else if (flag == "--seed") {
      a.seed = std::strtoull(value().c_str(), nullptr, 10);
    } else if (flag == "--emit") {
      a.emit = std::strtoull(value().c_str(), nullptr, 10);
    } else if (flag == "--ndjson") {
      a.emit_ndjson = true;
    } else if (flag == "--check") {
      a.check = true;
    } else {
      usage("unknown argument " + flag);
    }
  }
  if (a.check) return self_check(a);
  if (a.emit != 0) return emit_cids(a);
  Run run;
  run.args = a;
  Totals totals = run_load(run);
  auto end = std::min(Clock::now(), run.stop_at);
  double elapsed = std::chrono::duration<double>(end - run.measure_from).count();
  print(run, totals, elapsed);
  return totals.ok > 0 ? 0 : 1;
}
