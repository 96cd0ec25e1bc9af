// Peer RPC over loopback: calls get answers, failures and timeouts; one-way messages arrive; a
// dial reaching the wrong peer or a peer with another secret is refused with a plain log line;
// simultaneous dials settle on one link; a restarted peer is reached again; backlogs are bounded.
#define DOCTEST_CONFIG_IMPLEMENT_WITH_MAIN
#include <doctest/doctest.h>

#include <chrono>
#include <functional>
#include <string>
#include <vector>

#include <fmt/core.h>

#include "net/rpc.hpp"
#include "net/secure_link.hpp"

using namespace clusterpin;
using namespace clusterpin::net;
using namespace std::chrono_literals;

namespace {

bool run_until(asio::io_context& io, const std::function<bool()>& done,
               std::chrono::milliseconds timeout = 5s) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  while (!done() && std::chrono::steady_clock::now() < deadline) io.run_one_for(10ms);
  return done();
}

bool contains(const std::vector<std::string>& lines, std::string_view text) {
  for (const auto& l : lines) {
    if (l.find(text) != std::string::npos) return true;
  }
  return false;
}

Multiaddr loopback_any() {
  return *Multiaddr::parse("/ip4/127.0.0.1/tcp/0");
}

RpcOptions options_with(std::uint8_t secret_fill, std::vector<std::string>* log) {
  RpcOptions o;
  o.secret.fill(secret_fill);
  o.network_timeout = 2s;
  o.handshake_timeout = 1s;
  o.backoff_initial = 20ms;
  o.backoff_max = 200ms;
  o.duplicate_grace = 100ms;
  o.log = [log](const std::string& line) { log->push_back(line); };
  return o;
}

struct Node {
  Identity identity = Identity::generate();
  std::vector<std::string> log;
  std::unique_ptr<RpcEndpoint> rpc;

  Node(asio::io_context& io, std::uint8_t secret_fill,
       std::optional<Multiaddr> listen = loopback_any()) {
    rpc = std::make_unique<RpcEndpoint>(io, identity, options_with(secret_fill, &log));
    if (listen) REQUIRE(rpc->listen(*listen).ok());
    rpc->on_request(
        [](const PeerId&, std::string_view method, ByteView payload, RpcEndpoint::Responder r) {
          if (method == "echo") r.reply(payload);
          if (method == "fail") r.fail("refused on purpose");
          if (method == "big") r.reply(Bytes(FrameLimits{}.max_plaintext));  // plus the header
          // "ignore": never answered
        });
  }
  Multiaddr address() const { return rpc->listen_address()->with_peer(identity.peer_id()); }
};

struct CallResult {
  std::optional<Result<Bytes>> value;
  RpcEndpoint::Reply handler() {
    return [this](Result<Bytes> r) { value = std::move(r); };
  }
};

}  // namespace

// A port nobody listens on: bind one, learn it, close it.
static std::uint16_t unused_port(asio::io_context& io) {
  asio::ip::tcp::acceptor probe(io, asio::ip::tcp::endpoint(asio::ip::make_address("127.0.0.1"), 0));
  return probe.local_endpoint().port();
}

// Whether this host has an IPv6 loopback (some CI containers do not).
static bool has_ipv6_loopback(asio::io_context& io) {
  asio::error_code ec;
  asio::ip::tcp::acceptor probe(io);
  probe.open(asio::ip::tcp::v6(), ec);
  if (!ec) probe.bind(asio::ip::tcp::endpoint(asio::ip::make_address("::1"), 0), ec);
  return !ec;
}

TEST_CASE("a call gets the remote handler's answer and one-way messages arrive") {
  asio::io_context io;
  Node a(io, 1), b(io, 1);
  REQUIRE(b.rpc->add_peer(a.address()).ok());
  CallResult r;
  b.rpc->call(a.identity.peer_id(), "echo", as_bytes("hello"), r.handler());
  std::vector<std::string> notes;
  a.rpc->on_message([&](const PeerId& from, std::string_view method, ByteView payload) {
    CHECK(from == b.identity.peer_id());
    notes.push_back(std::string(method) + ":" + std::string(payload.begin(), payload.end()));
  });
  REQUIRE(b.rpc->send(a.identity.peer_id(), "note", as_bytes("x")).ok());
  REQUIRE(run_until(io, [&] { return r.value && notes.size() == 1; }));
  REQUIRE(r.value->ok());
  CHECK(**r.value == to_bytes("hello"));
  CHECK(notes[0] == "note:x");
  // The accepting side answers back over the same link, without a dial address.
  CallResult back;
  a.rpc->call(b.identity.peer_id(), "echo", as_bytes("back"), back.handler());
  REQUIRE(run_until(io, [&] { return back.value.has_value(); }));
  CHECK(back.value->ok());
  CHECK(b.rpc->pending_calls() == 0);
}

