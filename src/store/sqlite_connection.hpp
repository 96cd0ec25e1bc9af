// A thin RAII layer over the SQLite C API for the store layer: one Connection per database file
// and thread, prepared Statements with typed binds, and every failure turned into an Error that
// names the database file, what was being done and SQLite's own message. Nothing here throws.
// sqlite3.h stays out of this header so that code above the store never sees SQLite types.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

#include "core/result.hpp"

struct sqlite3;
struct sqlite3_stmt;

namespace clusterpin::store {

class Statement;

enum class OpenMode { ReadWrite, ReadOnly };

// One SQLite connection. Movable, not copyable; used by one thread at a time (opened with
// SQLITE_OPEN_NOMUTEX, so the caller serialises access).
class Connection {
 public:
  // Opens (creating when ReadWrite) `path`. `vfs` empty selects SQLite's default VFS; tests pass
  // the name of a registered fault-injecting VFS. A busy timeout lets readers and the writer of a
  // WAL database wait for each other's short locks instead of failing.
  static Result<Connection> open(const std::string& path, OpenMode mode,
                                 const std::string& vfs = {});

  // Runs one or more statements that return no rows we need.
  Status exec(std::string_view sql);
  Result<Statement> prepare(std::string_view sql);
  // Runs a statement returning one text value (e.g. `PRAGMA journal_mode=WAL`).
  Result<std::string> query_text(std::string_view sql);
  // Rows the last INSERT, UPDATE or DELETE changed (0 for an upsert that did nothing).
  int changes() const;

  // An Error "<file>: <doing>: <sqlite message> (code N)" from the connection's last failure.
  Error error(std::string_view doing) const;
  // The extended result code of the last failure (to tell an I/O error from a constraint).
  int last_error_code() const;

  const std::string& path() const { return path_; }
  sqlite3* handle() const { return db_.get(); }

 private:
  struct Closer {
    void operator()(sqlite3* db) const;
  };
  Connection(sqlite3* db, std::string path) : db_(db), path_(std::move(path)) {}

  std::unique_ptr<sqlite3, Closer> db_;
  std::string path_;
};

// A prepared statement. It must not outlive the Connection that prepared it. Binds are 1-based,
// columns 0-based as in SQLite. Blob and text binds are copied (SQLITE_TRANSIENT) unless
// documented otherwise, so arguments need not outlive the call.
class Statement {
 public:
  void bind_int(int i, std::int64_t v);
  void bind_blob(int i, std::string_view v);
  void bind_text(int i, std::string_view v);
  void bind_null(int i);

  // Advances: true when a row is available, false when done.
  Result<bool> step();
  // Steps to completion (for statements that return no rows) and resets.
  Status run();
  // Makes the statement ready for new binds; clears old ones.
  void reset();

  std::int64_t column_int(int i) const;
  // Views stay valid until the next step/reset.
  std::string_view column_blob(int i) const;
  std::string_view column_text(int i) const;
  bool column_is_null(int i) const;

 private:
  friend class Connection;
  struct Finalizer {
    void operator()(sqlite3_stmt* s) const;
  };
  Statement(sqlite3_stmt* s, sqlite3* db, std::string path)
      : stmt_(s), db_(db), path_(std::move(path)) {}
  Error error(std::string_view doing) const;

  std::unique_ptr<sqlite3_stmt, Finalizer> stmt_;
  sqlite3* db_;
  std::string path_;  // the database file, for error messages only
};

// BEGIN IMMEDIATE ... COMMIT with rollback when the scope ends uncommitted. IMMEDIATE takes the
// write lock up front so a transaction never fails half-way because another writer appeared.
class Transaction {
 public:
  static Result<Transaction> begin(Connection& db);
  Transaction(Transaction&& other) noexcept : db_(other.db_) { other.db_ = nullptr; }
  Transaction& operator=(Transaction&&) = delete;
  ~Transaction();
  // With synchronous=FULL in WAL mode, a successful commit means the WAL was fsynced.
  Status commit();

 private:
  explicit Transaction(Connection* db) : db_(db) {}
  Connection* db_;  // null once committed or rolled back
};

}  // namespace clusterpin::store
