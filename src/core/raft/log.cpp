// Log: index arithmetic over a deque whose front is base_index + 1. Asserts guard the callers'
// obligations (contiguity, never cutting below the base).
#include "core/raft/log.hpp"

#include <algorithm>
#include <cassert>

namespace clusterpin::raft {

Log::Log(Index base_index, Term base_term, std::vector<Entry> entries)
    : base_index_(base_index), base_term_(base_term) {
  for (auto& e : entries) append(std::move(e));
}

std::optional<Term> Log::term_at(Index index) const {
  if (index == base_index_) return base_term_;
  if (index < base_index_ || index > last_index()) return std::nullopt;
  return entries_[index - base_index_ - 1].term;
}

bool Log::matches(Index index, Term term) const {
  auto t = term_at(index);
  return t && *t == term;
}

bool Log::is_behind_or_equal(Index index, Term term) const {
  return term > last_term() || (term == last_term() && index >= last_index());
}

const Entry& Log::at(Index index) const {
  assert(index > base_index_ && index <= last_index() && "entry outside the in-memory log");
  return entries_[index - base_index_ - 1];
}

std::vector<Entry> Log::slice(Index from, Index to, std::size_t max_count,
                              std::size_t max_bytes) const {
  std::vector<Entry> out;
  from = std::max(from, first_index());
  to = std::min(to, last_index());
  std::size_t bytes = 0;
  for (Index i = from; i <= to && out.size() < max_count; ++i) {
    const Entry& e = at(i);
    if (!out.empty() && bytes + e.data.size() > max_bytes) break;
    bytes += e.data.size();
    out.push_back(e);
  }
  return out;
}

void Log::append(Entry entry) {
  // Contiguity is what lets index arithmetic replace a search.
  assert(entry.index == last_index() + 1 && "log entries must be contiguous");
  entries_.push_back(std::move(entry));
}

void Log::truncate_from(Index index) {
  // The base is part of a snapshot (committed state); it can never be replaced.
  assert(index > base_index_ && "cannot truncate into the snapshot");
  if (index > last_index()) return;
  entries_.erase(entries_.begin() + static_cast<std::ptrdiff_t>(index - base_index_ - 1),
                 entries_.end());
}

void Log::compact_through(Index index) {
  if (index <= base_index_) return;
  assert(index <= last_index() && "cannot compact past the last entry");
  base_term_ = at(index).term;
  entries_.erase(entries_.begin(),
                 entries_.begin() + static_cast<std::ptrdiff_t>(index - base_index_));
  base_index_ = index;
}

void Log::reset(Index base_index, Term base_term) {
  entries_.clear();
  base_index_ = base_index;
  base_term_ = base_term;
}

}  // namespace clusterpin::raft
