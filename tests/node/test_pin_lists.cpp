// CID lists in peer-link messages stay under their byte bound: a "status" request names the CIDs
// that fit and the asker goes on from there; a "recover_all" answer lists what fits and counts
// the rest; earlier versions' answers (the list alone) still read; "leaving" answers say where
// each member goes on, and rounds merged from several members list each CID once, in order.
#define DOCTEST_CONFIG_IMPLEMENT_WITH_MAIN
#include <doctest/doctest.h>

#include <algorithm>
#include <optional>
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

namespace {

std::vector<Cid> sorted_cids(std::size_t n, std::size_t from = 0) {
  auto all = some_cids(from + n);
  std::vector<Cid> out(all.begin() + static_cast<std::ptrdiff_t>(from), all.end());
  std::sort(out.begin(), out.end());
  return out;
}

// A member's "leaving" answer from its sorted leaving CIDs: at most `page` of those after
// `after`, as its tracker would give them, through the wire under `max_bytes`.
LeavingPage member_answer(const std::vector<Cid>& leaving, const std::optional<Cid>& after,
                          std::size_t page, std::size_t max_bytes) {
  LeavingPage p;
  for (const Cid& cid : leaving) {
    if (after && !(*after < cid)) continue;
    if (p.cids.size() == page) {
      p.resume = p.cids.back();
      break;
    }
    p.cids.push_back(cid);
  }
  const std::string answer = encode_leaving(p, max_bytes);
  CHECK(answer.size() <= max_bytes);
  auto read = decode_leaving(answer);
  REQUIRE(read.has_value());
  return *read;
}

// Lists the leaving CIDs of `members` (each sorted) in rounds as GET /pins does; `rounds`
// counts them.
std::vector<Cid> list_leaving(const std::vector<std::vector<Cid>>& members, std::size_t page,
                              std::size_t max_bytes, std::size_t round_max, int& rounds) {
  std::vector<Cid> listed;
  std::optional<Cid> after;
  rounds = 0;
  while (true) {
    std::vector<LeavingPage> pages;
    for (const auto& m : members) pages.push_back(member_answer(m, after, page, max_bytes));
    LeavingRound round = merge_leaving(pages, after, round_max);
    ++rounds;
    CHECK(round.cids.size() <= round_max);
    CHECK(std::is_sorted(round.cids.begin(), round.cids.end()));
    listed.insert(listed.end(), round.cids.begin(), round.cids.end());
    if (!round.next) return listed;
    if (after) REQUIRE(*after < *round.next);  // every round moves on
    after = round.next;
    REQUIRE(rounds < 10000);
  }
}

}  // namespace

TEST_CASE("a leaving answer lists the CIDs that fit and says where the member goes on") {
  const auto cids = sorted_cids(2000);
  const std::size_t max_bytes = 16 * 1024;
  // More than fit: the list is cut and goes on after its last CID.
  auto cut = decode_leaving(encode_leaving(LeavingPage{cids, std::nullopt}, max_bytes));
  REQUIRE(cut.has_value());
  REQUIRE(cut->cids.size() > 100);
  CHECK(cut->cids.size() < cids.size());
  CHECK(std::equal(cut->cids.begin(), cut->cids.end(), cids.begin()));
  REQUIRE(cut->resume.has_value());
  CHECK(*cut->resume == cut->cids.back());
  CHECK(encode_leaving(LeavingPage{cids, cids.back()}, max_bytes).size() <= max_bytes);
  // All fit: the member's own resume, or none.
  const std::vector<Cid> few(cids.begin(), cids.begin() + 3);
  auto on = decode_leaving(encode_leaving(LeavingPage{few, cids[10]}, max_bytes));
  REQUIRE(on.has_value());
  CHECK(on->cids == few);
  CHECK(on->resume == std::optional<Cid>(cids[10]));
  auto done = decode_leaving(encode_leaving(LeavingPage{few, std::nullopt}, max_bytes));
  REQUIRE(done.has_value());
  CHECK(done->cids == few);
  CHECK_FALSE(done->resume.has_value());
  auto empty = decode_leaving(encode_leaving(LeavingPage{{}, cids[0]}, max_bytes));
  REQUIRE(empty.has_value());
  CHECK(empty->cids.empty());
  CHECK(empty->resume == std::optional<Cid>(cids[0]));
  // Cut or padded answers, and other methods' answers, do not read.
  const std::string answer = encode_leaving(LeavingPage{few, cids[10]}, max_bytes);
  CHECK_FALSE(decode_leaving(answer.substr(0, answer.size() - 2)).has_value());
  CHECK_FALSE(decode_leaving(answer + "\x01").has_value());
  CHECK_FALSE(decode_leaving(encode_touched(few, max_bytes) + "\x07").has_value());
  CHECK_FALSE(decode_leaving("").has_value());
}