TEST_CASE("a remote failure and a missed deadline reach the caller as errors") {
  asio::io_context io;
  Node a(io, 1), b(io, 1);
  REQUIRE(b.rpc->add_peer(a.address()).ok());
  CallResult failed, late;
  b.rpc->call(a.identity.peer_id(), "fail", {}, failed.handler());
  const auto start = std::chrono::steady_clock::now();
  b.rpc->call(a.identity.peer_id(), "ignore", {}, late.handler(), 300ms);
  REQUIRE(run_until(io, [&] { return failed.value && late.value; }));
  REQUIRE_FALSE(failed.value->ok());
  CHECK(failed.value->error().message.find("refused on purpose") != std::string::npos);
  REQUIRE_FALSE(late.value->ok());
  CHECK(late.value->error().message.find("timed out after 300 ms") != std::string::npos);
  const auto took = std::chrono::steady_clock::now() - start;
  CHECK(took >= 300ms);
  CHECK(took < 1500ms);
}

TEST_CASE("a peer address whose /p2p id names someone else is refused") {
  asio::io_context io;
  Node a(io, 1), b(io, 1);
  const PeerId impostor_id = Identity::generate().peer_id();
  REQUIRE(b.rpc->add_peer(a.rpc->listen_address()->with_peer(impostor_id)).ok());
  CallResult r;
  b.rpc->call(impostor_id, "echo", {}, r.handler(), 500ms);
  REQUIRE(run_until(io, [&] { return r.value.has_value() && !b.log.empty(); }));
  CHECK_FALSE(r.value->ok());
  CHECK(contains(b.log, "but the remote is peer " + a.identity.peer_id().to_string()));
  CHECK_FALSE(b.rpc->connected(impostor_id));
}

TEST_CASE("peers with different secrets refuse each other and both logs say so") {
  asio::io_context io;
  Node a(io, 1), b(io, 2);
  REQUIRE(b.rpc->add_peer(a.address()).ok());
  CallResult r;
  b.rpc->call(a.identity.peer_id(), "echo", {}, r.handler(), 1s);
  const std::string plain = "does not share this cluster's secret or is not a clusterpin peer";
  REQUIRE(run_until(
      io, [&] { return contains(a.log, plain) && contains(b.log, plain); }, 3s));
  REQUIRE(run_until(io, [&] { return r.value.has_value(); }));
  CHECK_FALSE(r.value->ok());
  CHECK_FALSE(a.rpc->connected(b.identity.peer_id()));
  CHECK_FALSE(b.rpc->connected(a.identity.peer_id()));
}

TEST_CASE("when both peers dial each other they settle on one link and calls work both ways") {
  asio::io_context io;
  Node a(io, 1), b(io, 1);
  REQUIRE(a.rpc->add_peer(b.address()).ok());
  REQUIRE(b.rpc->add_peer(a.address()).ok());
  // Past the grace period the duplicate is gone; calls must still work in both directions.
  io.run_for(400ms);
  int connected_lines_a = 0;
  for (const auto& l : a.log) connected_lines_a += l.find("rpc: connected") != std::string::npos;
  CHECK(connected_lines_a >= 1);
  for (const auto& l : a.log) MESSAGE("a: " << l);
  for (const auto& l : b.log) MESSAGE("b: " << l);
  CallResult ab, ba;
  a.rpc->call(b.identity.peer_id(), "echo", as_bytes("1"), ab.handler());
  b.rpc->call(a.identity.peer_id(), "echo", as_bytes("2"), ba.handler());
  REQUIRE(run_until(io, [&] { return ab.value && ba.value; }));
  CHECK(ab.value->ok());
  CHECK(ba.value->ok());
  CHECK(a.rpc->connected(b.identity.peer_id()));
  CHECK(b.rpc->connected(a.identity.peer_id()));
  CHECK_FALSE(contains(a.log, "link to peer"));  // the surviving link was never lost
}

