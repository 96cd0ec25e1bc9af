// Metrics, alerts and the balanced allocator: the JSON and wire shapes of a metric, the latest
// metric per peer, one alert per outage, and where pins go (tag groups first, then most free
// space, replication factors, user and current allocations, the "not enough peers" error).
#define DOCTEST_CONFIG_IMPLEMENT_WITH_MAIN
#include <doctest/doctest.h>

#include <map>
#include <set>
#include <string>

#include "core/allocator.hpp"
#include "core/metrics.hpp"
#include "core/time_format.hpp"

using namespace clusterpin;

namespace {

constexpr UnixNanos kSecond = 1000000000;
constexpr UnixNanos kT0 = 1800000000 * kSecond;

Cid cid_n(int n) { return Cid::from_content(Codec::raw, as_bytes("content " + std::to_string(n))); }

PeerId peer_n(int n) {
  Ed25519PublicKey key{};
  key[0] = static_cast<std::uint8_t>(n);
  key[1] = static_cast<std::uint8_t>(n >> 8);
  return PeerId::from_ed25519_public_key(key);
}

Metric metric(std::string name, std::string peer, std::string value, UnixNanos expire,
              std::int64_t weight = 0, bool partitionable = false) {
  Metric m;
  m.name = std::move(name);
  m.peer = std::move(peer);
  m.value = std::move(value);
  m.expire = expire;
  m.valid = true;
  m.weight = weight;
  m.partitionable = partitionable;
  m.received_at = kT0;
  return m;
}

// A candidate with a tag group and free space.
CandidateMetrics candidate(int n, std::string group, std::int64_t free) {
  std::string id = peer_n(n).to_string();
  return {peer_n(n),
          {metric("tag:group", id, group, kT0 + 30 * kSecond, 0, true),
           metric("freespace", id, std::to_string(free), kT0 + 30 * kSecond, free)}};
}

}  // namespace

TEST_CASE("a metric keeps IPFS Cluster's JSON keys and survives the wire form") {
  Metric m = metric("freespace", peer_n(1).to_string(), "1234", kT0 + 5, 1234);
  std::string json = metric_to_json(m);
  for (const char* key : {"\"name\":\"freespace\"", "\"value\":\"1234\"", "\"expire\":", "\"valid\":true",
                          "\"weight\":1234", "\"partitionable\":false", "\"received_at\":"}) {
    CHECK_MESSAGE(json.find(key) != std::string::npos, key);
  }
  auto back = metric_from_json(json);
  REQUIRE(back);
  CHECK(*back == m);
  Alert a{m, kT0 + 9};
  // An RFC 3339 time as IPFS Cluster's Alert.TriggeredAt, not a number.
  CHECK(alert_to_json(a).find("\"triggered_at\":\"" + format_rfc3339(kT0 + 9) + "\"") != std::string::npos);

  auto decoded = decode_metrics(encode_metrics({m, metric("tag:group", "x", "a", kT0, 0, true)}));
  REQUIRE(decoded);
  REQUIRE(decoded->size() == 2);
  CHECK((*decoded)[0].name == "freespace");
  CHECK((*decoded)[0].weight == 1234);
  CHECK((*decoded)[1].partitionable);
  CHECK_FALSE(decode_metrics("\x01\x05garbage"));
  CHECK_FALSE(metric_from_json("[1]"));
}

