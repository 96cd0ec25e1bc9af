// Rows with random 32-byte keys for the SQLite tests: inserts land all over the b-tree (splits
// everywhere), as CIDs do in state.db and tracker.db.
#pragma once

#include <cstddef>
#include <random>
#include <string>

#include "store/sqlite_connection.hpp"

namespace clusterpin::store::testing {

// Inserts `rows` rows into t(k, v) in one transaction and commits it, or rolls it back when
// `commit` is false. A failed step rolls the transaction back and is returned. No doctest
// macros: a forked child may call it.
inline Status insert_random_rows(Connection& db, std::mt19937_64& rng, int rows,
                                 bool commit = true, std::size_t value_bytes = 150) {
  if (Status s = db.exec("BEGIN"); !s) return s;
  Status result;
  {
    auto st = db.prepare("INSERT INTO t(k, v) VALUES(?1, ?2)");
    if (!st) result = st.error();
    std::string key(32, '\0');
    std::string value(value_bytes, 'v');
    for (int i = 0; result && i < rows; ++i) {
      for (char& ch : key) ch = static_cast<char>(rng());
      st->bind_blob(1, key);
      st->bind_blob(2, value);
      result = st->run();
    }
  }
  if (result && commit) result = db.exec("COMMIT");
  if (!result || !commit) {
    Status rolled_back = db.exec("ROLLBACK");
    if (result) result = rolled_back;
  }
  return result;
}

}  // namespace clusterpin::store::testing