TEST_CASE("a peer that restarts on the same address is reached again after backoff") {
  asio::io_context io;
  Node a(io, 1), b(io, 1);
  REQUIRE(b.rpc->add_peer(a.address()).ok());
  CallResult first;
  b.rpc->call(a.identity.peer_id(), "echo", as_bytes("1"), first.handler());
  REQUIRE(run_until(io, [&] { return first.value.has_value(); }));
  REQUIRE(first.value->ok());
  const Multiaddr where = *a.rpc->listen_address();
  a.rpc->close();
  a.rpc.reset();
  REQUIRE(run_until(io, [&] { return !b.rpc->connected(a.identity.peer_id()); }));
  io.run_for(100ms);  // a few failed redials
  // Same identity, same port.
  a.rpc = std::make_unique<RpcEndpoint>(io, a.identity, options_with(1, &a.log));
  REQUIRE(a.rpc->listen(where).ok());
  a.rpc->on_request(
      [](const PeerId&, std::string_view, ByteView p, RpcEndpoint::Responder r) { r.reply(p); });
  CallResult second;
  b.rpc->call(a.identity.peer_id(), "echo", as_bytes("2"), second.handler());
  REQUIRE(run_until(io, [&] { return second.value.has_value(); }));
  const std::string why = second.value->ok() ? std::string() : second.value->error().message;
  INFO(why);
  REQUIRE(second.value->ok());
  CHECK(**second.value == to_bytes("2"));
  CHECK(contains(b.log, "cannot reach peer"));
}

TEST_CASE("an answer to a call of a peer's previous run never reaches a call of its next run") {
  // Answers to a peer without a link wait for its next link, and calls are matched by (peer,
  // id): with ids counted from 1 in every run, the first call of a restarted peer got the
  // answer its previous run had asked for.
  asio::io_context io;
  Node a(io, 1);
  std::optional<RpcEndpoint::Responder> held;
  a.rpc->on_request([&](const PeerId&, std::string_view method, ByteView p, RpcEndpoint::Responder r) {
    if (method == "hold") return held.emplace(std::move(r)), void();
    r.reply(p);
  });
  Identity b_identity = Identity::generate();
  std::vector<std::string> b_log;
  auto b = std::make_unique<RpcEndpoint>(io, b_identity, options_with(1, &b_log));
  REQUIRE(b->add_peer(a.address()).ok());
  CallResult first;
  b->call(a.identity.peer_id(), "hold", as_bytes("1"), first.handler());
  REQUIRE(run_until(io, [&] { return held.has_value(); }));
  b->close();
  b.reset();
  REQUIRE(run_until(io, [&] { return !a.rpc->connected(b_identity.peer_id()); }));
  held->reply(as_bytes("OLD"));  // waits for b's next link

  auto again = std::make_unique<RpcEndpoint>(io, b_identity, options_with(1, &b_log));
  REQUIRE(again->add_peer(a.address()).ok());
  CallResult second;
  again->call(a.identity.peer_id(), "echo", as_bytes("new"), second.handler());
  REQUIRE(run_until(io, [&] { return second.value.has_value(); }));
  REQUIRE(second.value->ok());
  CHECK(**second.value == to_bytes("new"));
}

