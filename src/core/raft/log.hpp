// The in-memory Raft log of one peer: entries (base, last] plus the index and term of the base
// (the last entry folded into a snapshot or dropped by compaction). It is bounded by compaction;
// durability is the store's job, driven by Ready. Indexes are contiguous by construction.
#pragma once

#include <cstddef>
#include <cstdint>
#include <deque>
#include <optional>
#include <vector>

#include "core/raft/types.hpp"

namespace clusterpin::raft {

class Log {
 public:
  Log() = default;
  // `entries` must be contiguous starting at base_index + 1.
  Log(Index base_index, Term base_term, std::vector<Entry> entries);

  Index base_index() const { return base_index_; }
  Term base_term() const { return base_term_; }
  Index first_index() const { return base_index_ + 1; }
  Index last_index() const { return base_index_ + entries_.size(); }
  Term last_term() const { return entries_.empty() ? base_term_ : entries_.back().term; }

  // Term of the entry at `index`, known for base..last; nullopt when compacted or beyond.
  std::optional<Term> term_at(Index index) const;
  bool matches(Index index, Term term) const;
  // Election restriction (Raft paper 5.4.1): a log ending at (index, term) is at least as
  // up to date as this one.
  bool is_behind_or_equal(Index index, Term term) const;

  const Entry& at(Index index) const;  // first..last
  // Entries [from, to] (clamped to the log), at most max_count of them and max_bytes of their
  // data (the first one whatever its size).
  std::vector<Entry> slice(Index from, Index to, std::size_t max_count,
                           std::size_t max_bytes = SIZE_MAX) const;

  void append(Entry entry);           // entry.index must be last + 1
  void truncate_from(Index index);    // drop [index, last]; index > base
  void compact_through(Index index);  // base becomes index (<= last)
  void reset(Index base_index, Term base_term);  // snapshot installed: nothing but the base

 private:
  Index base_index_ = 0;
  Term base_term_ = 0;
  std::deque<Entry> entries_;
};

}  // namespace clusterpin::raft
