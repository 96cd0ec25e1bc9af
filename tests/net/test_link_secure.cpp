// Secure links over loopback TCP (127.0.0.1, OS-chosen ports): an authenticated link carries
// frames both ways; a different secret, a wrong peer identity, garbage, silence and oversized
// frames are refused within a timeout, with log lines that say why; failing addresses get limited.
#define DOCTEST_CONFIG_IMPLEMENT_WITH_MAIN
#include <doctest/doctest.h>
#include <sodium.h>

#include <array>
#include <chrono>
#include <functional>
#include <string>
#include <vector>

#include "net/secure_link.hpp"

using namespace clusterpin;
using namespace clusterpin::net;
using asio::ip::tcp;
using namespace std::chrono_literals;

namespace {

bool contains(const std::vector<std::string>& lines, std::string_view text) {
  for (const auto& l : lines) {
    if (l.find(text) != std::string::npos) return true;
  }
  return false;
}

std::shared_ptr<LinkConfig> config_with(std::uint8_t secret_fill, std::vector<std::string>* log) {
  ClusterSecret secret{};
  secret.fill(secret_fill);
  auto c = std::make_shared<LinkConfig>();
  c->keys = ClusterKeys::derive(secret);
  c->identity = LocalIdentity::generate();
  c->handshake_timeout = 2s;
  c->log = [log](const std::string& line) { log->push_back(line); };
  return c;
}

// Runs the loop until done() or the timeout; returns done().
bool run_until(asio::io_context& io, const std::function<bool()>& done,
               std::chrono::milliseconds timeout = 5s) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  while (!done() && std::chrono::steady_clock::now() < deadline) {
    io.run_one_for(10ms);
  }
  return done();
}

const tcp::endpoint kLoopback(asio::ip::make_address("127.0.0.1"), 0);

struct Fixture {
  asio::io_context io;
  std::vector<std::string> server_log, client_log;
  std::vector<std::shared_ptr<SecureLink>> accepted;
  std::shared_ptr<SecureListener> listener;

  void listen(std::shared_ptr<const LinkConfig> config) {
    auto l = SecureListener::open(
        io, kLoopback, std::move(config),
        [this](std::shared_ptr<SecureLink> link) { accepted.push_back(link); });
    REQUIRE(l.ok());
    listener = *l;
  }
  // Dials the listener as a peer holding secret 1; true once the link is up on both sides.
  bool peer_links() {
    const std::size_t before = accepted.size();
    bool linked = false;
    dial_secure(io, listener->local_endpoint(), config_with(1, &client_log), nullptr,
                [&](Result<std::shared_ptr<SecureLink>> r) { linked = r.ok(); });
    return run_until(io, [&] { return linked && accepted.size() == before + 1; });
  }
  // Whether the listener closed `s` within `within` (a read ends with EOF).
  bool closed_by_server(tcp::socket& s, std::chrono::milliseconds within) {
    bool ended = false;
    std::array<char, 16> buf;
    s.async_read_some(asio::buffer(buf),
                      [&](const asio::error_code& ec, std::size_t) { ended = ec.value() != 0; });
    bool r = run_until(io, [&] { return ended; }, within);
    if (!r) {
      s.cancel();
      run_until(io, [&] { return ended; }, 1s);
    }
    return r;
  }
  ~Fixture() {
    if (listener) listener->close();
    for (auto& l : accepted) l->close(make_error("test over"));
    io.run_for(20ms);
  }
};

}  // namespace

