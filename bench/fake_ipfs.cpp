// A fast stand-in for an IPFS daemon, for benchmarks of the cluster itself: it answers the Kubo
// RPC calls the connector makes (id, version, pin/add, pin/rm, pin/ls, repo/stat, swarm/peers,
// swarm/connect, repo/gc) at once, with the shapes Kubo and js-ipfs use. Pins are kept in memory
// by CID text, so pin/ls lists what was pinned; with --all-pinned every single-CID pin/ls
// answers "pinned", nothing is stored (for pinsets too big to mirror cheaply) and the full
// listing is refused. --pin-delay-ms answers each pin/add that much later, as an IPFS that is
// slower than the cluster would (the peers then wait on IPFS instead of using the CPU).
// --pins-file starts with the CIDs of a file (one per line) pinned, as an IPFS that already
// holds a migrated pinset.
//
//   fake_ipfs --listen 127.0.0.1:5001 [--all-pinned] [--pin-delay-ms MS] [--pins-file FILE]
//             [--seconds N]
//
// It runs until SIGTERM/SIGINT, or for --seconds when given (a bound for scripts).
#include <asio.hpp>

#include <chrono>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <deque>
#include <fstream>
#include <memory>
#include <string>
#include <string_view>
#include <unordered_map>

#include <fmt/core.h>

#include "core/json_text.hpp"
#include "net/http_endpoint.hpp"
#include "net/http_server.hpp"

using namespace clusterpin;

namespace {

constexpr const char* kPeerId = "12D3KooWBenchFakeIpfsPeer1111111111111111111111111111";

// The pinned CIDs in the order they were pinned, so a listing can be written a part at a time
// (as the client reads it) by position while pins are added and removed meanwhile: appends keep
// positions, a removed CID leaves an empty slot. A deque keeps each string where it is, so the
// index can look CIDs up by views of them.
class PinStore {
 public:
  void add(std::string_view cid) {
    if (index_.contains(cid)) return;
    order_.emplace_back(cid);
    index_.emplace(order_.back(), order_.size() - 1);
  }
  bool remove(std::string_view cid) {
    auto it = index_.find(cid);
    if (it == index_.end()) return false;
    std::size_t at = it->second;
    index_.erase(it);
    order_[at].clear();
    return true;
  }
  bool contains(std::string_view cid) const { return index_.contains(cid); }
  std::size_t size() const { return index_.size(); }
  std::size_t slots() const { return order_.size(); }
  const std::string& at(std::size_t slot) const { return order_[slot]; }  // empty: removed

 private:
  std::deque<std::string> order_;
  std::unordered_map<std::string_view, std::size_t> index_;
};

struct Fake {
  asio::io_context* io = nullptr;
  bool all_pinned = false;
  long pin_delay_ms = 0;
  PinStore pins;
  std::uint64_t calls = 0;
};

std::string json_string(std::string_view s) {
  std::string out;
  append_json_string(out, s);
  return out;
}

void not_pinned(const std::shared_ptr<net::HttpResponder>& r, std::string_view cid) {
  r->send_json(500, fmt::format("{{\"Message\":\"path '{}' is not pinned\",\"Code\":0,\"Type\":\"error\"}}",
                                cid));
}

// Writes the listing's lines from `slot` on until the connection has enough unsent bytes, then
// carries on once it drained: like Kubo's streamed pin/ls, the listing is produced as fast as
// the client reads it, not built whole in memory first (10M pins are 800 MB of JSON, which took
// three quarters of both cores while a benchmark measured the cluster).
void stream_pins(const Fake& fake, const std::shared_ptr<net::HttpResponder>& r, std::size_t slot) {
  std::string chunk;
  while (slot < fake.pins.slots()) {
    const std::string& cid = fake.pins.at(slot++);
    if (cid.empty()) continue;
    chunk += "{\"Cid\":";
    append_json_string(chunk, cid);
    chunk += ",\"Type\":\"recursive\"}\n";
    if (chunk.size() < 64 * 1024) continue;
    bool more = r->write_chunk(chunk);
    chunk.clear();
    if (!more) {
      r->on_drained([&fake, r, slot] {
        if (r->connected()) stream_pins(fake, r, slot);
      });
      return;
    }
  }
  if (!chunk.empty()) r->write_chunk(chunk);
  r->finish();
}

void handle(Fake& fake, const net::HttpRequest& req, const std::shared_ptr<net::HttpResponder>& r) {
  ++fake.calls;
  if (req.method != "POST") {
    r->send(405, {{"Content-Type", "text/plain"}}, "405 - Method Not Allowed\n");
    return;
  }
  const std::string& p = req.path;
  auto arg = req.query_value("arg");
  if (p == "/api/v0/id") {
    r->send_json(200, fmt::format("{{\"ID\":\"{0}\",\"PublicKey\":\"\",\"Addresses\":"
                                  "[\"/ip4/127.0.0.1/tcp/4001/p2p/{0}\"],\"AgentVersion\":"
                                  "\"kubo/0.0.0-bench\",\"ProtocolVersion\":\"ipfs/0.1.0\"}}",
                                  kPeerId));
  } else if (p == "/api/v0/version") {
    r->send_json(200, R"({"Version":"0.0.0-bench","Commit":"","Repo":"15","System":"amd64/linux","Golang":""})");
  } else if (p == "/api/v0/pin/add") {
    if (!arg) return r->send_json(400, R"({"Message":"argument \"ipfs-path\" is required","Code":1,"Type":"error"})");
    std::string body = "{\"Pins\":[";
    for (std::string_view each : req.query_values("arg")) {  // Kubo pins every arg given
      if (!fake.all_pinned) fake.pins.add(each);
      if (body.back() != '[') body += ',';
      body += json_string(each);
    }
    body += "]}";
    if (fake.pin_delay_ms <= 0) return r->send_json(200, body);
    auto timer = std::make_shared<asio::steady_timer>(*fake.io, std::chrono::milliseconds(fake.pin_delay_ms));
    timer->async_wait([timer, r, body = std::move(body)](const asio::error_code&) { r->send_json(200, body); });
  } else if (p == "/api/v0/pin/rm") {
    if (!arg) return r->send_json(400, R"({"Message":"argument \"ipfs-path\" is required","Code":1,"Type":"error"})");
    if (!fake.all_pinned && !fake.pins.remove(*arg)) return not_pinned(r, *arg);
    r->send_json(200, "{\"Pins\":[" + json_string(*arg) + "]}");
  } else if (p == "/api/v0/pin/update") {
    r->send_json(404, R"({"Message":"Not Found","Code":3,"Type":"error"})");
  } else if (p == "/api/v0/pin/ls") {
    auto type = req.query_value("type").value_or("all");
    if (arg) {
      if (!fake.all_pinned && !fake.pins.contains(*arg)) return not_pinned(r, *arg);
      r->send_json(200, "{\"Cid\":" + json_string(*arg) + ",\"Type\":\"recursive\"}\n");
      return;
    }
    // It cannot list what it never stored: the peer's periodic sync fails (and changes nothing)
    // instead of finding every pin missing.
    if (fake.all_pinned)
      return r->send_json(500, R"({"Message":"fake_ipfs --all-pinned cannot list its pins","Code":0,"Type":"error"})");
    // The whole list, streamed as NDJSON (Kubo's stream=true form).
    r->start_stream(200, {{"Content-Type", "application/json"}, {"X-Chunked-Output", "1"}});
    if (type != "recursive" && type != "all") return r->finish();
    stream_pins(fake, r, 0);
  } else if (p == "/api/v0/repo/stat") {
    r->send_json(200, R"({"NumObjects":1000,"RepoSize":1000000,"StorageMax":1000000000000,"RepoPath":"/bench","Version":"fs-repo@15"})");
  } else if (p == "/api/v0/swarm/peers") {
    r->send_json(200, R"({"Peers":[]})");
  } else if (p == "/api/v0/swarm/connect") {
    r->send_json(200, "{\"Strings\":[\"connect " + std::string(arg.value_or("")) + " success\"]}");
  } else if (p == "/api/v0/repo/gc") {
    r->start_stream(200, {{"Content-Type", "application/json"}});
    r->finish();
  } else {
    r->send_json(404, R"({"Message":"Not Found","Code":3,"Type":"error"})");
  }
}

}  // namespace

