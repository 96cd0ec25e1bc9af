// Multihash parsing and hashing: known digests of "abc" for each function and the errors for
// unsupported functions, wrong digest lengths and trailing bytes.
#include <doctest/doctest.h>

#include <string>

#include "core/encoding.hpp"
#include "core/multihash.hpp"

using namespace clusterpin;

namespace {
Bytes hex(std::string_view text) { return hex_decode(text).value(); }
}  // namespace

TEST_CASE("sha2-256, sha2-512 and blake2b-256 of abc match the FIPS 180 and RFC 7693 digests") {
  Multihash sha256 = Multihash::compute(HashFunction::sha2_256, to_bytes("abc"));
  CHECK(hex_encode(sha256.bytes()) == "1220ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
  Multihash sha512 = Multihash::compute(HashFunction::sha2_512, to_bytes("abc"));
  CHECK(hex_encode(sha512.digest()) ==
        "ddaf35a193617abacc417349ae20413112e6fa4e89a97ea20a9eeee64b55d39a2192992a274fc1a836ba3c23a3feebbd454d"
        "4423643ce80e2a9ac94fa54ca49f");
  CHECK(hex_encode(sha512.bytes()).starts_with("1340"));
  Multihash blake = Multihash::compute(HashFunction::blake2b_256, to_bytes("abc"));
  CHECK(hex_encode(blake.bytes()) == "a0e40220bddd813c634239723171ef3fee98579b94964e3bb1cb3e427262c8c068d52319");
  Multihash identity = Multihash::compute(HashFunction::identity, to_bytes("abc"));
  CHECK(hex_encode(identity.bytes()) == "0003616263");
}

TEST_CASE("a parsed multihash exposes its function and digest and re-encodes identically") {
  Bytes bytes = hex("1220ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
  Result<Multihash> hash = Multihash::from_bytes(bytes);
  REQUIRE(hash.ok());
  CHECK(hash->function() == HashFunction::sha2_256);
  CHECK(hash->digest().size() == 32);
  CHECK(hash->bytes() == bytes);
  CHECK(*hash == Multihash::compute(HashFunction::sha2_256, to_bytes("abc")));
  CHECK(*hash != Multihash::compute(HashFunction::sha2_256, to_bytes("abd")));
}

TEST_CASE("multihash parsing explains what is wrong") {
  Result<Multihash> unknown = Multihash::from_bytes(hex("1e0400000000"));
  REQUIRE_FALSE(unknown.ok());
  CHECK(unknown.error().message.starts_with("unsupported multihash function 0x1e"));

  Result<Multihash> truncated = Multihash::from_bytes(hex("1214ba7816bf8f01cfea414140de5dae2223b00361a3"));
  REQUIRE_FALSE(truncated.ok());
  CHECK(truncated.error().message.starts_with("digest length mismatch: sha2-256 digests are 32 bytes"));

  Result<Multihash> short_input = Multihash::from_bytes(hex("1220ba7816bf"));
  REQUIRE_FALSE(short_input.ok());
  CHECK(short_input.error().message.starts_with("digest length mismatch"));

  Result<Multihash> trailing = Multihash::from_bytes(hex("0002616263"));
  REQUIRE_FALSE(trailing.ok());
  CHECK(trailing.error().message.starts_with("trailing bytes"));

  Result<Multihash> bad_varint = Multihash::from_bytes(hex("92"));
  REQUIRE_FALSE(bad_varint.ok());
  CHECK(bad_varint.error().message.starts_with("bad varint"));
}

TEST_CASE("wrapping a digest checks its length against the function") {
  CHECK(Multihash::from_digest(HashFunction::sha2_256, Bytes(32, 7)).ok());
  Result<Multihash> wrong = Multihash::from_digest(HashFunction::sha2_512, Bytes(32, 7));
  REQUIRE_FALSE(wrong.ok());
  CHECK(wrong.error().message.starts_with("digest length mismatch: sha2-512 digests are 64 bytes"));
}
