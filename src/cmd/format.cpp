// ctl-style text formats (see format.hpp).
#include "cmd/format.hpp"

#include <algorithm>
#include <cctype>
#include <vector>

#include <fmt/core.h>
#include <fmt/ranges.h>
#include <rapidjson/document.h>

namespace clusterpin::cmd {
namespace {

std::string str(const rapidjson::Value& v, const char* key) {
  if (!v.IsObject() || !v.HasMember(key) || !v[key].IsString()) return "";
  return v[key].GetString();
}

std::vector<std::string> strings(const rapidjson::Value& v, const char* key) {
  std::vector<std::string> out;
  if (v.IsObject() && v.HasMember(key) && v[key].IsArray()) {
    for (const auto& s : v[key].GetArray()) {
      if (s.IsString()) out.emplace_back(s.GetString());
    }
  }
  return out;
}

// "2026-11-24T01:29:54.123Z" -> "2026-11-24 01:29:54"
std::string short_time(const std::string& rfc3339) {
  if (rfc3339.size() < 19) return rfc3339;
  std::string out = rfc3339.substr(0, 19);
  out[10] = ' ';
  return out;
}

}  // namespace

std::string format_pin(std::string_view json) {
  rapidjson::Document d;
  d.Parse(json.data(), json.size());
  if (d.HasParseError() || !d.IsObject()) return std::string(json);
  auto integer = [&](const char* key, std::int64_t missing) {
    return d.HasMember(key) && d[key].IsInt64() ? d[key].GetInt64() : missing;
  };
  std::string type = str(d, "type");
  for (auto& c : type) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  if (str(d, "mode") == "direct") type += "-DIRECT";
  const std::int64_t rmin = integer("replication_factor_min", 0);
  const std::int64_t rmax = integer("replication_factor_max", 0);
  std::string repl;
  if (rmin == -1 && rmax == -1) {
    repl = "Repl. Factor: -1 | Allocations: [everywhere]";
  } else {
    // The list as ipfs-cluster-ctl prints it (Go's %s of a []string): "[a b]", sorted.
    auto allocations = strings(d, "allocations");
    std::sort(allocations.begin(), allocations.end());
    repl = fmt::format("Repl. Factor: {}--{} | Allocations: [{}]", rmin, rmax,
                       fmt::join(allocations, " "));
  }
  const std::int64_t depth = integer("max_depth", 0);
  std::string recursion = depth == 0    ? "Direct"
                          : depth == -1 ? "Recursive"
                                        : fmt::format("Recursive-{}", depth);
  bool metadata = d.HasMember("metadata") && d["metadata"].IsObject() && d["metadata"].MemberCount() > 0;
  auto is_zero = [](const std::string& t) { return t.empty() || t.rfind("0001-01-01T00:00:00", 0) == 0; };
  std::string expire = str(d, "expire_at");
  std::string added = str(d, "timestamp");
  return fmt::format("{} | {} | {} | {} | {} | Metadata: {} | Exp: {} | Added: {}", str(d, "cid"),
                     str(d, "name"), type, repl, recursion, metadata ? "yes" : "no",
                     is_zero(expire) ? "∞" : short_time(expire),
                     is_zero(added) ? "unknown" : short_time(added));
}

std::string format_global_info(std::string_view json) {
  rapidjson::Document d;
  d.Parse(json.data(), json.size());
  if (d.HasParseError() || !d.IsObject()) return std::string(json);
  std::string name = str(d, "name");
  std::string out = str(d, "cid") + (name.empty() ? "" : " | " + name) + ":";
  if (!d.HasMember("peer_map") || !d["peer_map"].IsObject()) return out;
  std::vector<std::pair<std::string, std::string>> lines;
  for (const auto& m : d["peer_map"].GetObject()) {
    const auto& info = m.value;
    std::string who = str(info, "peername");
    if (who.empty()) who = m.name.GetString();
    std::string status = str(info, "status");
    for (auto& c : status) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
    std::string error = str(info, "error");
    std::int64_t attempts = info.HasMember("attempt_count") && info["attempt_count"].IsInt64()
                                ? info["attempt_count"].GetInt64() : 0;
    bool priority = info.HasMember("priority_pin") && info["priority_pin"].IsBool() && info["priority_pin"].GetBool();
    lines.emplace_back(m.name.GetString(),
                       fmt::format("    > {:<20} : {}{} | {} | Attempts: {} | Priority: {}", who, status,
                                   error.empty() ? "" : ": " + error, str(info, "timestamp"),
                                   attempts, priority ? "true" : "false"));
  }
  // In peer id order, as ipfs-cluster-ctl sorts them, whatever names they show.
  std::sort(lines.begin(), lines.end());
  for (const auto& [id, line] : lines) out += "\n" + line;
  return out;
}

std::vector<std::string> cluster_errors_of(std::string_view json) {
  rapidjson::Document d;
  d.Parse(json.data(), json.size());
  std::vector<std::string> out;
  if (d.HasParseError() || !d.IsObject() || !d.HasMember("peer_map") || !d["peer_map"].IsObject()) return out;
  for (const auto& m : d["peer_map"].GetObject()) {
    if (str(m.value, "status") != "cluster_error") continue;
    std::string who = str(m.value, "peername");
    out.push_back(fmt::format("{}: {}", who.empty() ? m.name.GetString() : who, str(m.value, "error")));
  }
  return out;
}

std::string format_id(std::string_view json) {
  rapidjson::Document d;
  d.Parse(json.data(), json.size());
  if (d.HasParseError() || !d.IsObject()) return std::string(json);
  std::string out;
  std::string error = str(d, "error");
  if (!error.empty()) return fmt::format("{} | ERROR: {}", str(d, "id"), error);
  auto peers = strings(d, "cluster_peers");
  out += fmt::format("{} | {} | Sees {} other peers\n", str(d, "id"), str(d, "peername"),
                     peers.empty() ? 0 : peers.size() - 1);
  out += "  > Addresses:\n";
  for (const auto& a : strings(d, "addresses")) out += fmt::format("    - {}\n", a);
  if (d.HasMember("ipfs") && d["ipfs"].IsObject()) {
    const auto& ipfs = d["ipfs"];
    std::string ipfs_error = str(ipfs, "error");
    if (!ipfs_error.empty()) {
      out += fmt::format("  > IPFS ERROR: {}\n", ipfs_error);
    } else {
      out += fmt::format("  > IPFS: {}\n", str(ipfs, "id"));
      for (const auto& a : strings(ipfs, "addresses")) out += fmt::format("    - {}\n", a);
    }
  }
  if (!out.empty() && out.back() == '\n') out.pop_back();
  return out;
}

}  // namespace clusterpin::cmd
