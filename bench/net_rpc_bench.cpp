// Loopback RPC benchmark: two peers, each on its own io_context thread, exchange N small echo
// calls over one secure link with a fixed window of calls in flight. Reports calls/s, messages/s,
// payload and wire MB/s, and resident memory before, after warm-up and at the end; with --check it
// fails when memory grew after warm-up by more than --max-growth-mb (a leak or an unbounded queue).
#include <asio.hpp>

#include <atomic>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <string>
#include <thread>

#include <fmt/core.h>

#include "core/identity.hpp"
#include "net/rpc.hpp"
#include "net/rpc_wire.hpp"

using namespace clusterpin;
using namespace clusterpin::net;
using Clock = std::chrono::steady_clock;

namespace {

struct Args {
  std::uint64_t calls = 1'000'000;
  std::size_t window = 256;
  std::size_t size = 64;
  bool check = false;
  double max_growth_mb = 16;
};

Args parse(int argc, char** argv) {
  Args a;
  for (int i = 1; i < argc; ++i) {
    const std::string flag = argv[i];
    auto value = [&]() -> const char* {
      if (i + 1 >= argc) {
        fmt::print(stderr, "net_rpc_bench: {} needs a value\n", flag);
        std::exit(2);
      }
      return argv[++i];
    };
    if (flag == "--calls")
      a.calls = std::strtoull(value(), nullptr, 10);
    else if (flag == "--window")
      a.window = std::strtoull(value(), nullptr, 10);
    else if (flag == "--size")
      a.size = std::strtoull(value(), nullptr, 10);
    else if (flag == "--max-growth-mb")
      a.max_growth_mb = std::strtod(value(), nullptr);
    else if (flag == "--check")
      a.check = true;
    else {
      fmt::print(stderr,
                 "net_rpc_bench: unknown flag \"{}\" (accepted: --calls N --window N --size BYTES "
                 "--check --max-growth-mb MB)\n",
                 flag);
      std::exit(2);
    }
  }
  if (a.calls == 0 || a.window == 0) {
    fmt::print(stderr, "net_rpc_bench: --calls and --window must be at least 1\n");
    std::exit(2);
  }
  return a;
}

double rss_mb() {
  std::ifstream status("/proc/self/status");
  std::string line;
  while (std::getline(status, line)) {
    if (line.rfind("VmRSS:", 0) == 0) return std::strtod(line.c_str() + 6, nullptr) / 1024.0;
  }
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  const Args args = parse(argc, argv);
  const double rss_start = rss_mb();

  RpcOptions options;
  options.secret.fill(0x5a);
  options.network_timeout = std::chrono::seconds(30);
  options.log = [](const std::string& line) { fmt::print(stderr, "{}\n", line); };

  asio::io_context server_io, client_io;
  const Identity server_identity = Identity::generate();
  const Identity client_identity = Identity::generate();
  RpcEndpoint server(server_io, server_identity, options);
  if (Status st = server.listen(*Multiaddr::parse("/ip4/127.0.0.1/tcp/0")); !st) {
    fmt::print(stderr, "{}\n", st.error().message);
    return 1;
  }
  server.on_request([](const PeerId&, std::string_view, ByteView payload,
                       RpcEndpoint::Responder r) { r.reply(payload); });
  const Multiaddr server_address = server.listen_address()->with_peer(server_identity.peer_id());
  auto server_work = asio::make_work_guard(server_io);
  std::thread server_thread([&] { server_io.run(); });

  RpcEndpoint client(client_io, client_identity, options);
  if (Status st = client.add_peer(server_address); !st) {
    fmt::print(stderr, "{}\n", st.error().message);
    return 1;
  }
  const PeerId target = server_identity.peer_id();
  const Bytes payload(args.size, 0xab);
  const std::uint64_t warm_up = args.calls / 10;

  std::uint64_t issued = 0, completed = 0, failed = 0;
  std::size_t in_flight = 0;
  double rss_warm = 0;
  Clock::time_point t_warm{}, t_end{};
  std::function<void()> issue = [&] {
    while (in_flight < args.window && issued < args.calls) {
      ++issued;
      ++in_flight;
      client.call(target, "echo", payload, [&](Result<Bytes> r) {
        --in_flight;
        ++completed;
        if (!r) {
          if (failed++ == 0) fmt::print(stderr, "first failure: {}\n", r.error().message);
        }
        if (completed == warm_up) {
          rss_warm = rss_mb();
          t_warm = Clock::now();
        }
        if (completed == args.calls) {
          t_end = Clock::now();
          client_io.stop();
          return;
        }
        issue();
      });
    }
  };
  const auto t_start = Clock::now();
  asio::post(client_io, issue);
  client_io.run();
  const double rss_end = rss_mb();

  asio::post(server_io, [&] {
    server.close();
    server_work.reset();
  });
  server_thread.join();

  const std::uint64_t measured = args.calls - warm_up;
  const double seconds =
      std::chrono::duration<double>(t_end - (warm_up ? t_warm : t_start)).count();
  const double calls_per_s = static_cast<double>(measured) / seconds;
  const double payload_mb = 2.0 * static_cast<double>(measured * args.size) / 1e6;
  // Per message on the wire: frame length + tag + RPC header + method ("echo" or empty) + payload.
  const double wire_per_call =
      2.0 * (kFrameHeaderSize + noise::kTagSize + kRpcHeaderSize + args.size) + 4;
  const double wire_mb = static_cast<double>(measured) * wire_per_call / 1e6;
  fmt::print("calls: {} ({} measured after {} warm-up), window {}, payload {} bytes, failed {}\n",
             args.calls, measured, warm_up, args.window, args.size, failed);
  fmt::print("time: {:.2f} s; {:.0f} calls/s = {:.0f} messages/s\n", seconds, calls_per_s,
             2 * calls_per_s);
  fmt::print("throughput: {:.1f} MB/s payload, {:.1f} MB/s on the wire\n", payload_mb / seconds,
             wire_mb / seconds);
  fmt::print(
      "rss: {:.1f} MB at start, {:.1f} MB after warm-up, {:.1f} MB at end (growth {:.1f} MB)\n",
      rss_start, rss_warm, rss_end, rss_end - rss_warm);
  if (failed != 0) return 1;
  if (args.check && rss_end - rss_warm > args.max_growth_mb) {
    fmt::print(stderr, "memory grew by {:.1f} MB after warm-up (limit {:.1f} MB)\n",
               rss_end - rss_warm, args.max_growth_mb);
    return 1;
  }
  return 0;
}
