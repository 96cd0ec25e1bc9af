// The rereplicator's passes on a real state.db with hooks standing in for the Raft leader: a
// leader that is only behind its commits keeps its pass where it was, and a pass for a new view
// waits until the entries appended before that view was seen are applied.
#define DOCTEST_CONFIG_IMPLEMENT_WITH_MAIN
#include <doctest/doctest.h>

#include <chrono>
#include <set>
#include <string>
#include <vector>

#include <asio.hpp>

#include "core/cid.hpp"
#include "core/identity.hpp"
#include "core/pin.hpp"
#include "node/rereplicator.hpp"
#include "store/state_db.hpp"
#include "../store/temp_dir.hpp"

namespace clusterpin::node {
namespace {

using namespace std::chrono_literals;

Cid cid_n(int n) { return Cid::from_content(Codec::raw, as_bytes("content " + std::to_string(n))); }

struct Setup {
  store::testing::TempDir dir;
  store::StateDb state = std::move(store::StateDb::open(dir.path()).value());
  PeerId gone = Identity::generate().peer_id();
  PeerId b = Identity::generate().peer_id();
  PeerId c = Identity::generate().peer_id();
  std::set<Cid> proposed;
  std::vector<Pin> committed;  // the pins of every proposal, in order
  std::size_t commits = 0;
  std::uint64_t applied = 0;  // entries applied to state (the hooks' last and applied index)

  // `count` pins with replication factor 2 on [gone, b]: `gone` has left the cluster, so each
  // needs a new peer.
  explicit Setup(int count) {
    std::vector<Pin> pins;
    for (int i = 0; i < count; ++i) pins.push_back(pin_on(i, {gone, b}));
    apply(pins);
  }

  static Pin pin_on(int n, std::vector<PeerId> allocations) {
    Pin pin(cid_n(n));
    pin.options.replication_factor_min = 2;
    pin.options.replication_factor_max = 2;
    pin.allocations = std::move(allocations);
    return pin;
  }

  // `pins` as the next entry.
  void apply(const std::vector<Pin>& pins) {
    std::vector<store::StateOp> ops;
    for (const Pin& pin : pins)
      ops.push_back(store::StateOp::put_pin(std::string(as_chars(pin.cid.bytes())), encode_pin(pin)));
    REQUIRE(state.apply(++applied, 1, ops).value());
  }

