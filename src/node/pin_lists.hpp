// Lists of CIDs in peer-link messages, kept under a byte bound: a frame holds 1 MiB, and a
// recovery after an IPFS outage may touch millions of pins. The "status" request names the CIDs
// that fit (the asker asks again for the rest); a "recover_all" answer lists the touched CIDs
// that fit and counts the others.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "core/cid.hpp"
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

}  // namespace clusterpin::node
