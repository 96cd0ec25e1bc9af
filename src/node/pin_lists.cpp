// CID lists under a byte bound (see pin_lists.hpp).
#include "node/pin_lists.hpp"

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

}  // namespace clusterpin::node
