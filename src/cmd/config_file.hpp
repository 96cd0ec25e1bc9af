// Reading and writing <config dir>/service.json on disk for the applets: atomic writes with mode
// 0600 (the file holds the private key and the cluster secret), and loading with every warning
// printed to stderr.
#pragma once

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

}  // namespace clusterpin::cmd