TEST_CASE("the store keeps the latest metric per peer and ignores one that arrives late") {
  MetricStore store;
  std::string a = peer_n(1).to_string(), b = peer_n(2).to_string();
  store.add(metric("ping", a, "", kT0 + 10 * kSecond));
  store.add(metric("ping", b, "", kT0 + 10 * kSecond));
  store.add(metric("ping", a, "new", kT0 + 20 * kSecond));
  store.add(metric("ping", a, "old", kT0 + 15 * kSecond));  // expires before the one held
  CHECK(store.latest("ping", a)->value == "new");
  // A placeholder (not valid) never hides a real metric, whatever its expiry.
  Metric placeholder = metric("ping", b, "placeholder", kT0 + 60 * kSecond);
  placeholder.valid = false;
  store.add(placeholder);
  store.add(metric("ping", b, "real", kT0 + 10 * kSecond));
  CHECK(store.latest("ping", b)->value == "real");
  CHECK(store.latest("ping").size() == 2);
  CHECK(store.names() == std::vector<std::string>{"ping"});
  CHECK(store.current("ping", b, kT0 + 5 * kSecond));
  CHECK_FALSE(store.current("ping", b, kT0 + 10 * kSecond));  // expired at that instant
  Metric invalid = metric("freespace", a, "", kT0 + 10 * kSecond);
  invalid.valid = false;
  store.add(invalid);
  CHECK_FALSE(store.current("freespace", a, kT0));
  store.retain({a});
  CHECK(store.latest("ping").size() == 1);
  // A withdrawal (already expired when it arrives: a peer stopping cleanly) replaces the valid
  // ping it holds, so the peer stops being live at once.
  Metric farewell = metric("ping", a, "bye", kT0 + 21 * kSecond);
  farewell.received_at = kT0 + 21 * kSecond;
  store.add(farewell);
  CHECK(store.latest("ping", a)->value == "bye");
  CHECK_FALSE(store.current("ping", a, kT0 + 21 * kSecond));
}

TEST_CASE("an expired metric raises one alert per outage, again after the peer came back") {
  MetricStore store;
  std::string a = peer_n(1).to_string(), b = peer_n(2).to_string();
  std::set<std::string> members{a, b};
  store.add(metric("ping", a, "", kT0 + 10 * kSecond));
  store.add(metric("ping", b, "", kT0 + 30 * kSecond));
  CHECK(store.check(kT0 + 5 * kSecond, members).empty());
  auto alerts = store.check(kT0 + 11 * kSecond, members);
  REQUIRE(alerts.size() == 1);
  CHECK(alerts[0].metric.peer == a);
  CHECK(alerts[0].triggered_at == kT0 + 11 * kSecond);
  CHECK(store.check(kT0 + 12 * kSecond, members).empty());  // same outage: no new alert
  // a is back, then gone again: a second alert.
  Metric back = metric("ping", a, "", kT0 + 25 * kSecond);
  back.received_at = kT0 + 13 * kSecond;
  store.add(back);
  CHECK(store.check(kT0 + 14 * kSecond, members).empty());
  CHECK(store.check(kT0 + 26 * kSecond, members).size() == 1);
  // Peers that are not members raise nothing.
  CHECK(store.check(kT0 + 40 * kSecond, {a}).empty());

  AlertLog log(3);
  for (int i = 0; i < 5; ++i) log.add({Alert{metric("ping", a, "", kT0), kT0 + i}});
  auto listed = log.list();
  REQUIRE(listed.size() == 3);
  CHECK(listed[0].triggered_at == kT0 + 4);  // newest first
  CHECK(listed[2].triggered_at == kT0 + 2);
}

TEST_CASE("balanced order: most free space first inside a group, groups taken in turn") {
  std::vector<CandidateMetrics> peers{candidate(1, "a", 100), candidate(2, "a", 300), candidate(3, "b", 50),
                                      candidate(4, "b", 60), candidate(5, "a", 200)};
  auto order = balanced_order(cid_n(1), peers);
  REQUIRE(order.size() == 5);
  // Group a has more free space in total (600 vs 110): it comes first, then b, in turns.
  CHECK(order[0] == peer_n(2));
  CHECK(order[1] == peer_n(4));
  CHECK(order[2] == peer_n(5));
  CHECK(order[3] == peer_n(3));
  CHECK(order[4] == peer_n(1));
}

TEST_CASE("balanced order without tags follows free space; equal peers spread CIDs by hash") {
  std::vector<CandidateMetrics> ranked;
  for (int n = 1; n <= 3; ++n) {
    std::string id = peer_n(n).to_string();
    ranked.push_back({peer_n(n), {metric("freespace", id, "", kT0, n * 10)}});
  }
  auto order = balanced_order(cid_n(1), ranked);
  CHECK(order == std::vector<PeerId>{peer_n(3), peer_n(2), peer_n(1)});

  std::vector<CandidateMetrics> equal;
  for (int n = 1; n <= 4; ++n) {
    std::string id = peer_n(n).to_string();
    equal.push_back({peer_n(n), {metric("freespace", id, "", kT0, 500)}});
  }
  std::set<std::string> firsts;
  for (int c = 0; c < 64; ++c) firsts.insert(balanced_order(cid_n(c), equal)[0].to_string());
  CHECK(firsts.size() == 4);  // every peer is first for some CID
  CHECK(balanced_order(cid_n(7), equal) == balanced_order(cid_n(7), equal));  // deterministic
}

