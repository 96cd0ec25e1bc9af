// Multiaddrs: text/binary round trips with the go-multiaddr byte layouts, canonical IPv6 text,
// /ipfs printed as /p2p, accessors, peer replacement, and errors that name the bad component.
#include <doctest/doctest.h>

#include <string>
#include <unordered_set>

#include "core/encoding.hpp"
#include "core/multiaddr.hpp"

using namespace clusterpin;

namespace {

constexpr const char* kPeer = "12D3KooWBtg3aaRMjxwedh83aGiUkwSxDwUZkzuJcfaqUmo7R3pq";

Multiaddr parse_ok(std::string_view text) {
  Result<Multiaddr> address = Multiaddr::parse(text);
  REQUIRE_MESSAGE(address.ok(), (address.ok() ? std::string() : address.error().message));
  return *address;
}

std::string error_of(std::string_view text) {
  Result<Multiaddr> address = Multiaddr::parse(text);
  REQUIRE_FALSE(address.ok());
  return address.error().message;
}

}  // namespace

TEST_CASE("multiaddrs have the go-multiaddr binary layout") {
  const std::pair<const char*, const char*> cases[] = {
      {"/ip4/127.0.0.1/udp/1234", "047f000001910204d2"},
      {"/ip4/127.0.0.1/tcp/4001", "047f000001060fa1"},
      {"/ip6/::1/tcp/4001", "2900000000000000000000000000000001060fa1"},
      {"/dns4/example.com/tcp/443", "360b6578616d706c652e636f6d0601bb"},
      {"/ip4/1.2.3.4/udp/4001/quic-v1", "040102030491020fa1cd03"},
      {"/ip4/1.2.3.4/udp/4001/quic", "040102030491020fa1cc03"},
      {"/unix/tmp/s.sock", "90030b2f746d702f732e736f636b"},
  };
  for (auto [text, hex] : cases) {
    CAPTURE(std::string(text));
    Multiaddr address = parse_ok(text);
    CHECK(hex_encode(address.bytes()) == hex);
    CHECK(address.to_string() == text);
    Result<Multiaddr> back = Multiaddr::from_bytes(address.bytes());
    REQUIRE(back.ok());
    CHECK(*back == address);
    CHECK(back->to_string() == text);
  }
}

TEST_CASE("a /p2p component carries the peer id multihash and /ipfs prints as /p2p") {
  Multiaddr address = parse_ok(std::string("/ip4/10.0.0.1/tcp/9096/ipfs/") + kPeer);
  CHECK(address.to_string() == std::string("/ip4/10.0.0.1/tcp/9096/p2p/") + kPeer);
  CHECK(address == parse_ok(std::string("/ip4/10.0.0.1/tcp/9096/p2p/") + kPeer));
  // code 421 = varint a5 03, length 0x26, identity multihash 00 24 ...
  CHECK(hex_encode(address.bytes()).starts_with("040a000001062388a50326002408011220"));
  REQUIRE(address.peer_id().has_value());
  CHECK(address.peer_id()->to_string() == kPeer);
  // A CIDv1 peer id in the text is printed in the base58btc form.
  Multiaddr cid_form = parse_ok("/p2p/bafzaajaiaejcahwr5d5ofrfbis4l5d6uwr57hu5tjodrypfm6yaq6dsc2r2pzyt6");
  CHECK(cid_form.to_string() == std::string("/p2p/") + kPeer);
}

TEST_CASE("IPv6 addresses print in the RFC 5952 canonical form") {
  const std::pair<const char*, const char*> cases[] = {
      {"/ip6/2001:0db8:0000:0000:0000:ff00:0042:8329", "/ip6/2001:db8::ff00:42:8329"},
      {"/ip6/2001:db8:0:1:1:1:1:1", "/ip6/2001:db8:0:1:1:1:1:1"},
      {"/ip6/1:0:0:2:0:0:0:3", "/ip6/1:0:0:2::3"},
      {"/ip6/1:0:0:2:3:0:0:4", "/ip6/1::2:3:0:0:4"},
      {"/ip6/0:0:0:0:0:0:0:0", "/ip6/::"},
      {"/ip6/1::", "/ip6/1::"},
      {"/ip6/FE80::ABCD", "/ip6/fe80::abcd"},
      {"/ip6/::ffff:1.2.3.4", "/ip6/::ffff:1.2.3.4"},
      {"/ip6/::ffff:0102:0304", "/ip6/::ffff:1.2.3.4"},
      {"/ip6/64:ff9b::192.0.2.33", "/ip6/64:ff9b::c000:221"},
  };
  for (auto [text, canonical] : cases) {
    CAPTURE(std::string(text));
    CHECK(parse_ok(text).to_string() == canonical);
  }
}

