// A set of CIDs for membership tests over very large listings (IPFS's pin/ls of every pin):
// each CID is kept as a 64-bit SipHash fingerprint under a key drawn at construction, 8-16
// bytes per CID instead of the ~100 a set of CID byte strings costs (10M listed pins: 80-160 MB
// instead of ~1 GB). A CID that was not added reads as present only if its fingerprint
// collides with one that was: odds of about size()/2^64 per query, not steerable from outside
// because the key is secret.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <vector>

#include "core/bytes.hpp"

namespace clusterpin {

class CompactCidSet {
 public:
  CompactCidSet();

  void add(ByteView cid_bytes);
  // Sorts what was added; call once after the last add() and before contains().
  void seal();
  bool contains(ByteView cid_bytes) const;
  std::size_t size() const;

 private:
  std::uint64_t fingerprint(ByteView cid_bytes) const;

  std::array<unsigned char, 16> key_{};
  // 256 buckets by the fingerprint's top byte: no single huge vector to reallocate (and hold
  // twice) while a listing of millions arrives.
  std::array<std::vector<std::uint64_t>, 256> buckets_;
  bool sealed_ = false;
};

}  // namespace clusterpin
