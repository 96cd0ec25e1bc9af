// Peer ids and Ed25519 identities against the libp2p peer-ids spec vectors (the Ed25519 key pair
// 7e0830...fce27e, the sha2-256 id QmYyQSo1... and its CIDv1 form) and RFC 8032 test 1.
#include <doctest/doctest.h>

#include <string>
#include <unordered_set>

#include "core/encoding.hpp"
#include "core/identity.hpp"
#include "core/peer_id.hpp"

using namespace clusterpin;

namespace {

constexpr const char* kSpecPrivateKey =
    "080112407e0830617c4a7de83925dfb2694556b12936c477a0e1feb2e148ec9da60fee7d1ed1e8fae2c4a144b8be8fd4b47bf3d3b34b87"
    "1c3cacf6010f0e42d474fce27e";
constexpr const char* kSpecPublicKey = "080112201ed1e8fae2c4a144b8be8fd4b47bf3d3b34b871c3cacf6010f0e42d474fce27e";
constexpr const char* kSpecPeerId = "12D3KooWBtg3aaRMjxwedh83aGiUkwSxDwUZkzuJcfaqUmo7R3pq";

Bytes hex(std::string_view text) { return hex_decode(text).value(); }

Ed25519PublicKey spec_key() {
  Bytes bytes = hex(kSpecPublicKey);
  Ed25519PublicKey key;
  std::copy(bytes.begin() + 4, bytes.end(), key.begin());
  return key;
}

PeerId parse_ok(std::string_view text) {
  Result<PeerId> id = PeerId::parse(text);
  REQUIRE_MESSAGE(id.ok(), (id.ok() ? std::string() : id.error().message));
  return *id;
}

}  // namespace

TEST_CASE("an Ed25519 public key's peer id is the identity multihash of its protobuf") {
  CHECK(hex_encode(encode_ed25519_public_key_protobuf(spec_key())) == kSpecPublicKey);
  PeerId id = PeerId::from_ed25519_public_key(spec_key());
  CHECK(hex_encode(id.bytes()) == std::string("0024") + kSpecPublicKey);
  CHECK(id.to_string() == kSpecPeerId);
}

TEST_CASE("parsing a 12D3KooW id gives back the Ed25519 key") {
  PeerId id = parse_ok(kSpecPeerId);
  REQUIRE(id.ed25519_public_key().has_value());
  CHECK(*id.ed25519_public_key() == spec_key());
  CHECK(id == PeerId::from_ed25519_public_key(spec_key()));
}

TEST_CASE("the CIDv1 libp2p-key forms name the same peer") {
  PeerId id = parse_ok(kSpecPeerId);
  CHECK(id.to_cid_string() == "bafzaajaiaejcahwr5d5ofrfbis4l5d6uwr57hu5tjodrypfm6yaq6dsc2r2pzyt6");
  CHECK(parse_ok("bafzaajaiaejcahwr5d5ofrfbis4l5d6uwr57hu5tjodrypfm6yaq6dsc2r2pzyt6") == id);
  CHECK(parse_ok("k51qzi5uqu5dgy8qsq67hbz73jqkw87l3fgf4a91qb0d9b5173tir7n4vxk1oe") == id);
}

TEST_CASE("a sha2-256 peer id is accepted as an opaque id in both spec forms") {
  PeerId legacy = parse_ok("QmYyQSo1c1Ym7orWxLYvCrM2EmxFTANf8wXmmE7DWjhx5N");
  PeerId cid = parse_ok("bafzbeie5745rpv2m6tjyuugywy4d5ewrqgqqhfnf445he3omzpjbx5xqxe");
  CHECK(legacy == cid);
  CHECK(legacy.to_string() == "QmYyQSo1c1Ym7orWxLYvCrM2EmxFTANf8wXmmE7DWjhx5N");
  CHECK(legacy.to_cid_string() == "bafzbeie5745rpv2m6tjyuugywy4d5ewrqgqqhfnf445he3omzpjbx5xqxe");
  CHECK_FALSE(legacy.ed25519_public_key().has_value());
  std::unordered_set<PeerId> set{legacy, cid, parse_ok(kSpecPeerId)};
  CHECK(set.size() == 2);
}

