// meta table access shared by raft.db and state.db (see store_meta.hpp). Values are stored as
// text; the few numeric ones (schema_version, applied_index) are parsed strictly on read.
#include "store/store_meta.hpp"

#include <charconv>

#include <fmt/format.h>

namespace clusterpin::store {

namespace {
constexpr const char* kSchemaVersion = "schema_version";
constexpr const char* kClusterId = "cluster_id";
}  // namespace

Status ensure_meta(Connection& db, int schema_version) {
  if (Status s =
          db.exec("CREATE TABLE IF NOT EXISTS meta(key TEXT PRIMARY KEY, value) WITHOUT ROWID");
      !s)
    return s;
  auto stored = read_meta(db, kSchemaVersion);
  if (!stored) return stored.error();
  if (!stored->has_value()) return write_meta(db, kSchemaVersion, std::to_string(schema_version));
  return check_schema_version(db, schema_version);
}

Status check_schema_version(Connection& db, int schema_version) {
  auto stored = read_meta(db, kSchemaVersion);
  if (!stored) return stored.error();
  if (!stored->has_value())
    return make_error(fmt::format("{}: no schema_version in table meta", db.path()));
  const std::string& text = **stored;
  int version = 0;
  auto [ptr, ec] = std::from_chars(text.data(), text.data() + text.size(), version);
  if (ec != std::errc() || ptr != text.data() + text.size())
    return make_error(fmt::format("{}: schema_version \"{}\" is not a number", db.path(), text));
  if (version > schema_version)
    return make_error(
        fmt::format("{}: schema version {} is newer than this clusterpin understands (up to {})",
                    db.path(), version, schema_version));
  return Status::ok_status();
}

Result<std::optional<std::string>> read_meta(Connection& db, const std::string& key) {
  auto stmt = db.prepare("SELECT value FROM meta WHERE key = ?1");
  if (!stmt) return stmt.error();
  stmt->bind_text(1, key);
  auto row = stmt->step();
  if (!row) return row.error();
  if (!*row) return std::optional<std::string>();
  return std::optional<std::string>(std::string(stmt->column_text(0)));
}

Status write_meta(Connection& db, const std::string& key, const std::string& value) {
  auto stmt = db.prepare(
      "INSERT INTO meta(key, value) VALUES(?1, ?2) ON CONFLICT(key) DO UPDATE SET value = ?2");
  if (!stmt) return stmt.error();
  stmt->bind_text(1, key);
  stmt->bind_text(2, value);
  return stmt->run();
}

Result<std::string> read_cluster_id(Connection& db) {
  auto stored = read_meta(db, kClusterId);
  if (!stored) return stored.error();
  return stored->value_or(std::string());
}

Status fix_cluster_id(Connection& db, const std::string& cluster_id) {
  assert(!cluster_id.empty() && "a cluster id is fixed at bootstrap and never empty");
  auto stored = read_cluster_id(db);
  if (!stored) return stored.error();
  if (stored->empty()) return write_meta(db, kClusterId, cluster_id);
  if (*stored != cluster_id) return other_cluster_error(db.path(), *stored, cluster_id);
  return Status::ok_status();
}

Status check_cluster_id(Connection& db, const std::string& expected) {
  if (expected.empty()) return Status::ok_status();
  auto stored = read_cluster_id(db);
  if (!stored) return stored.error();
  if (!stored->empty() && *stored != expected)
    return other_cluster_error(db.path(), *stored, expected);
  return Status::ok_status();
}

Error other_cluster_error(const std::string& file, const std::string& stored,
                          const std::string& expected) {
  return make_error(fmt::format(
      "{}: this data belongs to cluster {}, not to cluster {} that this peer is configured for; "
      "to discard it and join cluster {}, run `clusterpin state cleanup`",
      file, stored, expected, expected));
}

}  // namespace clusterpin::store