TEST_CASE("allocate: two copies over two tag groups, never both in one group") {
  std::vector<CandidateMetrics> peers{candidate(1, "dc1", 900), candidate(2, "dc1", 800),
                                      candidate(3, "dc2", 100), candidate(4, "dc2", 90)};
  for (int c = 0; c < 50; ++c) {
    AllocationRequest request;
    request.rmin = 2;
    request.rmax = 2;
    request.candidates = balanced_order(cid_n(c), peers);
    auto chosen = allocate(cid_n(c), request);
    REQUIRE(chosen);
    REQUIRE(chosen->size() == 2);
    bool dc1 = false, dc2 = false;
    for (const auto& p : *chosen) {
      dc1 |= p == peer_n(1) || p == peer_n(2);
      dc2 |= p == peer_n(3) || p == peer_n(4);
    }
    CHECK(dc1);
    CHECK(dc2);
  }
}

TEST_CASE("allocate honours replication factors, user allocations and current allocations") {
  std::vector<PeerId> ranked{peer_n(1), peer_n(2), peer_n(3), peer_n(4)};
  AllocationRequest everywhere{-1, -1, {}, {}, ranked};
  CHECK(allocate(cid_n(1), everywhere)->empty());

  AllocationRequest some{2, 3, {}, {}, ranked};
  CHECK(*allocate(cid_n(1), some) == std::vector<PeerId>{peer_n(1), peer_n(2), peer_n(3)});

  AllocationRequest user{1, 2, {}, {peer_n(4)}, ranked};
  CHECK((*allocate(cid_n(1), user))[0] == peer_n(4));

  // Current allocations that are still candidates stay; enough of them: nothing changes.
  AllocationRequest current{2, 3, {peer_n(3), peer_n(4)}, {}, ranked};
  CHECK(*allocate(cid_n(1), current) == std::vector<PeerId>{peer_n(3), peer_n(4)});
  // One current peer is gone (not a candidate): a new one joins the one that is left.
  AllocationRequest lost{2, 2, {peer_n(9), peer_n(4)}, {}, ranked};
  CHECK(*allocate(cid_n(1), lost) == std::vector<PeerId>{peer_n(4), peer_n(1)});
  // More current than rmax: trimmed.
  AllocationRequest trim{1, 1, {peer_n(2), peer_n(3)}, {}, ranked};
  CHECK(*allocate(cid_n(1), trim) == std::vector<PeerId>{peer_n(2)});
  // Re-allocation: the live allocations stay even when one is not a candidate this minute (a
  // restart, a failed metric): peer 9 holds the pin, and only the missing copies move.
  AllocationRequest reallocation{3, 3, {peer_n(9), peer_n(4)}, {}, ranked};
  reallocation.keep_current = true;
  CHECK(*allocate(cid_n(1), reallocation) == std::vector<PeerId>{peer_n(9), peer_n(4), peer_n(1)});
  reallocation.keep_current = false;  // a new pin, or a pin again: only candidates
  CHECK(*allocate(cid_n(1), reallocation) == std::vector<PeerId>{peer_n(4), peer_n(1), peer_n(2)});
}

TEST_CASE("too few candidates: the error says what was needed and what there was") {
  AllocationRequest request{3, 4, {}, {}, {peer_n(1), peer_n(2)}};
  auto r = allocate(cid_n(1), request);
  REQUIRE_FALSE(r);
  const std::string& msg = r.error().message;
  CHECK(msg.find("not enough peers to allocate " + cid_n(1).to_string()) == 0);
  CHECK(msg.find("need at least 3, at most 4, have 2 candidates") != std::string::npos);
  CHECK(msg.find(peer_n(1).to_string()) != std::string::npos);
  CHECK_FALSE(check_replication(2, 1));
  CHECK_FALSE(check_replication(-1, 3));
  CHECK(check_replication(1, 1));
}
