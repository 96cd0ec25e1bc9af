// CompactCidSet (see cid_set.hpp).
#include "core/cid_set.hpp"

#include <sodium.h>

#include <algorithm>
#include <cassert>

#include "core/sodium_init.hpp"

namespace clusterpin {

CompactCidSet::CompactCidSet() {
  static_assert(sizeof(key_) == crypto_shorthash_KEYBYTES);
  initialize_sodium();
  randombytes_buf(key_.data(), key_.size());
}

std::uint64_t CompactCidSet::fingerprint(ByteView cid_bytes) const {
  unsigned char out[crypto_shorthash_BYTES];
  crypto_shorthash(out, cid_bytes.data(), cid_bytes.size(), key_.data());
  std::uint64_t v = 0;
  for (unsigned char b : out) v = (v << 8) | b;
  return v;
}

void CompactCidSet::add(ByteView cid_bytes) {
  assert(!sealed_ && "add() after seal()");
  const std::uint64_t f = fingerprint(cid_bytes);
  buckets_[f >> 56].push_back(f);
}

std::size_t CompactCidSet::size() const {
  std::size_t n = 0;
  for (const auto& bucket : buckets_) n += bucket.size();
  return n;
}

void CompactCidSet::seal() {
  for (auto& bucket : buckets_) {
    std::sort(bucket.begin(), bucket.end());
    bucket.shrink_to_fit();
  }
  sealed_ = true;
}

bool CompactCidSet::contains(ByteView cid_bytes) const {
  assert(sealed_ && "contains() before seal()");
  const std::uint64_t f = fingerprint(cid_bytes);
  const auto& bucket = buckets_[f >> 56];
  return std::binary_search(bucket.begin(), bucket.end(), f);
}

}  // namespace clusterpin