TEST_CASE("bad peer ids are refused with the reason") {
  for (const char* text : {"", "12D3KooW", "QmYyQSo1c1Ym7orWxLYvCrM2EmxFTANf8wXmmE7DWjhx5", "hello",
                           "bafybeihdwdcefgh4dqkjv67uzcmw7ojee6xedzdetojuzjevtenxquvyku", "12D3KooW0"}) {
    CAPTURE(std::string(text));
    Result<PeerId> id = PeerId::parse(text);
    REQUIRE_FALSE(id.ok());
    CHECK(id.error().message.starts_with("bad peer id \""));
  }
  CHECK(PeerId::parse("1" + std::string(300, '2')).error().message.find("too long") != std::string::npos);
  // A dag-pb CID is not a peer id even though it parses as a CID.
  CHECK(PeerId::parse("bafybeihdwdcefgh4dqkjv67uzcmw7ojee6xedzdetojuzjevtenxquvyku").error().message.find(
            "libp2p-key") != std::string::npos);
  // sha2-512 multihashes are not peer ids.
  Bytes sha512(66, 0);
  sha512[0] = 0x13;
  sha512[1] = 0x40;
  CHECK_FALSE(PeerId::from_bytes(sha512).ok());
}

TEST_CASE("the spec's private key loads, derives the spec's peer id and saves back identically") {
  Bytes protobuf = hex(kSpecPrivateKey);
  std::string text = base64_encode(protobuf);
  CHECK(text == "CAESQH4IMGF8Sn3oOSXfsmlFVrEpNsR3oOH+suFI7J2mD+59HtHo+uLEoUS4vo/UtHvz07NLhxw8rPYBDw5C1HT84n4=");
  Result<Identity> identity = Identity::from_private_key_base64(text);
  REQUIRE_MESSAGE(identity.ok(), (identity.ok() ? std::string() : identity.error().message));
  CHECK(identity->public_key() == spec_key());
  CHECK(identity->peer_id().to_string() == kSpecPeerId);
  CHECK(identity->private_key_protobuf() == protobuf);
  CHECK(identity->private_key_base64() == text);
}

TEST_CASE("a private key whose public half does not match its seed is refused") {
  Bytes protobuf = hex(kSpecPrivateKey);
  protobuf.back() ^= 0x01;
  Result<Identity> identity = Identity::from_private_key_protobuf(protobuf);
  REQUIRE_FALSE(identity.ok());
  CHECK(identity.error().message.find("does not belong") != std::string::npos);
}

TEST_CASE("malformed private keys are refused with the reason") {
  CHECK(Identity::from_private_key_base64("not base64!").error().message.starts_with("bad private key: bad base64"));
  Result<Identity> rsa = Identity::from_private_key_protobuf(hex("080012020000"));
  REQUIRE_FALSE(rsa.ok());
  CHECK(rsa.error().message.find("08 01 12 40") != std::string::npos);
  Bytes short_key = hex(kSpecPrivateKey);
  short_key.pop_back();
  CHECK_FALSE(Identity::from_private_key_protobuf(short_key).ok());
}

TEST_CASE("the legacy 96-byte private key form is accepted when both public copies agree") {
  Bytes data = hex(kSpecPrivateKey);
  Bytes legacy = {0x08, 0x01, 0x12, 0x60};
  legacy.insert(legacy.end(), data.begin() + 4, data.end());
  legacy.insert(legacy.end(), data.end() - 32, data.end());
  Result<Identity> identity = Identity::from_private_key_protobuf(legacy);
  REQUIRE(identity.ok());
  CHECK(identity->peer_id().to_string() == kSpecPeerId);
  legacy.back() ^= 0x01;
  CHECK_FALSE(Identity::from_private_key_protobuf(legacy).ok());
}

TEST_CASE("generated identities are distinct and survive a save and load") {
  Identity a = Identity::generate();
  Identity b = Identity::generate();
  CHECK(a.peer_id() != b.peer_id());
  CHECK(a.peer_id().to_string().starts_with("12D3KooW"));
  Result<Identity> loaded = Identity::from_private_key_base64(a.private_key_base64());
  REQUIRE(loaded.ok());
  CHECK(loaded->peer_id() == a.peer_id());
}

TEST_CASE("signatures match RFC 8032 test 1 and verify only for the right key and message") {
  Ed25519Seed seed;
  Bytes seed_bytes = hex("9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60");
  std::copy(seed_bytes.begin(), seed_bytes.end(), seed.begin());
  Identity identity = Identity::from_seed(seed);
  CHECK(hex_encode(identity.public_key()) == "d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a");
  Ed25519Signature signature = identity.sign(Bytes{});
  CHECK(hex_encode(signature) ==
        "e5564300c360ac729086e2cc806e828a84877f1eb8e5d974d873e065224901555fb8821590a33bacc61e39701cf9b46bd25bf5f0595b"
        "be24655141438e7a100b");
  CHECK(verify_signature(identity.public_key(), Bytes{}, signature));
  CHECK_FALSE(verify_signature(identity.public_key(), to_bytes("x"), signature));
  CHECK_FALSE(verify_signature(Identity::generate().public_key(), Bytes{}, signature));
  signature[0] ^= 0x01;
  CHECK_FALSE(verify_signature(identity.public_key(), Bytes{}, signature));
}
