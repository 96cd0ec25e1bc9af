// allocate(): keep valid current allocations, then user allocations, then candidates in their
// given rank. balanced_order(): the ranking (see allocator.hpp).
#include "core/allocator.hpp"

#include <sodium.h>

#include <algorithm>
#include <map>

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

std::string cid_peer_hash(const Cid& cid, std::string_view salt) {
  std::string key(cid.bytes().begin(), cid.bytes().end());
  key.append(salt);
  unsigned char h[16];
  crypto_generichash(h, sizeof(h), reinterpret_cast<const unsigned char*>(key.data()), key.size(),
                     nullptr, 0);
  return std::string(reinterpret_cast<char*>(h), sizeof(h));
}

std::string peer_salt(const PeerId& p) { return std::string(p.bytes().begin(), p.bytes().end()); }

// Weight of a candidate at `level` (0 when the metric is missing).
std::int64_t weight_at(const CandidateMetrics& c, std::size_t level) {
  return level < c.metrics.size() ? c.metrics[level].weight : 0;
}

std::vector<const CandidateMetrics*> order_level(const Cid& cid,
                                                 std::vector<const CandidateMetrics*> peers,
                                                 std::size_t level, std::size_t levels) {
  if (level >= levels) {
    std::vector<std::pair<std::string, const CandidateMetrics*>> keyed;
    for (const auto* c : peers) keyed.emplace_back(cid_peer_hash(cid, peer_salt(c->peer)), c);
    std::sort(keyed.begin(), keyed.end(), [](const auto& a, const auto& b) { return a.first < b.first; });
    std::vector<const CandidateMetrics*> out;
    for (const auto& [key, c] : keyed) out.push_back(c);
    return out;
  }
  bool partitionable = std::any_of(peers.begin(), peers.end(), [&](const CandidateMetrics* c) {
    return level < c->metrics.size() && c->metrics[level].partitionable;
  });
  if (!partitionable) {
    // Highest weight first; equal weights keep the order of the next levels.
    auto next = order_level(cid, peers, level + 1, levels);
    std::stable_sort(next.begin(), next.end(), [&](const CandidateMetrics* a, const CandidateMetrics* b) {
      return weight_at(*a, level) > weight_at(*b, level);
    });
    return next;
  }
  struct Group {
    std::string value;
    std::int64_t weight = 0;  // total weight at the next level
    std::string tie;
    std::vector<const CandidateMetrics*> peers;
  };
  std::map<std::string, Group> groups;
  for (const auto* c : peers) {
    std::string value = level < c->metrics.size() ? c->metrics[level].value : std::string();
    Group& g = groups[value];
    g.value = value;
    g.weight += weight_at(*c, level + 1);
    g.peers.push_back(c);
  }
  std::vector<Group> ordered;
  for (auto& [value, g] : groups) {
    g.tie = cid_peer_hash(cid, "group " + value);
    g.peers = order_level(cid, std::move(g.peers), level + 1, levels);
    ordered.push_back(std::move(g));
  }
  std::sort(ordered.begin(), ordered.end(), [](const Group& a, const Group& b) {
    return a.weight != b.weight ? a.weight > b.weight : a.tie < b.tie;
  });
  std::vector<const CandidateMetrics*> out;
  for (std::size_t round = 0; out.size() < peers.size(); ++round) {
    for (const Group& g : ordered) {
      if (round < g.peers.size()) out.push_back(g.peers[round]);
    }
  }
  return out;
}

}  // namespace

std::vector<PeerId> balanced_order(const Cid& cid, const std::vector<CandidateMetrics>& candidates) {
  std::vector<const CandidateMetrics*> peers;
  std::size_t levels = 0;
  for (const auto& c : candidates) {
    peers.push_back(&c);
    levels = std::max(levels, c.metrics.size());
  }
  std::vector<PeerId> out;
  for (const auto* c : order_level(cid, std::move(peers), 0, levels)) out.push_back(c->peer);
  return out;
}

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
    if ((r.keep_current || contains(r.candidates, p)) && !contains(chosen, p)) chosen.push_back(p);
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
  for (const PeerId& p : r.candidates) {
    if (chosen.size() >= want) break;
    if (!contains(chosen, p)) chosen.push_back(p);
  }
  if (chosen.size() < need) {
    return make_error(fmt::format(
        "not enough peers to allocate {}: need at least {}, at most {}, have {} candidates ({})",
        cid.to_string(), r.rmin, r.rmax, r.candidates.size(), ids_text(r.candidates)));
  }
  return chosen;
}

}  // namespace clusterpin