TEST_CASE("a link from a restarted peer replaces its previous run's link, even one not seen closing") {
  // The smaller id's dial wins a tie-break between two live links. A peer that restarted (or
  // moved) without this side seeing its old link close (a half-open socket) dials again; its
  // new link lost the tie-break to the dead one, and calls went into the dead link.
  asio::io_context io;
  Node a(io, 1), b(io, 1);
  if (b.identity.peer_id() < a.identity.peer_id()) std::swap(a.identity, b.identity);
  // Rebuild both with the ordered identities: a is the smaller id, so its dial wins ties.
  a.rpc = std::make_unique<RpcEndpoint>(io, a.identity, options_with(1, &a.log));
  b.rpc = std::make_unique<RpcEndpoint>(io, b.identity, options_with(1, &b.log));
  REQUIRE(a.rpc->listen(loopback_any()).ok());
  REQUIRE(b.rpc->listen(loopback_any()).ok());
  auto echo = [](const PeerId&, std::string_view, ByteView p, RpcEndpoint::Responder r) { r.reply(p); };
  a.rpc->on_request(echo);
  b.rpc->on_request(echo);
  REQUIRE(a.rpc->add_peer(b.address()).ok());
  CallResult first;
  a.rpc->call(b.identity.peer_id(), "echo", as_bytes("1"), first.handler());
  REQUIRE(run_until(io, [&] { return first.value.has_value(); }));
  REQUIRE(first.value->ok());

  // b's previous run stops answering but its link stays open, as a dead host's would.
  std::vector<Bytes> ignored;
  b.rpc->on_request([&](const PeerId&, std::string_view, ByteView p, RpcEndpoint::Responder) {
    ignored.emplace_back(p.begin(), p.end());
  });
  std::vector<std::string> log2;
  auto b2 = std::make_unique<RpcEndpoint>(io, b.identity, options_with(1, &log2));
  REQUIRE(b2->listen(loopback_any()).ok());
  b2->on_request(echo);
  REQUIRE(b2->add_peer(a.address()).ok());
  CallResult hello;
  b2->call(a.identity.peer_id(), "echo", as_bytes("hello"), hello.handler());
  REQUIRE(run_until(io, [&] { return hello.value.has_value(); }));
  REQUIRE(hello.value->ok());

  CallResult second;
  a.rpc->call(b.identity.peer_id(), "echo", as_bytes("2"), second.handler());
  REQUIRE(run_until(io, [&] { return second.value.has_value(); }, 4s));
  INFO((second.value->ok() ? std::string() : second.value->error().message));
  REQUIRE(second.value->ok());
  CHECK(**second.value == to_bytes("2"));
  CHECK(ignored.empty());
}

TEST_CASE("links that close right after their handshake are redialled with growing delays") {
  // A peer that completes every handshake and then closes the link (one of another version
  // refusing our messages, say) was redialled at the initial delay for ever: a successful
  // handshake reset the backoff.
  asio::io_context io;
  Identity remote = Identity::generate();
  ClusterSecret secret{};
  secret.fill(1);
  auto config = std::make_shared<LinkConfig>();
  config->keys = ClusterKeys::derive(secret);
  config->identity = LocalIdentity::from_identity(remote);
  config->log = [](const std::string&) {};
  int accepted = 0;
  auto listener = SecureListener::open(
      io, asio::ip::tcp::endpoint(asio::ip::make_address("127.0.0.1"), 0), config,
      [&](std::shared_ptr<SecureLink> link) {
        ++accepted;
        link->close(make_error("closed at once"));
      });
  REQUIRE(listener.ok());
  Node b(io, 1);
  auto where = Multiaddr::parse(fmt::format("/ip4/127.0.0.1/tcp/{}", (*listener)->local_endpoint().port()));
  REQUIRE(where.ok());
  REQUIRE(b.rpc->add_peer(where->with_peer(remote.peer_id())).ok());
  // 2 s with delays from 20 ms doubling to 200 ms: about 14 links; at 20 ms each, about 100.
  io.run_for(2s);
  (*listener)->close();
  CHECK(accepted >= 3);
  CHECK(accepted <= 25);
}

TEST_CASE("nothing is kept for a peer that only dialled in once its link is gone") {
  // Each identity that connected kept an entry, and answers to it waited (up to the backlog
  // bound, 16 MiB) for a next link that a client or an invented identity never makes.
  asio::io_context io;
  Node a(io, 1);
  std::optional<RpcEndpoint::Responder> held;
  a.rpc->on_request([&](const PeerId&, std::string_view, ByteView, RpcEndpoint::Responder r) {
    held.emplace(std::move(r));
  });
  for (int i = 0; i < 3; ++i) {
    Identity who = Identity::generate();
    std::vector<std::string> log;
    auto client = std::make_unique<RpcEndpoint>(io, who, options_with(1, &log));
    REQUIRE(client->add_peer(a.address()).ok());
    CallResult r;
    client->call(a.identity.peer_id(), "hold", as_bytes("x"), r.handler());
    REQUIRE(run_until(io, [&] { return held.has_value(); }));
    client->close();
    client.reset();
    REQUIRE(run_until(io, [&] { return !a.rpc->connected(who.peer_id()); }));
    held->reply(Bytes(4096));  // too late: the asker is gone
    held.reset();
    io.run_for(20ms);
    CHECK(a.rpc->queued_bytes(who.peer_id()) == 0);
  }
}

