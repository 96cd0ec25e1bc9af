// CIDs against the multiformats CID spec examples and other published CIDs: v0/v1 parsing,
// printing in each base, equality by bytes, hashing, and an explanation for each refusal.
#include <doctest/doctest.h>

#include <algorithm>
#include <map>
#include <ranges>
#include <random>
#include <set>
#include <string>
#include <unordered_set>
#include <utility>
#include <vector>

#include "core/cid.hpp"
#include "core/encoding.hpp"

using namespace clusterpin;

namespace {

constexpr const char* kV0 = "QmdfTbBqBPQ7VNxZEYEj14VmRuZBkqFbiwReogJgS1zR1n";
constexpr const char* kV1 = "bafybeihdwdcefgh4dqkjv67uzcmw7ojee6xedzdetojuzjevtenxquvyku";
constexpr const char* kEmptyDigest = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";

Cid parse_ok(std::string_view text) {
  Result<Cid> cid = Cid::parse(text);
  REQUIRE_MESSAGE(cid.ok(), (cid.ok() ? std::string() : cid.error().message));
  return *cid;
}

std::string error_of(std::string_view text) {
  Result<Cid> cid = Cid::parse(text);
  REQUIRE_FALSE(cid.ok());
  return cid.error().message;
}

}  // namespace

TEST_CASE("a CIDv0 parses as a dag-pb sha2-256 multihash and prints back unchanged") {
  Cid cid = parse_ok(kV0);
  CHECK(cid.version() == 0);
  CHECK(cid.codec() == Codec::dag_pb);
  CHECK(cid.multihash().function() == HashFunction::sha2_256);
  CHECK(hex_encode(cid.multihash().digest()) == kEmptyDigest);
  CHECK(hex_encode(cid.bytes()) == std::string("1220") + kEmptyDigest);
  CHECK(cid.to_string() == kV0);
}

TEST_CASE("the spec's CIDv0 converts to the spec's base32 CIDv1") {
  Cid v1 = parse_ok(kV0).to_v1();
  CHECK(v1.version() == 1);
  CHECK(v1.to_string() == kV1);
  CHECK(v1 == parse_ok(kV1));
  CHECK(v1 != parse_ok(kV0));  // different binary forms are different keys
}

TEST_CASE("a CIDv1 prints in every supported base and each text parses to the same Cid") {
  Cid cid = parse_ok(kV1);
  CHECK(cid.to_string(Multibase::base32).value() == kV1);
  CHECK(cid.to_string(Multibase::base58btc).value() == "zdj7Wkkhxcu2rsiN6GUyHCLsSLL47kdUNfjbFqBUUhMFTZKBi");
  CHECK(cid.to_string(Multibase::base36).value() == "k2jmtxx1epa2wl096hsbpuhrz9xhppklonehzwkmskc9rmeb51kwn4ut");
  CHECK(cid.to_string(Multibase::base16).value() == std::string("f01701220") + kEmptyDigest);
  for (Multibase base : {Multibase::base58btc, Multibase::base36, Multibase::base16}) {
    Cid again = parse_ok(cid.to_string(base).value());
    CHECK(again == cid);
    CHECK(std::hash<Cid>{}(again) == std::hash<Cid>{}(cid));
    CHECK(again.to_string() == kV1);  // the default text is base32 whatever the input base
  }
  CHECK(parse_ok("BAFYBEIHDWDCEFGH4DQKJV67UZCMW7OJEE6XEDZDETOJUZJEVTENXQUVYKU") == cid);
}

TEST_CASE("append_text adds the CID's text after what the string already holds") {
  for (const char* text : {kV0, kV1}) {
    std::string out = "prefix:";
    parse_ok(text).append_text(out);
    CHECK(out == std::string("prefix:") + text);
  }
  std::string twice;
  parse_ok(kV1).append_text(twice);
  parse_ok(kV1).append_text(twice);
  CHECK(twice == std::string(kV1) + kV1);
}

TEST_CASE("a raw CIDv1 in base58btc equals its base32 form") {
  Cid z = parse_ok("zb2rhe5P4gXftAwvA4eXQ5HJwsER2owDyS9sKaQRRVQPn93bA");
  Cid b = parse_ok("bafkreidon73zkcrwdb5iafqtijxildoonbwnpv7dyd6ef3qdgads2jc4su");
  CHECK(z == b);
  CHECK(z.codec() == Codec::raw);
  CHECK(hex_encode(z.multihash().digest()) == "6e6ff7950a36187a801613426e858dce686cd7d7e3c0fc42ee0330072d245c95");
  CHECK(z.to_string() == "bafkreidon73zkcrwdb5iafqtijxildoonbwnpv7dyd6ef3qdgads2jc4su");
}

