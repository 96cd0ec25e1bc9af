// The clusterpin handshake state machine and the frame codec, without sockets: same-secret peers
// agree on keys and learn each other's identity; a wrong secret, garbage, truncated, oversized,
// replayed or tampered messages and frames are refused with the reason the link will log.
#define DOCTEST_CONFIG_IMPLEMENT_WITH_MAIN
#include <doctest/doctest.h>
#include <sodium.h>

#include <algorithm>
#include <array>
#include <new>
#include <string>
#include <type_traits>
#include <vector>

#include "net/frame.hpp"
#include "net/noise_handshake.hpp"

using namespace clusterpin;
using namespace clusterpin::net;

namespace {

ClusterSecret secret_of(std::uint8_t fill) {
  ClusterSecret s{};
  s.fill(fill);
  return s;
}

struct Pair {
  LocalIdentity alice = LocalIdentity::generate();
  LocalIdentity bob = LocalIdentity::generate();
};

// Runs the three messages; returns the first failing status (or ok) and leaves both machines.
Status run(PeerHandshake& i, PeerHandshake& r) {
  for (int step = 0; step < 3; ++step) {
    PeerHandshake& w = step % 2 == 0 ? i : r;
    PeerHandshake& rd = step % 2 == 0 ? r : i;
    REQUIRE(w.wants_write());
    auto msg = w.write();
    if (!msg) return msg.error();
    if (Status st = rd.read(*msg); !st) return st;
  }
  return {};
}

}  // namespace

TEST_CASE("peers sharing the secret complete the handshake and learn each other's identity") {
  Pair p;
  const auto keys = ClusterKeys::derive(secret_of(1));
  auto i = PeerHandshake::initiator(keys, p.alice);
  auto r = PeerHandshake::responder(keys, p.bob);
  REQUIRE(run(i, r).ok());
  REQUIRE(i.done());
  REQUIRE(r.done());
  CHECK(*i.remote_identity() == p.bob.ed25519_public);
  CHECK(*r.remote_identity() == p.alice.ed25519_public);
  LinkSession a = i.finish(), b = r.finish();
  CHECK(a.handshake_hash == b.handshake_hash);
  Bytes ct, pt;
  REQUIRE(a.send.encrypt_with_ad({}, as_bytes("ping"), ct).ok());
  REQUIRE(b.receive.decrypt_with_ad({}, ct, pt).ok());
  CHECK(pt == to_bytes("ping"));
}

TEST_CASE("a responder with another secret refuses message 1 before any Diffie-Hellman") {
  Pair p;
  auto i = PeerHandshake::initiator(ClusterKeys::derive(secret_of(1)), p.alice);
  auto r = PeerHandshake::responder(ClusterKeys::derive(secret_of(2)), p.bob);
  Status st = run(i, r);
  REQUIRE_FALSE(st.ok());
  CHECK(r.failure() == HandshakeFailure::not_cluster_peer);
  CHECK(st.error().message.find("does not share this cluster's secret") != std::string::npos);
}

TEST_CASE("an initiator refuses a message 2 whose mac2 is keyed from another secret") {
  Pair p;
  const auto keys = ClusterKeys::derive(secret_of(1));
  ClusterKeys other = keys;
  other.mac2 = ClusterKeys::derive(secret_of(2)).mac2;
  auto i = PeerHandshake::initiator(keys, p.alice);
  auto r = PeerHandshake::responder(other, p.bob);
  Status st = run(i, r);
  REQUIRE_FALSE(st.ok());
  CHECK(i.failure() == HandshakeFailure::not_cluster_peer);
  CHECK_FALSE(i.remote_identity().has_value());
  CHECK(st.error().message.find("not a clusterpin peer") != std::string::npos);
}

TEST_CASE("a different psk fails message 3 at the responder") {
  Pair p;
  const auto keys = ClusterKeys::derive(secret_of(1));
  ClusterKeys other = keys;
  other.psk = ClusterKeys::derive(secret_of(2)).psk;
  auto i = PeerHandshake::initiator(keys, p.alice);
  auto r = PeerHandshake::responder(other, p.bob);
  REQUIRE_FALSE(run(i, r).ok());
  CHECK(r.failure() == HandshakeFailure::not_cluster_peer);
  CHECK_FALSE(r.remote_identity().has_value());
}

TEST_CASE("derived keys are distinct per purpose and per secret") {
  const auto a = ClusterKeys::derive(secret_of(1));
  const auto b = ClusterKeys::derive(secret_of(2));
  CHECK(a.psk != a.mac1);
  CHECK(a.mac1 != a.mac2);
  CHECK(a.psk != b.psk);
}