TEST_CASE("a call made while a dial that will fail is under way gets a dial of its own") {
  asio::io_context io;
  Node b(io, 1);
  Identity a_identity = Identity::generate();
  const std::uint16_t port = unused_port(io);
  const Multiaddr where = *Multiaddr::parse(fmt::format("/ip4/127.0.0.1/tcp/{}", port));
  REQUIRE(b.rpc->add_peer(where.with_peer(a_identity.peer_id())).ok());
  REQUIRE(run_until(io, [&] { return contains(b.log, "(attempt 1)"); }));  // add_peer's own dial
  // The first call dials a port nobody listens on; the refusal is decided before the peer
  // appears, but its handler has not run yet when the second call joins the dial.
  CallResult early, late;
  b.rpc->call(a_identity.peer_id(), "echo", as_bytes("early"), early.handler());
  std::vector<std::string> a_log;
  RpcEndpoint a(io, a_identity, options_with(1, &a_log));
  REQUIRE(a.listen(where).ok());
  a.on_request([](const PeerId&, std::string_view, ByteView p, RpcEndpoint::Responder r) { r.reply(p); });
  b.rpc->call(a_identity.peer_id(), "echo", as_bytes("late"), late.handler());
  REQUIRE(run_until(io, [&] { return early.value.has_value() && late.value.has_value(); }));
  REQUIRE_FALSE(early.value->ok());
  CHECK(early.value->error().message.find("cannot reach peer") != std::string::npos);
  const std::string why = late.value->ok() ? std::string() : late.value->error().message;
  INFO(why);
  REQUIRE(late.value->ok());
  CHECK(**late.value == to_bytes("late"));
}

TEST_CASE("the backlog for an unreachable peer is bounded and overflow is refused at once") {
  asio::io_context io;
  std::vector<std::string> log;
  RpcOptions o = options_with(1, &log);
  o.max_queue_bytes = 64 * 1024;
  Identity me = Identity::generate();
  RpcEndpoint rpc(io, me, o);
  const std::uint16_t port = unused_port(io);
  const PeerId ghost = Identity::generate().peer_id();
  REQUIRE(
      rpc.add_peer(Multiaddr::parse(fmt::format("/ip4/127.0.0.1/tcp/{}", port))->with_peer(ghost))
          .ok());
  const Bytes chunk(1000);
  int accepted = 0;
  Status last;
  for (int i = 0; i < 1000; ++i) {
    last = rpc.send(ghost, "note", chunk);
    if (!last) break;
    ++accepted;
  }
  CHECK(accepted > 10);
  CHECK(accepted < 70);
  REQUIRE_FALSE(last.ok());
  CHECK(last.error().message.find("send queue to peer") != std::string::npos);
  CHECK(rpc.queued_bytes(ghost) <= o.max_queue_bytes);
  CallResult r;
  rpc.call(ghost, "echo", chunk, r.handler());
  REQUIRE(run_until(
      io, [&] { return r.value.has_value(); }, 1s));
  CHECK(r.value->error().message.find("full") != std::string::npos);
}

TEST_CASE("closing the endpoint fails pending calls") {
  asio::io_context io;
  Node a(io, 1), b(io, 1);
  REQUIRE(b.rpc->add_peer(a.address()).ok());
  CallResult r;
  b.rpc->call(a.identity.peer_id(), "ignore", {}, r.handler());
  io.run_for(100ms);
  b.rpc->close();
  REQUIRE(run_until(
      io, [&] { return r.value.has_value(); }, 1s));
  CHECK(r.value->error().message.find("closed") != std::string::npos);
}

TEST_CASE("listen refuses a multiaddr that is not ip + tcp") {
  asio::io_context io;
  std::vector<std::string> log;
  RpcEndpoint rpc(io, Identity::generate(), options_with(1, &log));
  Status st = rpc.listen(*Multiaddr::parse("/ip4/127.0.0.1/udp/9096"));
  REQUIRE_FALSE(st.ok());
  CHECK(st.error().message.find("cluster.listen_multiaddress") != std::string::npos);
  if (has_ipv6_loopback(io)) {
    CHECK(rpc.listen(*Multiaddr::parse("/ip6/::1/tcp/0")).ok());
    CHECK(rpc.listen_address()->to_string().starts_with("/ip6/::1/tcp/"));
  }
}