TEST_CASE("the spec's decoding example has the stated parts") {
  Cid cid = parse_ok("bafybeigdyrzt5sfp7udm7hu76uh7y26nf3efuylqabf3oclgtqy55fbzdi");
  CHECK(cid.version() == 1);
  CHECK(cid.codec() == Codec::dag_pb);
  CHECK(hex_encode(cid.multihash().digest()) == "c3c4733ec8affd06cf9e9ff50ffc6bcd2ec85a6170004bb709669c31de94391a");
  CHECK(cid.to_string() == "bafybeigdyrzt5sfp7udm7hu76uh7y26nf3efuylqabf3oclgtqy55fbzdi");
}

TEST_CASE("from_content hashes with sha2-256 under the given codec") {
  CHECK(Cid::from_content(Codec::raw, Bytes{}).to_string() ==
        "bafkreihdwdcefgh4dqkjv67uzcmw7ojee6xedzdetojuzjevtenxquvyku");
  CHECK(Cid::from_content(Codec::raw, to_bytes("hello world")).to_string() ==
        "bafkreifzjut3te2nhyekklss27nh3k72ysco7y32koao5eei66wof36n5e");
  Cid cbor = Cid::from_content(Codec::dag_cbor, to_bytes("abc"));
  CHECK(cbor.to_string() == "bafyreif2pall7dybz7vecqka3zo24irdwabwdi4wc55jznaq75q7eaavvu");
  Cid json = Cid::from_content(Codec::dag_json, to_bytes("abc"));
  CHECK(json.to_string() == "baguqeeraxj4bnp4pahh6uqkbidpf3lrceoyagyndsylxvhfucd7wd4qacwwq");
  CHECK(parse_ok(json.to_string()).codec() == Codec::dag_json);
}

TEST_CASE("a CIDv1 with a blake2b-256 multihash parses") {
  Cid cid = parse_ok("bafk2bzacec653aj4mnbds4rrohxt73uyk6nzjfsohoy4wpscojrmrqdi2urrs");
  CHECK(cid.multihash() == Multihash::compute(HashFunction::blake2b_256, to_bytes("abc")));
}

TEST_CASE("binary CIDs round-trip through from_bytes") {
  for (const char* text : {kV0, kV1, "bafkreidon73zkcrwdb5iafqtijxildoonbwnpv7dyd6ef3qdgads2jc4su"}) {
    Cid cid = parse_ok(text);
    Result<Cid> again = Cid::from_bytes(cid.bytes());
    REQUIRE(again.ok());
    CHECK(*again == cid);
    CHECK(again->to_string() == cid.to_string());
  }
}

TEST_CASE("Cids order and hash by bytes so they work as keys") {
  std::unordered_set<Cid> set{parse_ok(kV1), parse_ok("zdj7Wkkhxcu2rsiN6GUyHCLsSLL47kdUNfjbFqBUUhMFTZKBi"),
                              parse_ok(kV0)};
  CHECK(set.size() == 2);
  Cid a = Cid::from_content(Codec::raw, to_bytes("a"));
  Cid b = Cid::from_content(Codec::raw, to_bytes("b"));
  CHECK((a < b) == std::ranges::lexicographical_compare(a.bytes(), b.bytes()));
}

TEST_CASE("Cids kept inline and on the heap copy, move and assign to equal values") {
  // Identity digests of 1..80 bytes give CIDs of 5..84 bytes: both sides of the inline limit.
  std::vector<Cid> made;
  for (std::size_t n = 1; n <= 80; ++n) {
    Bytes digest(n);
    for (std::size_t i = 0; i < n; ++i) digest[i] = static_cast<std::uint8_t>(n * 31 + i);
    made.push_back(Cid::v1(Codec::raw, Multihash::compute(HashFunction::identity, digest)));
  }
  made.push_back(parse_ok(kV0));
  made.push_back(parse_ok(kV1));
  for (const Cid& original : made) {
    const std::string text = original.to_string();
    CAPTURE(text);
    Cid copy = original;
    CHECK(copy == original);
    CHECK(copy.bytes().data() != original.bytes().data());
    Cid moved = std::move(copy);
    CHECK(moved == original);
    CHECK(moved.to_string() == text);
    CHECK(moved.version() == original.version());
    CHECK(moved.codec() == original.codec());
    CHECK(moved.multihash() == original.multihash());
    Cid assigned = made.front();
    assigned = original;
    CHECK(assigned == original);
    assigned = std::move(moved);
    CHECK(assigned == original);
    moved = assigned;  // a moved-from Cid takes a new value
    CHECK(moved == original);
    Cid& same = assigned;
    assigned = same;
    CHECK(assigned == original);
    CHECK(Cid::from_bytes(original.bytes()).value() == original);
  }
  std::vector<Cid> grown;  // vector growth moves every element, inline or not
  for (int round = 0; round < 3; ++round) grown.insert(grown.end(), made.begin(), made.end());
  for (std::size_t i = 0; i < grown.size(); ++i) CHECK(grown[i] == made[i % made.size()]);
}

