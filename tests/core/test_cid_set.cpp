// CompactCidSet: every CID added is found, CIDs never added are not (at 2^-64 odds per query,
// far below what 200k queries could show), and sets keyed independently agree.
#include <doctest/doctest.h>

#include <random>
#include <vector>

#include "core/cid_set.hpp"

using namespace clusterpin;

namespace {

// CID-shaped bytes: a CIDv1 raw sha2-256 prefix and a random digest.
Bytes random_cid(std::mt19937_64& rng) {
  Bytes b{0x01, 0x55, 0x12, 0x20};
  for (int i = 0; i < 32; ++i) b.push_back(static_cast<std::uint8_t>(rng()));
  return b;
}

}  // namespace

TEST_CASE("a compact CID set finds what was added and nothing else") {
  std::mt19937_64 rng(9);
  std::vector<Bytes> in, out;
  for (int i = 0; i < 100'000; ++i) in.push_back(random_cid(rng));
  for (int i = 0; i < 100'000; ++i) out.push_back(random_cid(rng));
  CompactCidSet a, b;
  for (const auto& c : in) {
    a.add(c);
    b.add(c);
  }
  a.add(in.front());  // added twice: still found, counted as added
  a.seal();
  b.seal();
  CHECK(a.size() == in.size() + 1);
  std::size_t found_in = 0, found_out = 0;
  for (const auto& c : in) found_in += a.contains(c) && b.contains(c);
  for (const auto& c : out) found_out += a.contains(c) || b.contains(c);
  CHECK(found_in == in.size());
  CHECK(found_out == 0);
}

TEST_CASE("an empty compact CID set contains nothing") {
  CompactCidSet s;
  s.seal();
  std::mt19937_64 rng(1);
  CHECK_FALSE(s.contains(random_cid(rng)));
  CHECK_FALSE(s.contains(Bytes{}));
  CHECK(s.size() == 0);
}