TEST_CASE("peers sharing the secret get an authenticated link that carries frames both ways") {
  Fixture f;
  auto server = config_with(1, &f.server_log);
  auto client = config_with(1, &f.client_log);
  f.listen(server);
  std::shared_ptr<SecureLink> dialed;
  std::optional<Error> dial_error;
  dial_secure(
      f.io, f.listener->local_endpoint(), client,
      [&](const IdentityKey& id) -> Status {
        if (id != server->identity.ed25519_public) return make_error("wrong peer");
        return {};
      },
      [&](Result<std::shared_ptr<SecureLink>> r) {
        if (r)
          dialed = *r;
        else
          dial_error = r.error();
      });
  REQUIRE(run_until(f.io, [&] { return (dialed || dial_error) && !f.accepted.empty(); }));
  REQUIRE(dialed);
  auto& accepted = f.accepted.front();
  CHECK(dialed->remote_identity() == server->identity.ed25519_public);
  CHECK(accepted->remote_identity() == client->identity.ed25519_public);
  CHECK(dialed->initiated_locally());
  CHECK_FALSE(accepted->initiated_locally());

  std::vector<std::string> at_server, at_client;
  accepted->start([&](Bytes& frame) { at_server.emplace_back(frame.begin(), frame.end()); },
                  [](const Error&) {});
  dialed->start([&](Bytes& frame) { at_client.emplace_back(frame.begin(), frame.end()); },
                [](const Error&) {});
  for (int i = 0; i < 100; ++i) REQUIRE(dialed->send(as_bytes(std::to_string(i))).ok());
  REQUIRE(accepted->send(as_bytes("pong")).ok());
  REQUIRE(run_until(f.io, [&] { return at_server.size() == 100 && at_client.size() == 1; }));
  CHECK(at_server[99] == "99");
  CHECK(at_client[0] == "pong");
  dialed->close(make_error("done"));
}

TEST_CASE("a frame handler may close its own link and still use what it captured") {
  // RPC's handler captures the sender's id and hands it by reference to the call; a call that
  // removes that peer closes this link from inside the handler. The handler used to be
  // destroyed there, while it ran (the sanitizer build reports the use after free).
  Fixture f;
  auto server = config_with(1, &f.server_log);
  f.listen(server);
  std::shared_ptr<SecureLink> dialed;
  dial_secure(f.io, f.listener->local_endpoint(), config_with(1, &f.client_log), nullptr,
              [&](Result<std::shared_ptr<SecureLink>> r) {
                if (r) dialed = *r;
              });
  REQUIRE(run_until(f.io, [&] { return dialed && !f.accepted.empty(); }));
  auto accepted = f.accepted.front();
  std::string seen;
  bool closed = false;
  const std::string sender(64, 'p');  // on the heap, as a PeerId's text is
  accepted->start(
      [&seen, link = accepted.get(), captured = sender](Bytes& frame) {
        link->close(make_error("the handling removed this peer"));
        seen = captured + std::string(frame.begin(), frame.end());
      },
      [&closed](const Error&) { closed = true; });
  dialed->start([](Bytes&) {}, [](const Error&) {});
  REQUIRE(dialed->send(as_bytes("!")).ok());
  REQUIRE(run_until(f.io, [&] { return closed; }));
  CHECK(seen == sender + "!");
  f.io.run_for(20ms);
}

TEST_CASE("a peer with another secret is refused on both sides and both logs say why") {
  Fixture f;
  f.listen(config_with(1, &f.server_log));
  std::optional<Error> dial_error;
  bool linked = false;
  const auto start = std::chrono::steady_clock::now();
  dial_secure(f.io, f.listener->local_endpoint(), config_with(2, &f.client_log), nullptr,
              [&](Result<std::shared_ptr<SecureLink>> r) {
                if (r)
                  linked = true;
                else
                  dial_error = r.error();
              });
  REQUIRE(run_until(f.io, [&] { return (linked || dial_error) && !f.server_log.empty(); }));
  CHECK(std::chrono::steady_clock::now() - start < 1s);  // refused at once, not by timeout
  CHECK_FALSE(linked);
  REQUIRE(dial_error);
  MESSAGE("client: " << dial_error->message);
  MESSAGE("server: " << f.server_log.front());
  CHECK(dial_error->message.find("does not share this cluster's secret") != std::string::npos);
  CHECK(contains(f.server_log, "does not share this cluster's secret or is not a clusterpin peer"));
  CHECK(f.accepted.empty());
}

TEST_CASE("a dial that reaches a different peer than expected is refused") {
  Fixture f;
  f.listen(config_with(1, &f.server_log));
  std::optional<Error> dial_error;
  bool linked = false;
  dial_secure(
      f.io, f.listener->local_endpoint(), config_with(1, &f.client_log),
      [](const IdentityKey&) -> Status { return make_error("the remote is peer B, not peer A"); },
      [&](Result<std::shared_ptr<SecureLink>> r) {
        if (r)
          linked = true;
        else
          dial_error = r.error();
      });
  REQUIRE(run_until(f.io, [&] { return (linked || dial_error) && !f.server_log.empty(); }));
  CHECK_FALSE(linked);
  REQUIRE(dial_error);
  CHECK(dial_error->message.find("not peer A") != std::string::npos);
  CHECK(f.accepted.empty());
  CHECK(contains(f.server_log, "refused"));
}

