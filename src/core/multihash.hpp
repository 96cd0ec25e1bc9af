// Multihash: a digest tagged with the hash function that made it (varint code, varint length,
// digest). A Multihash always holds a well-formed value of a supported function whose digest
// length is the function's full size (identity digests may have any length).
#pragma once

#include <compare>
#include <cstdint>
#include <string_view>

#include "core/bytes.hpp"
#include "core/result.hpp"

namespace clusterpin {

enum class HashFunction : std::uint64_t {
  identity = 0x00,
  sha2_256 = 0x12,
  sha2_512 = 0x13,
  blake2b_256 = 0xb220,
};

std::string_view hash_function_name(HashFunction function);

class Multihash {
 public:
  // Parses exactly one multihash; bytes after it are an error ("trailing bytes").
  static Result<Multihash> from_bytes(ByteView bytes);
  // Wraps an existing digest; its length must fit the function.
  static Result<Multihash> from_digest(HashFunction function, ByteView digest);
  // Hashes data (identity copies it).
  static Multihash compute(HashFunction function, ByteView data);

  HashFunction function() const { return function_; }
  ByteView digest() const { return ByteView(bytes_).subspan(digest_offset_); }
  const Bytes& bytes() const { return bytes_; }

  friend bool operator==(const Multihash& a, const Multihash& b) { return a.bytes_ == b.bytes_; }
  friend std::strong_ordering operator<=>(const Multihash& a, const Multihash& b) {
    return a.bytes_ <=> b.bytes_;
  }

 private:
  Multihash(HashFunction function, Bytes bytes, std::size_t digest_offset)
      : function_(function), bytes_(std::move(bytes)), digest_offset_(digest_offset) {}

  HashFunction function_;
  Bytes bytes_;  // the whole binary multihash
  std::size_t digest_offset_;
};

}  // namespace clusterpin