// The bytes an object of type T leaves in its storage once destroyed: `make` constructs it there.
template <class T, class Make>
std::array<unsigned char, sizeof(T)> storage_after(Make make, std::vector<noise::Key>& held) {
  alignas(T) std::array<unsigned char, sizeof(T)> storage{};
  T* object = make(storage.data());
  held = [&] {
    if constexpr (std::is_same_v<T, noise::Keypair>) {
      return std::vector<noise::Key>{object->secret};
    } else {
      return std::vector<noise::Key>{object->psk, object->mac1, object->mac2};
    }
  }();
  object->~T();
  return storage;
}

template <std::size_t N>
bool holds(const std::array<unsigned char, N>& storage, const noise::Key& key) {
  return std::search(storage.begin(), storage.end(), key.begin(), key.end()) != storage.end();
}

TEST_CASE("secrets are wiped from memory when their holders are destroyed") {
  noise::Key key{};
  for (std::size_t i = 0; i < key.size(); ++i) key[i] = static_cast<std::uint8_t>(0xa0 + i);
  std::vector<noise::Key> held;

  alignas(noise::CipherState) std::array<unsigned char, sizeof(noise::CipherState)> live{};
  auto* cipher = new (live.data()) noise::CipherState();
  cipher->initialize_key(key);
  REQUIRE(holds(live, key));  // the key is stored in the object: the checks below can fail
  cipher->~CipherState();
  CHECK(!holds(live, key));

  auto keypair = storage_after<noise::Keypair>(
      [&](unsigned char* at) { return new (at) noise::Keypair(noise::keypair_from_secret(key)); },
      held);
  CHECK(!holds(keypair, held.at(0)));

  auto keys = storage_after<ClusterKeys>(
      [](unsigned char* at) { return new (at) ClusterKeys(ClusterKeys::derive(secret_of(7))); },
      held);
  REQUIRE(held.size() == 3);
  for (const auto& k : held) CHECK(!holds(keys, k));
}

TEST_CASE("garbage, truncated and oversized first messages are refused") {
  Pair p;
  const auto keys = ClusterKeys::derive(secret_of(1));
  Bytes garbage(kMessage1Size);
  randombytes_buf(garbage.data(), garbage.size());
  {
    auto r = PeerHandshake::responder(keys, p.bob);
    CHECK_FALSE(r.read(garbage).ok());
    CHECK(r.failure() == HandshakeFailure::not_cluster_peer);
  }
  auto i = PeerHandshake::initiator(keys, p.alice);
  Bytes m1 = *i.write();
  {
    auto r = PeerHandshake::responder(keys, p.bob);
    CHECK_FALSE(r.read(ByteView(m1).first(m1.size() - 1)).ok());
    CHECK(r.failure() == HandshakeFailure::malformed);
    CHECK_FALSE(r.wants_write());
  }
  {
    Bytes big = m1;
    big.push_back(0);
    auto r = PeerHandshake::responder(keys, p.bob);
    CHECK_FALSE(r.read(big).ok());
    CHECK(r.failure() == HandshakeFailure::malformed);
  }
  {
    auto r = PeerHandshake::responder(keys, p.bob);
    CHECK_FALSE(r.read({}).ok());
  }
}

TEST_CASE("a replayed message 1 is recognised by the replay filter") {
  Pair p;
  const auto keys = ClusterKeys::derive(secret_of(1));
  auto i = PeerHandshake::initiator(keys, p.alice);
  Bytes m1 = *i.write();
  Message1ReplayFilter filter(2);
  auto e = PeerHandshake::message1_ephemeral(m1);
  REQUIRE(e.has_value());
  CHECK(filter.first_sight(*e));
  CHECK_FALSE(filter.first_sight(*e));
  CHECK_FALSE(PeerHandshake::message1_ephemeral(ByteView(m1).first(10)).has_value());
}

TEST_CASE("a message 3 replayed into a new session is refused") {
  Pair p;
  const auto keys = ClusterKeys::derive(secret_of(1));
  auto i = PeerHandshake::initiator(keys, p.alice);
  auto r = PeerHandshake::responder(keys, p.bob);
  Bytes m1 = *i.write();
  REQUIRE(r.read(m1).ok());
  Bytes m2 = *r.write();
  REQUIRE(i.read(m2).ok());
  Bytes m3 = *i.write();
  // A second responder accepts the replayed message 1 (a filter would refuse it) and answers with
  // its own ephemeral key, so the old message 3 cannot authenticate.
  auto r2 = PeerHandshake::responder(keys, p.bob);
  REQUIRE(r2.read(m1).ok());
  REQUIRE(r2.write().ok());
  CHECK_FALSE(r2.read(m3).ok());
  CHECK(r2.failure() == HandshakeFailure::not_cluster_peer);
}