TEST_CASE("garbage, truncated and silent connections are refused, logged up to the limit, and a peer from the same address still gets in") {
  Fixture f;
  auto server = config_with(1, &f.server_log);
  server->handshake_timeout = 200ms;
  server->failure_limits.max_failures = 3;
  f.listen(server);
  const auto target = f.listener->local_endpoint();

  auto raw_send = [&](Bytes data) {
    tcp::socket s(f.io);
    s.connect(target);
    asio::write(s, asio::buffer(data));
    return s;
  };
  // 1: random bytes with a plausible length prefix for message 1.
  Bytes garbage(2 + kMessage1Size);
  randombytes_buf(garbage.data(), garbage.size());
  garbage[0] = 0;
  garbage[1] = kMessage1Size;
  auto s1 = raw_send(garbage);
  REQUIRE(run_until(f.io, [&] { return f.server_log.size() >= 1; }));
  CHECK(contains(f.server_log, "not a clusterpin peer"));
  // 2: an oversized length prefix.
  auto s2 = raw_send(Bytes{0xff, 0xff, 1, 2, 3});
  REQUIRE(run_until(f.io, [&] { return f.server_log.size() >= 2; }));
  CHECK(contains(f.server_log, "65535 bytes is invalid"));
  // 3: a truncated message 1, then silence until the handshake times out.
  auto s3 = raw_send(Bytes{0, kMessage1Size, 1, 2, 3});
  REQUIRE(run_until(
      f.io, [&] { return f.server_log.size() >= 4; }, 2s));
  CHECK(contains(f.server_log, "timed out"));
  CHECK(contains(f.server_log, "further failures in the next 60 s are not logged"));
  const std::size_t logged = f.server_log.size();
  auto s4 = raw_send(garbage);
  f.io.run_for(200ms);
  CHECK(f.server_log.size() == logged);  // the fourth failure is not logged

  // A peer that holds the secret and shares the address is not locked out by those failures
  // (it was, for a minute: five connect-and-close from any process on its host did that).
  CHECK(f.accepted.empty());
  CHECK(f.peer_links());
}

TEST_CASE("silent connections never keep a peer out: a newer connection ends the oldest silent one") {
  // One host opening max_pending_handshakes silent connections kept every other peer out
  // until their handshake timeouts, and again after them; then many addresses (127.0.0.x, an
  // IPv6 /48) filling the global bound did the same.
  Fixture f;
  auto server = config_with(1, &f.server_log);
  server->handshake_timeout = 3s;
  server->max_pending_per_source = 3;
  server->max_pending_handshakes = 5;
  f.listen(server);
  const auto target = f.listener->local_endpoint();
  auto silent_from = [&](const char* source) {
    auto s = std::make_unique<tcp::socket>(f.io);
    s->open(tcp::v4());
    s->bind(tcp::endpoint(asio::ip::make_address(source), 0));
    s->connect(target);
    return s;
  };
  std::vector<std::unique_ptr<tcp::socket>> held;
  for (int i = 0; i < 3; ++i) {
    held.push_back(silent_from("127.0.0.1"));
    f.io.run_for(50ms);
  }
  // A fourth from the same source ends that source's oldest; the others stay.
  auto fourth = silent_from("127.0.0.1");
  CHECK(f.closed_by_server(*held[0], 500ms));
  CHECK_FALSE(f.closed_by_server(*held[2], 100ms));
  CHECK_FALSE(f.closed_by_server(*fourth, 100ms));
  // Sources 127.0.0.2 and .3 fill the five slots in all; a peer holding the secret, dialling
  // from 127.0.0.1, still gets its link, ending the oldest silent connection.
  auto two = silent_from("127.0.0.2");
  auto three = silent_from("127.0.0.3");
  f.io.run_for(50ms);
  CHECK(f.peer_links());
  CHECK(f.closed_by_server(*held[1], 500ms));
  // Ending a connection to make room is not the failure of its source: not logged as one.
  CHECK_FALSE(contains(f.server_log, "closed to make room for a newer connection"));
}

