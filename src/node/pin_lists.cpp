// CID lists under a byte bound (see pin_lists.hpp).
#include "node/pin_lists.hpp"

#include <algorithm>

namespace clusterpin::node {

namespace {
// A CID's bytes and their varint length (at most 10 bytes).
std::size_t encoded_size(const Cid& cid) { return cid.bytes().size() + 10; }
}  // namespace

std::size_t cids_that_fit(const std::vector<Cid>& cids, std::size_t first, std::size_t max_bytes) {
  std::size_t last = first, bytes = 10;  // the count
  while (last < cids.size() && (last == first || bytes + encoded_size(cids[last]) <= max_bytes))
    bytes += encoded_size(cids[last++]);
  return last - first;
}

void write_cids(WireWriter& w, const std::vector<Cid>& cids, std::size_t first, std::size_t last) {
  w.u64(last - first);
  for (std::size_t i = first; i < last; ++i) w.bytes(cids[i].bytes());
}

std::string encode_touched(const std::vector<Cid>& touched, std::size_t max_bytes) {
  const std::size_t listed = cids_that_fit(touched, 0, max_bytes - 10);  // 10: the count after
  WireWriter w;
  write_cids(w, touched, 0, listed);
  w.u64(touched.size() - listed);
  return w.take();
}

std::optional<Touched> decode_touched(std::string_view answer) {
  WireReader reader(answer);
  Touched out;
  const std::uint64_t n = reader.u64();
  for (std::uint64_t i = 0; reader.ok() && i < n; ++i) {
    auto cid = Cid::from_bytes(as_bytes(reader.bytes()));
    if (!cid || !reader.ok()) return std::nullopt;
    out.listed.push_back(std::move(cid).value());
  }
  if (reader.ok() && !reader.at_end()) out.unlisted = reader.u64();
  if (!reader.ok() || !reader.at_end()) return std::nullopt;
  return out;
}

// After the list, a tag: 0 the member has no more, 1 it goes on after the last CID listed (some
// did not fit), 2 it goes on after the CID that follows.
std::string encode_leaving(const LeavingPage& page, std::size_t max_bytes) {
  const std::size_t tail = 10 + (page.resume ? encoded_size(*page.resume) : 0);
  const std::size_t listed = cids_that_fit(page.cids, 0, max_bytes > tail ? max_bytes - tail : 0);
  WireWriter w;
  write_cids(w, page.cids, 0, listed);
  if (listed < page.cids.size()) {
    w.u64(1);
  } else if (page.resume) {
    w.u64(2);
    w.bytes(page.resume->bytes());
  } else {
    w.u64(0);
  }
  return w.take();
}

std::optional<LeavingPage> decode_leaving(std::string_view answer) {
  WireReader reader(answer);
  LeavingPage out;
  const std::uint64_t n = reader.u64();
  for (std::uint64_t i = 0; reader.ok() && i < n; ++i) {
    auto cid = Cid::from_bytes(as_bytes(reader.bytes()));
    if (!cid || !reader.ok()) return std::nullopt;
    out.cids.push_back(std::move(cid).value());
  }
  const std::uint64_t tag = reader.u64();
  if (tag == 1 && !out.cids.empty()) {
    out.resume = out.cids.back();
  } else if (tag == 2) {
    auto cid = Cid::from_bytes(as_bytes(reader.bytes()));
    if (!cid) return std::nullopt;
    out.resume = std::move(cid).value();
  } else if (tag != 0) {
    return std::nullopt;
  }
  if (!reader.ok() || !reader.at_end()) return std::nullopt;
  return out;
}

LeavingRound merge_leaving(const std::vector<LeavingPage>& pages, const std::optional<Cid>& after,
                           std::size_t max) {
  std::optional<Cid> bound;
  for (const LeavingPage& page : pages) {
    if (!page.resume || (after && !(*after < *page.resume))) continue;
    if (!bound || *page.resume < *bound) bound = page.resume;
  }
  LeavingRound round;
  for (const LeavingPage& page : pages) {
    for (const Cid& cid : page.cids) {
      if (after && !(*after < cid)) continue;
      if (bound && *bound < cid) continue;
      round.cids.push_back(cid);
    }
  }
  std::sort(round.cids.begin(), round.cids.end());
  round.cids.erase(std::unique(round.cids.begin(), round.cids.end()), round.cids.end());
  if (max > 0 && round.cids.size() > max) {
    round.cids.erase(round.cids.begin() + static_cast<std::ptrdiff_t>(max), round.cids.end());
    round.next = round.cids.back();
  } else {
    round.next = bound;
  }
  return round;
}

}  // namespace clusterpin::node