TEST_CASE("Cids order by their bytes, a prefix first, as SQLite orders the stored keys") {
  std::vector<Cid> cids;
  std::mt19937 rng(7);
  for (int i = 0; i < 300; ++i) {
    Bytes digest(rng() % 50 + 1);
    for (auto& b : digest) b = static_cast<std::uint8_t>(rng() % 3 * 127);  // many shared prefixes
    cids.push_back(Cid::v1(i % 2 ? Codec::raw : Codec::dag_pb, Multihash::compute(HashFunction::identity, digest)));
  }
  for (const Cid& a : cids) {
    for (const Cid& b : cids) {
      const bool by_bytes = std::ranges::lexicographical_compare(a.bytes(), b.bytes());
      REQUIRE((a < b) == by_bytes);
      REQUIRE((a == b) == std::ranges::equal(a.bytes(), b.bytes()));
    }
  }
  std::map<Cid, int> ordered;
  for (const Cid& c : cids) ordered.emplace(c, 0);
  CHECK(std::ranges::is_sorted(ordered | std::views::keys, [](const Cid& a, const Cid& b) {
    return std::ranges::lexicographical_compare(a.bytes(), b.bytes());
  }));
}

TEST_CASE("a CIDv0 refuses other bases instead of silently changing version") {
  Result<std::string> text = parse_ok(kV0).to_string(Multibase::base32);
  REQUIRE_FALSE(text.ok());
  CHECK(text.error().message.find("only the base58btc") != std::string::npos);
  CHECK(parse_ok(kV0).to_string(Multibase::base58btc).value() == kV0);
}

TEST_CASE("CID parsing says why a text is refused") {
  CHECK(error_of("") == "bad CID \"\": empty string");
  CHECK(error_of("xafy").find("unknown multibase prefix 'x'") != std::string::npos);
  CHECK(error_of("z" + std::string(5000, '2')).find("too long") != std::string::npos);
  CHECK(error_of("QmdfTbBqBPQ7VNxZ").find("a CIDv0 (\"Qm...\") is 46 characters, this is 16") != std::string::npos);
  // version 2
  CHECK(error_of("f02701220" + std::string(kEmptyDigest)).find("bad CID version 2") != std::string::npos);
  // version 0 in binary is not a CIDv1
  CHECK(error_of("f00701220" + std::string(kEmptyDigest)).find("bad CID version 0") != std::string::npos);
  // git-raw codec 0x78
  CHECK(error_of("f01781220" + std::string(kEmptyDigest)).find("unsupported codec 0x78") != std::string::npos);
  // sha2-256 declared 31 bytes
  CHECK(error_of("f0170121f" + std::string(kEmptyDigest).substr(2)).find("digest length mismatch") !=
        std::string::npos);
  // digest cut short
  CHECK(error_of("f01701220e3b0c442").find("digest length mismatch") != std::string::npos);
  CHECK(error_of("f01701220" + std::string(kEmptyDigest) + "00").find("trailing bytes") != std::string::npos);
  // a varint that never ends
  CHECK(error_of("f0180").find("bad varint") != std::string::npos);
  // a CIDv0 with one character changed into a non-base58 one
  CHECK(error_of("QmdfTbBqBPQ7VNxZEYEj14VmRuZBkqFbiwReogJgS1zR10").find("base58btc") != std::string::npos);
}

TEST_CASE("hash_bytes depends on every byte and on the length, and fills buckets evenly") {
  std::set<std::size_t> seen;
  Bytes zeros;
  for (int len = 0; len <= 40; ++len, zeros.push_back(0)) seen.insert(hash_bytes(zeros));
  CHECK(seen.size() == 41);
  const Cid v1 = parse_ok(kV1);
  Bytes base(v1.bytes().begin(), v1.bytes().end());
  seen = {hash_bytes(base)};
  for (std::size_t i = 0; i < base.size(); ++i) {
    Bytes flipped = base;
    flipped[i] ^= 1;
    seen.insert(hash_bytes(flipped));
  }
  CHECK(seen.size() == base.size() + 1);
  // 4096 CIDs over 1024 buckets (the low bits, as a hash table uses them): random placement
  // leaves about 19 empty.
  std::set<std::size_t> buckets;
  for (int i = 0; i < 4096; ++i) {
    Cid c = Cid::from_content(Codec::raw, as_bytes(std::to_string(i)));
    buckets.insert(hash_bytes(c.bytes()) % 1024);
  }
  CHECK(buckets.size() >= 980);
}