int main(int argc, char** argv) {
  std::string listen = "127.0.0.1:5001";
  double seconds = 0;
  Fake fake;
  for (int i = 1; i < argc; ++i) {
    std::string flag = argv[i];
    if (flag == "--listen" && i + 1 < argc) {
      listen = argv[++i];
    } else if (flag == "--seconds" && i + 1 < argc) {
      seconds = std::atof(argv[++i]);
    } else if (flag == "--all-pinned") {
      fake.all_pinned = true;
    } else if (flag == "--pin-delay-ms" && i + 1 < argc) {
      fake.pin_delay_ms = std::atol(argv[++i]);
    } else if (flag == "--pins-file" && i + 1 < argc) {
      std::ifstream in(argv[++i]);
      if (!in) {
        fmt::print(stderr, "fake_ipfs: cannot read {}\n", argv[i]);
        return 2;
      }
      for (std::string line; std::getline(in, line);)
        if (!line.empty()) fake.pins.add(line);
    } else {
      fmt::print(stderr, "fake_ipfs: unknown argument {}\naccepted: --listen HOST:PORT "
                         "--all-pinned --pin-delay-ms MS --pins-file FILE --seconds N\n", flag);
      return 2;
    }
  }
  auto endpoint = net::parse_http_endpoint(listen);
  if (!endpoint) {
    fmt::print(stderr, "fake_ipfs: {}\n", endpoint.error().message);
    return 2;
  }
  asio::io_context io;
  fake.io = &io;
  net::HttpServerOptions options;
  options.max_connections = 4096;
  net::HttpServer server(io, options, [&fake](net::HttpRequest req, std::shared_ptr<net::HttpResponder> r) {
    handle(fake, req, r);
  });
  auto bound = server.listen(*endpoint);
  if (!bound) {
    fmt::print(stderr, "fake_ipfs: {}\n", bound.error().message);
    return 1;
  }
  fmt::print("fake_ipfs listening on {}\n", bound->to_string());
  std::fflush(stdout);
  asio::signal_set signals(io, SIGINT, SIGTERM);
  signals.async_wait([&](const asio::error_code&, int) {
    server.stop();
    io.stop();
  });
  asio::steady_timer limit(io);
  if (seconds > 0) {
    limit.expires_after(std::chrono::milliseconds(static_cast<long>(seconds * 1000)));
    limit.async_wait([&](const asio::error_code& ec) {
      if (ec) return;
      server.stop();
      io.stop();
    });
  }
  io.run();
  fmt::print("fake_ipfs: {} calls, {} pins\n", fake.calls, fake.pins.size());
  return 0;
}