  Rereplicator::Hooks hooks() {
    Rereplicator::Hooks h;
    h.leading = [] { return true; };
    h.caught_up = [] { return true; };
    h.last_index = [this] { return applied; };
    h.applied_index = [this] { return applied; };
    h.members = [this] { return std::set<std::string>{b.to_string(), c.to_string()}; };
    h.down = [] { return std::set<std::string>{}; };
    h.reallocate = [this](const Pin&, ReplicationFactors,
                          const std::vector<PeerId>&) -> Result<std::vector<PeerId>> {
      return std::vector<PeerId>{b, c};
    };
    // The proposals are recorded, not applied: the pinset keeps the pins as they were, so how
    // far the pass got shows in which CIDs were proposed.
    h.commit = [this](std::vector<PinsetOp> ops, std::function<void(Status)> done) {
      ++commits;
      for (const auto& op : ops) {
        proposed.insert(op.pin.cid);
        committed.push_back(op.pin);
      }
      done({});
    };
    h.log = [](const std::string&) {};
    h.now = [] { return UnixNanos{1800000000} * 1000000000; };
    return h;
  }
};

template <typename Done>
bool run_until(asio::io_context& io, Done done, std::chrono::milliseconds limit = 5s) {
  const auto deadline = std::chrono::steady_clock::now() + limit;
  while (!done() && std::chrono::steady_clock::now() < deadline) io.run_one_for(10ms);
  return done();
}

TEST_CASE("a leader that is behind its commits at some ticks still finishes its pass") {
  // Three batches of kBatch pins: the pass needs three ticks that may decide. Every other
  // tick the leader is behind (a log write under way, as under steady load); a pass that
  // started over at each of those would propose its first batch again and again.
  const int count = 3 * static_cast<int>(Rereplicator::kBatch);
  Setup s(count);
  auto hooks = s.hooks();
  int calls = 0;
  hooks.caught_up = [&calls] { return ++calls % 2 == 0; };
  asio::io_context io;
  Rereplicator r(io, s.state, hooks, 1ms);
  r.start();
  CHECK(run_until(io, [&] { return s.proposed.size() == static_cast<std::size_t>(count); }));
  CHECK(s.commits == 3);
  r.stop();
}

TEST_CASE("losing the leadership ends the pass; the next leader's pass starts from the first pin") {
  const int count = 2 * static_cast<int>(Rereplicator::kBatch);
  Setup s(count);
  auto hooks = s.hooks();
  bool leading = true;
  hooks.leading = [&leading] { return leading; };
  asio::io_context io;
  Rereplicator r(io, s.state, hooks, 1ms);
  r.start();
  REQUIRE(run_until(io, [&] { return s.commits == 1; }));
  leading = false;
  io.run_for(20ms);
  CHECK(s.commits == 1);
  s.proposed.clear();
  leading = true;
  REQUIRE(run_until(io, [&] { return s.commits == 3; }));
  // The first batch again, then the second: the pass started over.
  CHECK(s.proposed.size() == static_cast<std::size_t>(count));
  r.stop();
}

TEST_CASE("a pass for a new view waits for the entries appended before the view was seen") {
  // Entries 2 to 5 were appended before the removal was seen (a pin prepared before it may
  // still allocate the removed peer): the pass reads the pinset only once they are applied.
  Setup s(10);
  auto hooks = s.hooks();
  std::uint64_t applied = 1;
  hooks.last_index = [] { return std::uint64_t{5}; };
  hooks.applied_index = [&applied] { return applied; };
  asio::io_context io;
  Rereplicator r(io, s.state, hooks, 1ms);
  r.start();
  io.run_for(50ms);
  CHECK(s.commits == 0);
  applied = 5;
  CHECK(run_until(io, [&] { return s.commits == 1; }));
  CHECK(s.proposed.size() == 10);
  r.stop();
}

TEST_CASE("a pin that cannot get enough peers still loses its allocations to removed peers") {
  // Replication factor 2 on [gone, b] with b the only other member left (c is not offered):
  // re-allocation fails, and the pin keeps b alone rather than the removed peer too; a pin
  // whose every allocation was removed keeps them (no allocation would mean "every peer").
  Setup s(3);
  s.apply({Setup::pin_on(100, {s.gone})});  // the orphan
  auto hooks = s.hooks();
  hooks.members = [&s] { return std::set<std::string>{s.b.to_string()}; };
  hooks.reallocate = [](const Pin&, ReplicationFactors,
                        const std::vector<PeerId>&) -> Result<std::vector<PeerId>> {
    return make_error("not enough peers");
  };
  asio::io_context io;
  Rereplicator r(io, s.state, hooks, 1ms);
  r.start();
  REQUIRE(run_until(io, [&] { return s.committed.size() >= 3; }));
  io.run_for(20ms);
  CHECK(s.committed.size() == 3);  // not the orphan
  for (const Pin& pin : s.committed) CHECK(pin.allocations == std::vector<PeerId>{s.b});
  r.stop();
}

TEST_CASE("an expired pin is not re-allocated") {
  Setup s(2);
  const UnixNanos now = UnixNanos{1800000000} * 1000000000;
  Pin expired = Setup::pin_on(200, {s.gone, s.b});
  expired.options.expire_at = now - 1000000000;  // a second ago
  s.apply({expired});
  auto hooks = s.hooks();
  asio::io_context io;
  Rereplicator r(io, s.state, hooks, 1ms);
  r.start();
  REQUIRE(run_until(io, [&] { return s.commits == 1; }));
  io.run_for(20ms);
  CHECK(s.proposed == std::set<Cid>{cid_n(0), cid_n(1)});
  r.stop();
}

TEST_CASE("a pin stored without replication factors is re-allocated by the cluster's defaults") {
  // Imported from a state that had no factors (0/0), on [gone, b]: with the cluster's default
  // of 2 copies it has one live copy too few, and gets a new peer, as IPFS Cluster's re-pin
  // reads the defaults. It used to count as needing one copy (b's), and only lost `gone`.
  Setup s(0);
  Pin unset = Setup::pin_on(300, {s.gone, s.b});
  unset.options.replication_factor_min = 0;
  unset.options.replication_factor_max = 0;
  s.apply({unset});
  auto hooks = s.hooks();
  hooks.default_factors = {2, 3};
  std::vector<ReplicationFactors> asked;
  hooks.reallocate = [&](const Pin&, ReplicationFactors factors,
                         const std::vector<PeerId>&) -> Result<std::vector<PeerId>> {
    asked.push_back(factors);
    return std::vector<PeerId>{s.b, s.c};
  };
  asio::io_context io;
  Rereplicator r(io, s.state, hooks, 1ms);
  r.start();
  REQUIRE(run_until(io, [&] { return s.committed.size() == 1; }));
  REQUIRE(asked.size() == 1);
  CHECK(asked[0].min == 2);
  CHECK(asked[0].max == 3);
  CHECK(s.committed[0].allocations == std::vector<PeerId>{s.b, s.c});
  // Stored as it was: 0 still means the cluster's default, whatever that becomes.
  CHECK(s.committed[0].options.replication_factor_min == 0);
  CHECK(s.committed[0].options.replication_factor_max == 0);
  r.stop();
}

}  // namespace
}  // namespace clusterpin::node
