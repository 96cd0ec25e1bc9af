// For tests: what another connection sees of a database file, i.e. only committed rows.
#pragma once

#include <doctest/doctest.h>

#include <cstdint>
#include <filesystem>
#include <string>
#include <string_view>

#include "store/sqlite_connection.hpp"

namespace clusterpin::store::testing {

// The number of committed rows of `table` in `file`, read on a connection of its own.
inline std::int64_t committed_rows(const std::filesystem::path& file, std::string_view table) {
  auto other = Connection::open(file.string(), OpenMode::ReadOnly);
  REQUIRE(other.ok());
  auto n = other->query_text("SELECT count(*) FROM " + std::string(table));
  REQUIRE(n.ok());
  return std::stoll(*n);
}

}  // namespace clusterpin::store::testing