TEST_CASE("a peer named by /dns is reached at the name's second address when the first refuses") {
  asio::io_context io;
  if (!has_ipv6_loopback(io)) return;
  // a.localhost resolves to 127.0.0.1 first, then ::1; the peer listens on ::1 only.
  Node a(io, 1, *Multiaddr::parse("/ip6/::1/tcp/0")), b(io, 1);
  const auto port = a.rpc->listen_address()->port();
  const auto named = Multiaddr::parse(fmt::format("/dns/a.localhost/tcp/{}", *port));
  REQUIRE(named);
  REQUIRE(b.rpc->add_peer(named->with_peer(a.identity.peer_id())).ok());
  CallResult r;
  b.rpc->call(a.identity.peer_id(), "echo", as_bytes("hello"), r.handler());
  REQUIRE(run_until(io, [&] { return r.value.has_value(); }));
  REQUIRE(r.value->ok());
  CHECK(**r.value == to_bytes("hello"));
  CHECK_FALSE(contains(b.log, "cannot reach"));
}

TEST_CASE("a dial of a name fails with each of its addresses' reasons when none answers") {
  asio::io_context io;
  if (!has_ipv6_loopback(io)) return;
  std::vector<std::string> log;
  RpcEndpoint rpc(io, Identity::generate(), options_with(1, &log));
  const std::uint16_t port = unused_port(io);
  const PeerId ghost = Identity::generate().peer_id();
  REQUIRE(rpc.add_peer(Multiaddr::parse(fmt::format("/dns/ghost.localhost/tcp/{}", port))
                           ->with_peer(ghost))
              .ok());
  CallResult r;
  rpc.call(ghost, "echo", {}, r.handler(), std::chrono::minutes(10));
  REQUIRE(run_until(io, [&] { return r.value.has_value(); }, 5s));
  REQUIRE_FALSE(r.value->ok());
  const std::string& message = r.value->error().message;
  CHECK(message.find(fmt::format("127.0.0.1:{}", port)) != std::string::npos);
  CHECK(message.find(fmt::format("[::1]:{}", port)) != std::string::npos);
  CHECK(rpc.pending_calls() == 0);
}

TEST_CASE("a call larger than the frame maximum is refused at once") {
  asio::io_context io;
  Node a(io, 1), b(io, 1);
  REQUIRE(b.rpc->add_peer(a.address()).ok());
  CallResult r;
  b.rpc->call(a.identity.peer_id(), "echo", Bytes(FrameLimits{}.max_plaintext + 1), r.handler());
  REQUIRE(run_until(
      io, [&] { return r.value.has_value(); }, 1s));
  REQUIRE_FALSE(r.value->ok());
  CHECK(r.value->error().message.find("exceeds the frame maximum") != std::string::npos);
}

TEST_CASE("an answer larger than the frame maximum reaches the caller as a failure at once") {
  asio::io_context io;
  Node a(io, 1), b(io, 1);
  REQUIRE(b.rpc->add_peer(a.address()).ok());
  CallResult big, after;
  b.rpc->call(a.identity.peer_id(), "big", {}, big.handler(), 10s);
  REQUIRE(run_until(
      io, [&] { return big.value.has_value(); }, 5s));
  REQUIRE_FALSE(big.value->ok());
  CHECK(big.value->error().message.find("the answer of") != std::string::npos);
  CHECK(big.value->error().message.find("exceeds the frame maximum") != std::string::npos);
  CHECK(contains(a.log, "sent as a failure"));
  // The link stays usable.
  b.rpc->call(a.identity.peer_id(), "echo", as_bytes("still here"), after.handler());
  REQUIRE(run_until(io, [&] { return after.value.has_value(); }));
  REQUIRE(after.value->ok());
  CHECK(**after.value == to_bytes("still here"));
}