TEST_CASE("a forged identity signature is refused") {
  Pair p;
  p.bob.static_signature[5] ^= 1;
  const auto keys = ClusterKeys::derive(secret_of(1));
  auto i = PeerHandshake::initiator(keys, p.alice);
  auto r = PeerHandshake::responder(keys, p.bob);
  REQUIRE_FALSE(run(i, r).ok());
  CHECK(i.failure() == HandshakeFailure::bad_identity);
}

TEST_CASE("messages out of turn are refused") {
  Pair p;
  const auto keys = ClusterKeys::derive(secret_of(1));
  auto r = PeerHandshake::responder(keys, p.bob);
  CHECK_FALSE(r.wants_write());
  CHECK_FALSE(r.write().ok());
  auto i = PeerHandshake::initiator(keys, p.alice);
  CHECK_FALSE(i.read(Bytes(kMessage2Size)).ok());
}

// ---- frames ----

namespace {

struct Codec {
  FrameSealer sealer;
  FrameOpener opener;
};

Codec codec(FrameLimits limits) {
  noise::Key k{};
  k[0] = 42;
  noise::CipherState a, b;
  a.initialize_key(k);
  b.initialize_key(k);
  return Codec{FrameSealer(a, limits), FrameOpener(b, limits)};
}

}  // namespace

TEST_CASE("frames round-trip in order across several rekeys") {
  auto c = codec({.max_plaintext = 64, .rekey_interval = 3});
  Bytes wire;
  for (int n = 0; n < 20; ++n) REQUIRE(c.sealer.seal(as_bytes(std::to_string(n)), wire).ok());
  // Deliver one byte at a time: the decoder must reassemble frames split anywhere.
  Bytes pt;
  int got = 0;
  for (std::uint8_t byte : wire) {
    c.opener.feed(ByteView(&byte, 1));
    auto r = c.opener.next(pt);
    REQUIRE(r.ok());
    if (*r) {
      CHECK(pt == to_bytes(std::to_string(got)));
      ++got;
    }
  }
  CHECK(got == 20);
}

TEST_CASE("a replayed frame fails authentication and the opener stays failed") {
  auto c = codec({});
  Bytes f1, pt;
  REQUIRE(c.sealer.seal(as_bytes("one"), f1).ok());
  c.opener.feed(f1);
  REQUIRE(*c.opener.next(pt));
  c.opener.feed(f1);
  CHECK_FALSE(c.opener.next(pt).ok());
  CHECK(c.opener.failed());
  Bytes f2;
  REQUIRE(c.sealer.seal(as_bytes("two"), f2).ok());
  c.opener.feed(f2);
  CHECK_FALSE(c.opener.next(pt).ok());
}

TEST_CASE("an oversized frame is refused from its length prefix alone") {
  auto c = codec({.max_plaintext = 100, .rekey_interval = 10});
  const std::uint8_t header[4] = {0x7f, 0xff, 0xff, 0xff};
  c.opener.feed(ByteView(header, 4));
  Bytes pt;
  auto r = c.opener.next(pt);
  REQUIRE_FALSE(r.ok());
  CHECK(r.error().message.find("length") != std::string::npos);
  Bytes out;
  CHECK_FALSE(c.sealer.seal(Bytes(101), out).ok());
  CHECK(c.sealer.seal(Bytes(100), out).ok());
}

TEST_CASE("a truncated frame waits for more bytes, a tampered one is refused") {
  auto c = codec({});
  Bytes f, pt;
  REQUIRE(c.sealer.seal(as_bytes("hello"), f).ok());
  c.opener.feed(ByteView(f).first(f.size() - 1));
  auto r = c.opener.next(pt);
  REQUIRE(r.ok());
  CHECK_FALSE(*r);
  CHECK(c.opener.bytes_wanted() == 1);
  Bytes last{static_cast<std::uint8_t>(f.back() ^ 0x80)};
  c.opener.feed(last);
  CHECK_FALSE(c.opener.next(pt).ok());
}

TEST_CASE("a frame shorter than a tag is refused") {
  auto c = codec({});
  const std::uint8_t header[4] = {0, 0, 0, 3};
  c.opener.feed(ByteView(header, 4));
  Bytes pt;
  CHECK_FALSE(c.opener.next(pt).ok());
}
