// Human-readable JSON backups of the pinset in <config dir>/backups/, written at clean shutdown
// and before `state cleanup`/`state import` move a data folder aside. A backup file appears whole
// or not at all (temp file, fsync, rename, fsync of the folder); at most `rotate` are kept.
#pragma once

#include <filesystem>
#include <string_view>
#include <vector>

#include "core/result.hpp"
#include "store/state_db.hpp"

namespace clusterpin::node {

// Writes <config_dir>/backups/pinset-<UTC time>.json:
//   {"cluster_id": "...", "applied_index": N, "pins": [
//   <one pin_to_json object a line>
//   ]}
// streaming the pins from `reader` (never all in memory), then deletes the oldest
// pinset-*.json files beyond `rotate` (values below 1 keep just this one). Returns the new file.
Result<std::filesystem::path> write_backup(const std::filesystem::path& config_dir,
                                           store::StateReader& reader, std::string_view cluster_id,
                                           int rotate);

// <config_dir>/backups: where the JSON backups go.
std::filesystem::path backups_folder(const std::filesystem::path& config_dir);
// <data_dir>.old.<n>: where move_data_aside puts the data folder (0 the newest).
std::filesystem::path old_folder(const std::filesystem::path& data_dir, int n);

// The backup files in <config_dir>/backups/, oldest first.
std::vector<std::filesystem::path> list_backups(const std::filesystem::path& config_dir);

// Resets a peer's data folder: writes a JSON backup of its state (if any; skipped, with a
// warning in the line returned, when state.db cannot be opened or read), then renames the
// folder to <data>.old.0, shifting <data>.old.N up and dropping those beyond `rotate`. Returns a
// line saying what was done (empty when there was no data folder). The stores must be closed.
Result<std::string> move_data_aside(const std::filesystem::path& config_dir,
                                    const std::filesystem::path& data_dir, int rotate);

}  // namespace clusterpin::node
