// Decoders fed with mutated valid encodings and random text (fixed seeds, so runs repeat): they
// never crash, and whatever they accept re-encodes to the same bytes and parses back equal.
#include <doctest/doctest.h>

#include <random>
#include <string>

#include "core/cid.hpp"
#include "core/duration.hpp"
#include "core/multiaddr.hpp"
#include "core/peer_id.hpp"

using namespace clusterpin;

namespace {

Bytes mutate(Bytes bytes, std::mt19937& rng) {
  std::uniform_int_distribution<int> action(0, 3);
  std::uniform_int_distribution<int> byte(0, 255);
  int changes = 1 + static_cast<int>(rng() % 3);
  for (int i = 0; i < changes; ++i) {
    std::size_t at = bytes.empty() ? 0 : rng() % bytes.size();
    switch (action(rng)) {
      case 0: if (!bytes.empty()) bytes[at] = static_cast<std::uint8_t>(byte(rng)); break;
      case 1: if (!bytes.empty()) bytes.resize(at); break;
      case 2: bytes.insert(bytes.begin() + static_cast<std::ptrdiff_t>(at), static_cast<std::uint8_t>(byte(rng))); break;
      default: bytes.push_back(static_cast<std::uint8_t>(byte(rng))); break;
    }
  }
  return bytes;
}

std::string mutate_text(std::string text, std::mt19937& rng, std::string_view alphabet) {
  std::size_t at = text.empty() ? 0 : rng() % text.size();
  char c = alphabet[rng() % alphabet.size()];
  if (rng() % 2 == 0 && !text.empty()) {
    text[at] = c;
  } else {
    text.insert(text.begin() + static_cast<std::ptrdiff_t>(at), c);
  }
  return text;
}

}  // namespace

TEST_CASE("mutated CID bytes are refused or round-trip exactly") {
  std::mt19937 rng(20260101);
  const Cid seed_cids[] = {Cid::parse("QmdfTbBqBPQ7VNxZEYEj14VmRuZBkqFbiwReogJgS1zR1n").value(),
                           Cid::from_content(Codec::dag_json, to_bytes("x")),
                           Cid::v1(Codec::raw, Multihash::compute(HashFunction::identity, to_bytes("id")))};
  std::vector<Bytes> seeds;
  for (const Cid& c : seed_cids) seeds.emplace_back(c.bytes().begin(), c.bytes().end());
  int accepted = 0;
  for (int i = 0; i < 20000; ++i) {
    Bytes input = mutate(seeds[i % 3], rng);
    Result<Cid> cid = Cid::from_bytes(input);
    if (!cid) continue;
    ++accepted;
    CHECK(std::ranges::equal(cid->bytes(), input));
    CHECK(Cid::parse(cid->to_string()).value() == *cid);
  }
  CHECK(accepted > 0);  // identity digests of any length keep some mutants valid
}

TEST_CASE("mutated multiaddr bytes are refused or round-trip through text") {
  std::mt19937 rng(42);
  const Bytes seeds[] = {
      Multiaddr::parse("/ip4/127.0.0.1/tcp/9096/p2p/12D3KooWBtg3aaRMjxwedh83aGiUkwSxDwUZkzuJcfaqUmo7R3pq")->bytes(),
      Multiaddr::parse("/ip6/fe80::1/udp/4001/quic-v1")->bytes(),
      Multiaddr::parse("/dns4/example.com/tcp/443")->bytes(),
      Multiaddr::parse("/unix/tmp/x.sock")->bytes()};
  int accepted = 0;
  for (int i = 0; i < 20000; ++i) {
    Bytes input = mutate(seeds[i % 4], rng);
    Result<Multiaddr> address = Multiaddr::from_bytes(input);
    if (!address) continue;
    ++accepted;
    CHECK(address->bytes() == input);
    Result<Multiaddr> again = Multiaddr::parse(address->to_string());
    REQUIRE_MESSAGE(again.ok(), address->to_string());
    CHECK_MESSAGE(*again == *address, address->to_string());
  }
  CHECK(accepted > 0);
}

TEST_CASE("mutated peer id and duration texts are refused or print back to an equal value") {
  std::mt19937 rng(7);
  const std::string base58 = "123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz0OIl";
  for (int i = 0; i < 5000; ++i) {
    std::string text = mutate_text("12D3KooWBtg3aaRMjxwedh83aGiUkwSxDwUZkzuJcfaqUmo7R3pq", rng, base58);
    Result<PeerId> id = PeerId::parse(text);
    if (id) CHECK(PeerId::parse(id->to_string()).value() == *id);
  }
  const std::string duration_chars = "0123456789.+-nsuµmh";
  for (int i = 0; i < 20000; ++i) {
    std::string text = mutate_text(i % 2 ? "1h2m3.5s" : "-300.25ms", rng, duration_chars);
    Result<std::chrono::nanoseconds> d = parse_go_duration(text);
    if (d) CHECK(parse_go_duration(format_go_duration(*d)).value() == *d);
  }
}
