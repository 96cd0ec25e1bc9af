// The `meta(key TEXT PRIMARY KEY, value)` table that raft.db and state.db both carry: the schema
// version (refused when newer than this binary understands) and the cluster id, fixed once at
// bootstrap. Data written for one cluster is refused by a peer of another, with an error that
// says which cluster the data belongs to and how to reset (`clusterpin state cleanup`).
#pragma once

#include <optional>
#include <string>

#include "core/result.hpp"
#include "store/sqlite_connection.hpp"

namespace clusterpin::store {

// Creates the meta table and records `schema_version` when absent; refuses a newer version.
Status ensure_meta(Connection& db, int schema_version);
// Refuses a database whose stored schema version is newer than `schema_version` (read-only use).
Status check_schema_version(Connection& db, int schema_version);

Result<std::optional<std::string>> read_meta(Connection& db, const std::string& key);
Status write_meta(Connection& db, const std::string& key, const std::string& value);

// The stored cluster id; empty when none has been fixed yet.
Result<std::string> read_cluster_id(Connection& db);
// Fixes the cluster id once. Setting the same id again is fine; a different one is refused.
Status fix_cluster_id(Connection& db, const std::string& cluster_id);
// Refuses when a cluster id is stored and differs from `expected` (an empty `expected` accepts).
Status check_cluster_id(Connection& db, const std::string& expected);

// The refusal message, shared so every file says the same thing.
Error other_cluster_error(const std::string& file, const std::string& stored,
                          const std::string& expected);

}  // namespace clusterpin::store
