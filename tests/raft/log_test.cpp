// Unit tests of raft::Log: index arithmetic across compaction, truncation and snapshot reset,
// and the election restriction's "at least as up to date" comparison.
#include <doctest/doctest.h>

#include "core/raft/log.hpp"

namespace clusterpin::raft {
namespace {

std::vector<Entry> entries(Index from, Index to, Term term) {
  std::vector<Entry> out;
  for (Index i = from; i <= to; ++i) out.push_back(Entry{term, i, EntryType::Normal, "e"});
  return out;
}

TEST_CASE("log: terms are known from the base to the last entry only") {
  Log log(4, 2, entries(5, 8, 3));
  CHECK(log.first_index() == 5);
  CHECK(log.last_index() == 8);
  CHECK(log.term_at(4) == 2u);
  CHECK(log.term_at(6) == 3u);
  CHECK_FALSE(log.term_at(3).has_value());
  CHECK_FALSE(log.term_at(9).has_value());
}

TEST_CASE("log: compaction keeps the base term and later entries") {
  Log log(0, 0, entries(1, 10, 1));
  log.compact_through(6);
  CHECK(log.base_index() == 6);
  CHECK(log.term_at(6) == 1u);
  CHECK(log.slice(1, 100, 100).size() == 4);
  log.truncate_from(9);
  CHECK(log.last_index() == 8);
  log.reset(20, 4);
  CHECK(log.last_index() == 20);
  CHECK(log.last_term() == 4);
}

TEST_CASE("log: a log is up to date by last term first, then by length") {
  Log log(0, 0, entries(1, 5, 2));
  CHECK(log.is_behind_or_equal(5, 2));
  CHECK(log.is_behind_or_equal(1, 3));
  CHECK_FALSE(log.is_behind_or_equal(4, 2));
  CHECK_FALSE(log.is_behind_or_equal(9, 1));
}

TEST_CASE("log: slices respect the count limit") {
  Log log(0, 0, entries(1, 10, 1));
  auto s = log.slice(3, 10, 4);
  REQUIRE(s.size() == 4);
  CHECK(s.front().index == 3);
  CHECK(s.back().index == 6);
}

TEST_CASE("log: slices respect the byte limit and always hold one entry") {
  std::vector<Entry> big;
  for (Index i = 1; i <= 6; ++i) big.push_back(Entry{1, i, EntryType::Normal, std::string(100, 'x')});
  Log log(0, 0, big);
  auto s = log.slice(1, 6, 100, 250);  // 100 + 100 fit, a third would make 300
  REQUIRE(s.size() == 2);
  CHECK(s.back().index == 2);
  auto one = log.slice(3, 6, 100, 10);  // the first entry goes whatever its size
  REQUIRE(one.size() == 1);
  CHECK(one.front().index == 3);
  CHECK(log.slice(1, 6, 100).size() == 6);  // no byte limit by default
}

}  // namespace
}  // namespace clusterpin::raft