TEST_CASE("host, transport and port come from the address components") {
  Multiaddr address = parse_ok("/dns/cluster.example.org/tcp/9096");
  REQUIRE(address.host().has_value());
  CHECK(address.host()->protocol == Protocol::dns);
  CHECK(address.host()->value == "cluster.example.org");
  CHECK(address.transport() == Protocol::tcp);
  CHECK(address.port() == 9096);
  CHECK_FALSE(address.peer_id().has_value());

  Multiaddr udp = parse_ok("/ip6/::1/udp/65535/quic-v1");
  CHECK(udp.host()->protocol == Protocol::ip6);
  CHECK(udp.host()->value == "::1");
  CHECK(udp.transport() == Protocol::udp);
  CHECK(udp.port() == 65535);

  Multiaddr unix_socket = parse_ok("/unix/var/run/clusterpin.sock");
  CHECK(unix_socket.components().at(0).value == "/var/run/clusterpin.sock");
  CHECK_FALSE(unix_socket.host().has_value());
  CHECK_FALSE(unix_socket.port().has_value());
}

TEST_CASE("with_peer appends or replaces the /p2p component and without_peer drops it") {
  Multiaddr base = parse_ok("/ip4/127.0.0.1/tcp/9096");
  PeerId peer = PeerId::parse(kPeer).value();
  Multiaddr with = base.with_peer(peer);
  CHECK(with.to_string() == std::string("/ip4/127.0.0.1/tcp/9096/p2p/") + kPeer);
  CHECK(with.without_peer() == base);
  CHECK(base.without_peer() == base);
  PeerId other = PeerId::parse("QmYyQSo1c1Ym7orWxLYvCrM2EmxFTANf8wXmmE7DWjhx5N").value();
  Multiaddr replaced = with.with_peer(other);
  CHECK(replaced.to_string() == "/ip4/127.0.0.1/tcp/9096/p2p/QmYyQSo1c1Ym7orWxLYvCrM2EmxFTANf8wXmmE7DWjhx5N");
  CHECK(replaced.peer_id() == other);
  CHECK(Multiaddr::from_bytes(replaced.bytes()).value() == replaced);
}

TEST_CASE("multiaddrs compare and hash by bytes") {
  std::unordered_set<Multiaddr> set{parse_ok("/ip4/127.0.0.1/tcp/1"), parse_ok("/ip4/127.0.0.1/tcp/01/"),
                                    parse_ok("/ip4/127.0.0.1/tcp/2")};
  CHECK(set.size() == 2);
}

TEST_CASE("bad multiaddr text names the address and the component") {
  CHECK(error_of("/ip4/1.2.3/tcp/1").starts_with("multiaddr \"/ip4/1.2.3/tcp/1\": bad ip4 address \"1.2.3\""));
  CHECK(error_of("/ip4/1.2.3.256").find("bad ip4 address \"1.2.3.256\"") != std::string::npos);
  CHECK(error_of("/ip4/01.2.3.4").find("bad ip4 address") != std::string::npos);
  CHECK(error_of("/ip6/1:2:3").find("bad ip6 address \"1:2:3\"") != std::string::npos);
  CHECK(error_of("/ip6/1::2::3").find("bad ip6 address") != std::string::npos);
  CHECK(error_of("/ip6/1:2:3:4:5:6:7:8::").find("bad ip6 address") != std::string::npos);
  CHECK(error_of("/ip4/1.2.3.4/tcp/70000").find("bad tcp port \"70000\" (accepted: 0-65535)") != std::string::npos);
  CHECK(error_of("/ip4/1.2.3.4/udp/-1").find("bad udp port") != std::string::npos);
  CHECK(error_of("/ip4/1.2.3.4/tcp").find("missing value after /tcp") != std::string::npos);
  CHECK(error_of("/foo/1").find("unknown protocol \"foo\"") != std::string::npos);
  CHECK(error_of("ip4/1.2.3.4").find("must begin with '/'") != std::string::npos);
  CHECK(error_of("").find("empty") != std::string::npos);
  CHECK(error_of("/").find("no components") != std::string::npos);
  CHECK(error_of("/p2p/notapeer").find("bad peer id \"notapeer\"") != std::string::npos);
  CHECK(error_of("/ip4//tcp/1").find("empty value after /ip4") != std::string::npos);
}

TEST_CASE("bad multiaddr bytes are refused with the reason") {
  Result<Multiaddr> truncated = Multiaddr::from_bytes(hex_decode("047f0000").value());
  REQUIRE_FALSE(truncated.ok());
  CHECK(truncated.error().message.find("ip4 value needs 4 bytes") != std::string::npos);
  Result<Multiaddr> unknown = Multiaddr::from_bytes(hex_decode("ff01").value());
  REQUIRE_FALSE(unknown.ok());
  CHECK(unknown.error().message.find("unknown protocol code 0xff") != std::string::npos);
  Result<Multiaddr> slash = Multiaddr::from_bytes(hex_decode("3503612f62").value());
  REQUIRE_FALSE(slash.ok());
  CHECK(slash.error().message.find("without '/'") != std::string::npos);
  CHECK_FALSE(Multiaddr::from_bytes(Bytes{}).ok());
}
