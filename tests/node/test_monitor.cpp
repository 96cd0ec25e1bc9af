// Unit tests of node::Monitor::candidates: which members the allocator may choose, and that the
// list it keeps between calls follows new metrics, membership changes and expiry.
#define DOCTEST_CONFIG_IMPLEMENT_WITH_MAIN
#include <doctest/doctest.h>

#include <asio.hpp>

#include "core/config.hpp"
#include "core/identity.hpp"
#include "core/metrics.hpp"
#include "node/monitor.hpp"

namespace clusterpin::node {
namespace {

std::string peer_id(int n) {
  Ed25519PublicKey key{};
  key[0] = static_cast<std::uint8_t>(n);
  return PeerId::from_ed25519_public_key(key).to_string();
}

struct Fixture {
  asio::io_context io;
  ServiceConfig config;
  std::vector<std::string> members{peer_id(1), peer_id(2), peer_id(3)};
  Monitor monitor;
  Fixture()
      : config([] {
          ServiceConfig c;
          c.allocator.allocate_by = {"tag:group"};
          return c;
        }()),
        monitor(io, config, peer_id(1), hooks()) {}
  Monitor::Hooks hooks() {
    Monitor::Hooks h;
    h.members = [this] { return members; };
    h.send = [](const std::string&, const std::string&) {};
    h.log = [](const std::string&) {};
    return h;
  }
  // `peer` publishes a ping and its group tag, valid for `ttl_ns` from now.
  void publish(const std::string& peer, std::int64_t ttl_ns, const std::string& group = "g") {
    UnixNanos expire = monitor.now() + ttl_ns;
    std::vector<Metric> ms;
    ms.push_back(Metric{"ping", peer, "", expire, true, 0, false, 0});
    ms.push_back(Metric{"tag:group", peer, group, expire, true, 0, true, 0});
    monitor.receive(peer, encode_metrics(ms));
  }
  std::set<std::string> candidates() {
    std::set<std::string> out;
    for (const auto& c : monitor.candidates()) out.insert(c.peer.to_string());
    return out;
  }
};

constexpr std::int64_t kMinute = 60'000'000'000;

TEST_CASE("monitor: candidates are the members with a current ping and every allocate_by metric") {
  Fixture f;
  CHECK(f.candidates().empty());
  f.publish(peer_id(2), kMinute);
  CHECK(f.candidates() == std::set<std::string>{peer_id(2)});
  // A new metric is seen at once, though the list was kept from the call before.
  f.publish(peer_id(3), kMinute);
  CHECK(f.candidates() == std::set<std::string>{peer_id(2), peer_id(3)});
  // A peer that is no longer a member is left out at once.
  f.members = {peer_id(1), peer_id(3)};
  CHECK(f.candidates() == std::set<std::string>{peer_id(3)});
}

TEST_CASE("monitor: a kept list of candidates drops a peer once its metrics expire") {
  Fixture f;
  f.publish(peer_id(2), kMinute);
  f.publish(peer_id(3), 200'000'000);  // 200 ms
  CHECK(f.candidates() == std::set<std::string>{peer_id(2), peer_id(3)});
  std::this_thread::sleep_for(std::chrono::milliseconds(300));
  CHECK(f.candidates() == std::set<std::string>{peer_id(2)});
}

TEST_CASE("monitor: the kept list carries each candidate's metrics") {
  Fixture f;
  f.publish(peer_id(2), kMinute, "east");
  const auto& first = f.monitor.candidates();
  REQUIRE(first.size() == 1);
  REQUIRE(first[0].metrics.size() == 1);
  CHECK(first[0].metrics[0].value == "east");
  f.publish(peer_id(2), 2 * kMinute, "west");  // a newer metric replaces it
  const auto& second = f.monitor.candidates();
  REQUIRE(second.size() == 1);
  CHECK(second[0].metrics[0].value == "west");
}

}  // namespace
}  // namespace clusterpin::node
