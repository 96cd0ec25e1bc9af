// allocate(): keep valid current allocations, then user allocations, then candidates in their
// given rank with a per-CID hash breaking ties of unranked candidates.
#include "core/allocator.hpp"

#include <sodium.h>

#include <algorithm>

#include <fmt/core.h>
#include <fmt/ranges.h>

namespace clusterpin {
namespace {

bool contains(const std::vector<PeerId>& v, const PeerId& p) {
  return std::find(v.begin(), v.end(), p) != v.end();
}

std::string ids_text(const std::vector<PeerId>& v) {
  std::vector<std::string> out;
  for (const auto& p : v) out.push_back(p.to_string());
  return fmt::format("{}", fmt::join(out, ", "));
}

}  // namespace

Status check_replication(std::int64_t rmin, std::int64_t rmax) {
  if ((rmin == -1) != (rmax == -1)) {
    return make_error(fmt::format(
        "replication factors {}/{} mix -1 with a number; accepted: -1 for both (every peer), or "
        "1 <= min <= max", rmin, rmax));
  }
  if (rmin == -1) return {};
  if (rmin < 1 || rmax < 1) {
    return make_error(fmt::format(
        "replication factors {}/{} are not valid; accepted: -1 (every peer), or 1 <= min <= max",
        rmin, rmax));
  }
  if (rmin > rmax) {
    return make_error(fmt::format(
        "replication factor min {} is greater than max {}; accepted: 1 <= min <= max", rmin, rmax));
  }
  return {};
}

Result<std::vector<PeerId>> allocate(const Cid& cid, const AllocationRequest& req) {
  const AllocationRequest& r = req;
  if (auto s = check_replication(r.rmin, r.rmax); !s) return s.error();
  if (r.rmin == -1) return std::vector<PeerId>{};
  std::vector<PeerId> chosen;
  for (const auto& p : r.current) {
    if (contains(r.candidates, p) && !contains(chosen, p)) chosen.push_back(p);
  }
  auto want = static_cast<std::size_t>(r.rmax);
  auto need = static_cast<std::size_t>(r.rmin);
  if (chosen.size() >= want) {
    chosen.erase(chosen.begin() + static_cast<std::ptrdiff_t>(want), chosen.end());
    return chosen;
  }
  if (chosen.size() >= need && !r.current.empty()) return chosen;  // enough: keep it stable
  for (const auto& p : r.user_allocations) {
    if (chosen.size() < want && contains(r.candidates, p) && !contains(chosen, p)) chosen.push_back(p);
  }
  // Remaining candidates in hash order of (cid, peer): spreads CIDs when ranks are equal.
  struct Ranked {
    std::string key;
    PeerId peer;
  };
  std::vector<Ranked> rest;
  for (const auto& p : r.candidates) {
    if (contains(chosen, p)) continue;
    std::string key(cid.bytes().begin(), cid.bytes().end());
    key.append(p.bytes().begin(), p.bytes().end());
    unsigned char h[16];
    crypto_generichash(h, sizeof(h), reinterpret_cast<const unsigned char*>(key.data()), key.size(),
                       nullptr, 0);
    rest.push_back(Ranked{std::string(reinterpret_cast<char*>(h), sizeof(h)), p});
  }
  std::stable_sort(rest.begin(), rest.end(), [](const Ranked& a, const Ranked& b) { return a.key < b.key; });
  for (const Ranked& ranked : rest) {
    if (chosen.size() >= want) break;
    chosen.push_back(ranked.peer);
  }
  if (chosen.size() < need) {
    return make_error(fmt::format(
        "not enough peers to allocate {}: need at least {}, at most {}, have {} candidates ({})",
        cid.to_string(), r.rmin, r.rmax, r.candidates.size(), ids_text(r.candidates)));
  }
  return chosen;
}

}  // namespace clusterpin