TEST_CASE("a connection that sends nothing for a second after its connect is closed") {
  Fixture f;
  auto server = config_with(1, &f.server_log);
  server->handshake_timeout = 5s;
  f.listen(server);
  tcp::socket silent(f.io);
  silent.connect(f.listener->local_endpoint());
  const auto start = std::chrono::steady_clock::now();
  REQUIRE(f.closed_by_server(silent, 4s));
  CHECK(std::chrono::steady_clock::now() - start < 2500ms);
  CHECK(contains(f.server_log, "no handshake message within 1000 ms"));
}

TEST_CASE("a replayed handshake message 1 is refused by the listener") {
  Fixture f;
  auto server = config_with(1, &f.server_log);
  server->handshake_timeout = 300ms;
  f.listen(server);
  auto initiator = PeerHandshake::initiator(server->keys, LocalIdentity::generate());
  Bytes wire{0, static_cast<std::uint8_t>(kMessage1Size)};
  const Bytes m1 = *initiator.write();
  wire.insert(wire.end(), m1.begin(), m1.end());
  tcp::socket first(f.io), second(f.io);
  first.connect(f.listener->local_endpoint());
  asio::write(first, asio::buffer(wire));
  // The first copy is answered with message 2.
  std::array<std::uint8_t, 2> len{};
  bool answered = false;
  asio::async_read(first, asio::buffer(len),
                   [&](const asio::error_code& ec, std::size_t) { answered = !ec; });
  REQUIRE(run_until(f.io, [&] { return answered; }));
  CHECK(((len[0] << 8) | len[1]) == static_cast<int>(kMessage2Size));
  second.connect(f.listener->local_endpoint());
  asio::write(second, asio::buffer(wire));
  REQUIRE(run_until(f.io, [&] { return contains(f.server_log, "replayed"); }));
  CHECK(f.accepted.empty());
}

TEST_CASE("a frame larger than the receiver's maximum closes the link") {
  Fixture f;
  auto server = config_with(1, &f.server_log);
  server->frame_limits.max_plaintext = 1000;
  auto client = config_with(1, &f.client_log);
  client->frame_limits.max_plaintext = 100'000;
  f.listen(server);
  std::shared_ptr<SecureLink> dialed;
  dial_secure(f.io, f.listener->local_endpoint(), client, nullptr,
              [&](Result<std::shared_ptr<SecureLink>> r) {
                if (r) dialed = *r;
              });
  REQUIRE(run_until(f.io, [&] { return dialed && !f.accepted.empty(); }));
  std::optional<Error> server_closed, client_closed;
  int frames = 0;
  f.accepted.front()->start([&](Bytes&) { ++frames; }, [&](const Error& e) { server_closed = e; });
  dialed->start([](Bytes&) {}, [&](const Error& e) { client_closed = e; });
  REQUIRE(dialed->send(Bytes(1000)).ok());
  REQUIRE(dialed->send(Bytes(5000)).ok());
  REQUIRE(run_until(f.io, [&] { return server_closed && client_closed; }));
  CHECK(frames == 1);
  CHECK(server_closed->message.find("length") != std::string::npos);
  CHECK_FALSE(f.accepted.front()->is_open());
}

TEST_CASE(
    "the failure limiter refuses an address after its failures and forgets after the window") {
  AddressFailureLimiter limiter({.max_failures = 2, .window = 1000ms, .max_tracked = 2});
  const auto t0 = AddressFailureLimiter::Clock::now();
  CHECK(limiter.allowed("a", t0));
  CHECK_FALSE(limiter.record_failure("a", t0));
  CHECK(limiter.allowed("a", t0));
  CHECK(limiter.record_failure("a", t0));
  CHECK_FALSE(limiter.allowed("a", t0 + 999ms));
  CHECK(limiter.allowed("b", t0));
  CHECK(limiter.allowed("a", t0 + 1000ms));
  limiter.record_failure("b", t0);
  limiter.record_failure("c", t0);
  limiter.record_failure("d", t0);
  CHECK(limiter.tracked() <= 2);
}
