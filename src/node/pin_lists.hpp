// Lists of CIDs in peer-link messages, kept under a byte bound: a frame holds 1 MiB, and a
// recovery after an IPFS outage may touch millions of pins. The "status" request names the CIDs
// that fit (the asker asks again for the rest); a "recover_all" answer lists the touched CIDs
// that fit and counts the others; a "leaving" answer lists the CIDs that fit and says where to
// ask on.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "core/cid.hpp"
#include "core/tracker.hpp"
#include "core/wire.hpp"

namespace clusterpin::node {

// How many of cids[first..] fit in max_bytes once encoded (WireWriter::bytes each), at least
// one if any is left.
std::size_t cids_that_fit(const std::vector<Cid>& cids, std::size_t first, std::size_t max_bytes);

// Appends cids[first, last) to w as a count and the CIDs' bytes.
void write_cids(WireWriter& w, const std::vector<Cid>& cids, std::size_t first, std::size_t last);

// A list of touched CIDs: those that fit in max_bytes, then how many were left out.
std::string encode_touched(const std::vector<Cid>& touched, std::size_t max_bytes);

struct Touched {
  std::vector<Cid> listed;
  std::uint64_t unlisted = 0;
};
// Reads encode_touched's answer, or an earlier version's (the list alone). Malformed: nullopt.
std::optional<Touched> decode_touched(std::string_view answer);

// A "leaving" answer: a member's CIDs that left the pinset and that it is still unpinning, after
// the CID asked (TrackerStore::load_leaving), those that fit in max_bytes. `resume` says where
// the member's list goes on: the last CID listed when some did not fit, the page's own resume,
// or nullopt when the member has no more.
using LeavingPage = TrackerStore::LeavingPage;
std::string encode_leaving(const LeavingPage& page, std::size_t max_bytes);
// Malformed: nullopt.
std::optional<LeavingPage> decode_leaving(std::string_view answer);

// One round of listing the leaving CIDs of several members: each page answered the same
// request (the CIDs after `after`) and lists that member's leaving CIDs completely up to its
// resume (all of them when it has none). The round holds, sorted and once each, the CIDs up to
// the lowest resume, where every page is complete, at most `max` of them (0: no bound); `next` is where the
// next round starts (nullopt: the listing is complete). A resume not past `after` (a broken
// answer) is ignored, so every round moves on.
struct LeavingRound {
  std::vector<Cid> cids;
  std::optional<Cid> next;
};
LeavingRound merge_leaving(const std::vector<LeavingPage>& pages, const std::optional<Cid>& after,
                           std::size_t max);

}  // namespace clusterpin::node
