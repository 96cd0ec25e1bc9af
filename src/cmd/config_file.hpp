// Reading and writing <config dir>/service.json on disk for the applets: atomic writes with mode
// 0600 (the file holds the private key and the cluster secret), and loading with every warning
// printed to stderr.
#pragma once

#include <optional>
#include <string>
#include <string_view>

#include "core/config.hpp"
#include "core/result.hpp"

namespace clusterpin::cmd {

std::string service_json_path(const std::string& config_dir);

// Writes the file through a temporary file and rename, mode 0600, creating the folder (0700).
Status write_config_file(const std::string& path, const ServiceConfig& config);

// Loads and checks service.json, printing warnings (unknown keys) to stderr.
Result<ServiceConfig> load_config_file(const std::string& path, const ConfigLoadOptions& options);

// Takes <config>/clusterpin.lock (flock, exclusive, non-blocking) and returns its descriptor,
// held until closed: one daemon, or one offline state tool, per config folder. When it is held,
// the error says so and ends with `why_stop` (why the caller needs the folder to itself).
Result<int> lock_config_dir(const std::string& dir, std::string_view why_stop);

// <config>/clusterpin.member holds the id of the cluster whose state this peer's data folder held:
// written once the daemon is READY, removed when the peer leaves its cluster or `state cleanup`
// resets it. It outlives a data folder that is lost (deleted, a new disk), so that a founder
// starting on an empty folder is not let found that cluster again as a voter that forgot its
// log and its votes (see Peer's start).
std::string member_file_path(const std::string& config_dir);
std::optional<std::string> read_member_of(const std::string& config_dir);
Status write_member_of(const std::string& config_dir, const std::string& cluster_id);
void forget_member_of(const std::string& config_dir);

}  // namespace clusterpin::cmd