TEST_CASE("leaving CIDs of several members are listed in rounds, sorted, each once") {
  // Three members with overlapping leaving CIDs: 0-399, 300-699 and every third of 0-899.
  const auto all = some_cids(900);
  std::vector<std::vector<Cid>> members(3);
  for (std::size_t i = 0; i < all.size(); ++i) {
    if (i < 400) members[0].push_back(all[i]);
    if (i >= 300 && i < 700) members[1].push_back(all[i]);
    if (i % 3 == 0) members[2].push_back(all[i]);
  }
  std::vector<Cid> expected;
  for (auto& m : members) {
    std::sort(m.begin(), m.end());
    expected.insert(expected.end(), m.begin(), m.end());
  }
  std::sort(expected.begin(), expected.end());
  expected.erase(std::unique(expected.begin(), expected.end()), expected.end());
  REQUIRE(expected.size() == 766);  // 0-699, and 702-897 by threes

  int rounds = 0;
  CHECK(list_leaving(members, 500, 512 * 1024, 500, rounds) == expected);
  CHECK(rounds == 2);
  // Small pages, rounds and frames: still each once, in order.
  CHECK(list_leaving(members, 7, 512 * 1024, 500, rounds) == expected);
  CHECK(list_leaving(members, 500, 512 * 1024, 11, rounds) == expected);
  CHECK(rounds >= static_cast<int>(expected.size() / 11));
  CHECK(list_leaving(members, 500, 1024, 500, rounds) == expected);
  // One member of none: nothing from it, the rest all the same.
  members.push_back({});
  CHECK(list_leaving(members, 13, 512 * 1024, 500, rounds) == expected);
}

TEST_CASE("a round takes the CIDs up to the lowest resume, and ignores one that does not move on") {
  const auto cids = sorted_cids(10);
  // Member a is complete; b goes on after cids[4]; c after cids[6].
  LeavingPage a{{cids[1], cids[5], cids[8]}, std::nullopt};
  LeavingPage b{{cids[0], cids[4]}, cids[4]};
  LeavingPage c{{cids[2]}, cids[6]};
  LeavingRound round = merge_leaving({a, b, c}, std::nullopt, 100);
  CHECK(round.cids == std::vector<Cid>{cids[0], cids[1], cids[2], cids[4]});
  CHECK(round.next == std::optional<Cid>(cids[4]));
  // From cids[4] on: what each lists past it.
  LeavingPage b2{{cids[7]}, std::nullopt};
  LeavingPage c2{{}, std::nullopt};
  round = merge_leaving({a, b2, c2}, cids[4], 100);
  CHECK(round.cids == std::vector<Cid>{cids[5], cids[7], cids[8]});
  CHECK_FALSE(round.next.has_value());
  // A resume at or before where the round starts would never move on: ignored.
  LeavingPage stuck{{}, cids[3]};
  round = merge_leaving({a, stuck}, cids[4], 100);
  CHECK(round.cids == std::vector<Cid>{cids[5], cids[8]});
  CHECK_FALSE(round.next.has_value());
  // At most `max`: the round ends at its last CID.
  round = merge_leaving({a, b, c}, std::nullopt, 3);
  CHECK(round.cids == std::vector<Cid>{cids[0], cids[1], cids[2]});
  CHECK(round.next == std::optional<Cid>(cids[2]));
  // Nobody has any.
  round = merge_leaving({}, std::nullopt, 3);
  CHECK(round.cids.empty());
  CHECK_FALSE(round.next.has_value());
}