TEST_CASE("a connected peer that stops reading cannot make the backlog exceed its bound") {
  asio::io_context io;
  Node a(io, 1);
  // A peer that completes the handshake and then never reads from its socket.
  Identity mute_identity = Identity::generate();
  auto config = std::make_shared<LinkConfig>();
  ClusterSecret secret{};
  secret.fill(1);
  config->keys = ClusterKeys::derive(secret);
  config->identity = LocalIdentity::from_identity(mute_identity);
  std::shared_ptr<SecureLink> mute;
  dial_secure(io, *tcp_endpoint_of(*a.rpc->listen_address()), config, nullptr,
              [&](Result<std::shared_ptr<SecureLink>> r) {
                if (r) mute = *r;
              });
  const PeerId mute_id = mute_identity.peer_id();
  REQUIRE(run_until(io, [&] { return mute && a.rpc->connected(mute_id); }));
  const Bytes chunk(64 * 1024);
  const std::size_t limit = RpcOptions{}.max_queue_bytes;
  bool refused = false;
  std::size_t sent = 0;
  const auto deadline = std::chrono::steady_clock::now() + 20s;
  while (!refused && std::chrono::steady_clock::now() < deadline) {
    Status st = a.rpc->send(mute_id, "note", chunk);
    if (!st) {
      refused = true;
      CHECK(st.error().message.find("send queue to peer") != std::string::npos);
      break;
    }
    sent += chunk.size();
    io.poll();
    CHECK(a.rpc->queued_bytes(mute_id) <= limit);
  }
  CHECK(refused);
  CHECK(a.rpc->queued_bytes(mute_id) <= limit);
  MESSAGE("accepted " << sent / 1024 << " KiB before refusing; backlog "
                      << a.rpc->queued_bytes(mute_id));
  mute->close(make_error("test over"));
}

TEST_CASE("redial delays double from the initial wait up to the cap, with jitter in [1/2, 1]") {
  using std::chrono::milliseconds;
  CHECK(redial_delay(0, 100ms, 10s, 1.0) == 100ms);
  CHECK(redial_delay(0, 100ms, 10s, 0.0) == 50ms);
  CHECK(redial_delay(3, 100ms, 10s, 1.0) == 800ms);
  CHECK(redial_delay(10, 100ms, 10s, 1.0) == 10s);
  CHECK(redial_delay(1000, 100ms, 10s, 0.0) == 5s);
  for (double j : {0.0, 0.3, 0.7, 1.0}) {
    const milliseconds d = redial_delay(5, 100ms, 10s, j);
    CHECK(d >= 1600ms);
    CHECK(d <= 3200ms);
  }
}

TEST_CASE("a call to a peer that is neither added nor connected fails at once") {
  asio::io_context io;
  std::vector<std::string> log;
  RpcEndpoint rpc(io, Identity::generate(), options_with(1, &log));
  CallResult r;
  const PeerId stranger = Identity::generate().peer_id();
  rpc.call(stranger, "echo", {}, r.handler());
  REQUIRE(run_until(
      io, [&] { return r.value.has_value(); }, 1s));
  CHECK(r.value->error().message.find("is unknown") != std::string::npos);
  CHECK_FALSE(rpc.send(stranger, "note", {}).ok());
  CHECK(rpc.pending_calls() == 0);
}

TEST_CASE("a call to a peer whose address refuses connections fails with the reason, not a timeout") {
  asio::io_context io;
  std::vector<std::string> log;
  RpcEndpoint rpc(io, Identity::generate(), options_with(1, &log));
  const std::uint16_t port = unused_port(io);
  const PeerId ghost = Identity::generate().peer_id();
  REQUIRE(
      rpc.add_peer(Multiaddr::parse(fmt::format("/ip4/127.0.0.1/tcp/{}", port))->with_peer(ghost))
          .ok());
  // Two calls: the first dials, the second arrives while a redial waits out its backoff.
  for (int i = 0; i < 2; ++i) {
    CallResult r;
    rpc.call(ghost, "echo", {}, r.handler(), std::chrono::minutes(10));
    REQUIRE(run_until(io, [&] { return r.value.has_value(); }, 5s));
    REQUIRE_FALSE(r.value->ok());
    CHECK(r.value->error().message.find("cannot reach peer " + ghost.to_string()) != std::string::npos);
  }
  CHECK(rpc.pending_calls() == 0);
  CHECK(rpc.queued_bytes(ghost) == 0);
}
