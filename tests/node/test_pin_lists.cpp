// CID lists in peer-link messages stay under their byte bound: a "status" request names the CIDs
// that fit and the asker goes on from there; a "recover_all" answer lists what fits and counts
// the rest; earlier versions' answers (the list alone) still read.
#define DOCTEST_CONFIG_IMPLEMENT_WITH_MAIN
#include <doctest/doctest.h>

#include <string>
#include <vector>

#include "node/pin_lists.hpp"

using namespace clusterpin;
using namespace clusterpin::node;

namespace {

std::vector<Cid> some_cids(std::size_t n) {
  std::vector<Cid> out;
  for (std::size_t i = 0; i < n; ++i) {
    std::string content = "content " + std::to_string(i);
    out.push_back(Cid::from_content(Codec::raw, as_bytes(content)));
  }
  return out;
}

}  // namespace

TEST_CASE("a status request names the CIDs that fit, and asking on from there covers all once") {
  const auto cids = some_cids(5000);
  const std::size_t max_bytes = 16 * 1024;
  std::vector<Cid> asked;
  std::size_t first = 0, requests = 0;
  while (first < cids.size()) {
    const std::size_t n = cids_that_fit(cids, first, max_bytes);
    REQUIRE(n >= 1);
    WireWriter w;
    write_cids(w, cids, first, first + n);
    const std::string message = w.take();
    CHECK(message.size() <= max_bytes);
    WireReader reader(message);
    const std::uint64_t count = reader.u64();
    REQUIRE(count == n);
    for (std::uint64_t i = 0; i < count; ++i) asked.push_back(*Cid::from_bytes(as_bytes(reader.bytes())));
    CHECK((reader.ok() && reader.at_end()));
    first += n;
    ++requests;
  }
  CHECK(asked == cids);
  CHECK(requests > 1);  // 5000 CIDs of 36 bytes do not fit in 16 KiB
}

TEST_CASE("one CID is always named even if it alone is over the bound") {
  const auto cids = some_cids(3);
  CHECK(cids_that_fit(cids, 0, 1) == 1);
  CHECK(cids_that_fit(cids, 2, 1) == 1);
  CHECK(cids_that_fit(cids, 3, 1 << 20) == 0);
}

TEST_CASE("a recover answer lists the touched CIDs that fit and counts the others") {
  const auto touched = some_cids(20000);
  const std::size_t max_bytes = 512 * 1024;
  const std::string answer = encode_touched(touched, max_bytes);
  CHECK(answer.size() <= max_bytes);
  auto read = decode_touched(answer);
  REQUIRE(read.has_value());
  REQUIRE(read->listed.size() > 10000);
  CHECK(read->listed.size() < touched.size());
  CHECK(read->listed.size() + read->unlisted == touched.size());
  CHECK(std::equal(read->listed.begin(), read->listed.end(), touched.begin()));

  auto all = decode_touched(encode_touched(some_cids(10), max_bytes));
  REQUIRE(all.has_value());
  CHECK(all->listed == some_cids(10));
  CHECK(all->unlisted == 0);
  auto none = decode_touched(encode_touched({}, max_bytes));
  REQUIRE(none.has_value());
  CHECK(none->listed.empty());
}

TEST_CASE("an earlier version's recover answer (the list alone) reads, a cut one does not") {
  const auto cids = some_cids(4);
  WireWriter w;
  write_cids(w, cids, 0, cids.size());
  const std::string old = w.take();
  auto read = decode_touched(old);
  REQUIRE(read.has_value());
  CHECK(read->listed == cids);
  CHECK(read->unlisted == 0);
  CHECK_FALSE(decode_touched(old.substr(0, old.size() - 3)).has_value());
  CHECK_FALSE(decode_touched(old + "\x01\x02").has_value());
}
