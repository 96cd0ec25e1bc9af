// SQLite C API calls for Connection, Statement and Transaction (see sqlite_connection.hpp).
// Every non-OK return code becomes an Error naming the file; nothing is retried here, so a
// failed commit reaches the caller as it happened.
#include "store/sqlite_connection.hpp"

#include <sqlite3.h>

#include <fmt/format.h>

#include "store/page_cache.hpp"
#include "store/wal_gather_vfs.hpp"

namespace clusterpin::store {

namespace {
// Long enough for a reader to wait out a checkpoint, short enough that a stuck lock is reported.
constexpr int kBusyTimeoutMs = 5000;
}  // namespace

void Connection::Closer::operator()(sqlite3* db) const {
  sqlite3_close_v2(db);
}

Result<Connection> Connection::open(const std::string& path, OpenMode mode,
                                    const std::string& vfs) {
  // No allocation statistics: SQLite keeps them under a global mutex taken by every malloc and
  // free it makes (nothing here reads them). Must precede SQLite's initialisation, which the
  // first open does; a later call would be refused and change nothing.
  static const bool configured = sqlite3_config(SQLITE_CONFIG_MEMSTATUS, 0) == SQLITE_OK;
  (void)configured;
  static const bool page_cache = install_page_cache();  // likewise; see page_cache.hpp
  (void)page_cache;
  // After the two above: registering a VFS initialises SQLite. See wal_gather_vfs.hpp.
  static const bool wal_gather = install_wal_gather_vfs();
  (void)wal_gather;
  int flags = SQLITE_OPEN_NOMUTEX;
  flags |= mode == OpenMode::ReadOnly ? SQLITE_OPEN_READONLY
                                      : (SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE);
  sqlite3* db = nullptr;
  int rc = sqlite3_open_v2(path.c_str(), &db, flags, vfs.empty() ? nullptr : vfs.c_str());
  Connection conn(db, path);  // owns db even when opening failed
  if (rc != SQLITE_OK) {
    if (db == nullptr) return make_error(fmt::format("{}: cannot open: out of memory", path));
    return conn.error("cannot open");
  }
  sqlite3_extended_result_codes(db, 1);
  sqlite3_busy_timeout(db, kBusyTimeoutMs);
  return conn;
}

Status Connection::exec(std::string_view sql) {
  std::string owned(sql);
  if (sqlite3_exec(db_.get(), owned.c_str(), nullptr, nullptr, nullptr) != SQLITE_OK)
    return error(fmt::format("running `{}`", sql));
  return Status::ok_status();
}

Result<Statement> Connection::prepare(std::string_view sql) {
  sqlite3_stmt* stmt = nullptr;
  int rc = sqlite3_prepare_v3(db_.get(), sql.data(), static_cast<int>(sql.size()),
                              SQLITE_PREPARE_PERSISTENT, &stmt, nullptr);
  if (rc != SQLITE_OK) return error(fmt::format("preparing `{}`", sql));
  return Statement(stmt, db_.get(), path_);
}

int Connection::changes() const { return sqlite3_changes(db_.get()); }

Result<std::string> Connection::query_text(std::string_view sql) {
  auto stmt = prepare(sql);
  if (!stmt) return stmt.error();
  auto row = stmt->step();
  if (!row) return row.error();
  if (!*row) return make_error(fmt::format("{}: `{}` returned no row", path_, sql));
  return std::string(stmt->column_text(0));
}

Error Connection::error(std::string_view doing) const {
  return make_error(fmt::format("{}: {}: {} (code {})", path_, doing, sqlite3_errmsg(db_.get()),
                                sqlite3_extended_errcode(db_.get())));
}

int Connection::last_error_code() const {
  return sqlite3_extended_errcode(db_.get());
}

void Statement::Finalizer::operator()(sqlite3_stmt* s) const {
  sqlite3_finalize(s);
}

// Bind failures can only come from a wrong index or out-of-memory; both surface again at step(),
// whose error carries SQLite's message, so the bind return codes are deliberately not checked here.
void Statement::bind_int(int i, std::int64_t v) {
  sqlite3_bind_int64(stmt_.get(), i, v);
}
void Statement::bind_blob(int i, std::string_view v) {
  // A zero-length blob must still be a blob, not NULL: pass a non-null pointer.
  sqlite3_bind_blob64(stmt_.get(), i, v.empty() ? "" : v.data(), v.size(), SQLITE_TRANSIENT);
}
void Statement::bind_text(int i, std::string_view v) {
  sqlite3_bind_text64(stmt_.get(), i, v.data(), v.size(), SQLITE_TRANSIENT, SQLITE_UTF8);
}
void Statement::bind_null(int i) {
  sqlite3_bind_null(stmt_.get(), i);
}

Result<bool> Statement::step() {
  int rc = sqlite3_step(stmt_.get());
  if (rc == SQLITE_ROW) return true;
  if (rc == SQLITE_DONE) return false;
  Error e = error("executing statement");
  sqlite3_reset(stmt_.get());
  return e;
}

Status Statement::run() {
  auto r = step();
  reset();
  if (!r) return r.error();
  return Status::ok_status();
}

void Statement::reset() {
  sqlite3_reset(stmt_.get());
  sqlite3_clear_bindings(stmt_.get());
}

std::int64_t Statement::column_int(int i) const {
  return sqlite3_column_int64(stmt_.get(), i);
}

std::string_view Statement::column_blob(int i) const {
  const void* p = sqlite3_column_blob(stmt_.get(), i);
  int n = sqlite3_column_bytes(stmt_.get(), i);  // after the pointer, as SQLite documents
  return p == nullptr ? std::string_view()
                      : std::string_view(static_cast<const char*>(p), static_cast<size_t>(n));
}

std::string_view Statement::column_text(int i) const {
  const unsigned char* p = sqlite3_column_text(stmt_.get(), i);
  int n = sqlite3_column_bytes(stmt_.get(), i);
  return p == nullptr ? std::string_view()
                      : std::string_view(reinterpret_cast<const char*>(p), static_cast<size_t>(n));
}

bool Statement::column_is_null(int i) const {
  return sqlite3_column_type(stmt_.get(), i) == SQLITE_NULL;
}

Error Statement::error(std::string_view doing) const {
  const char* sql = sqlite3_sql(stmt_.get());
  return make_error(fmt::format("{}: {} `{}`: {} (code {})", path_, doing, sql ? sql : "",
                                sqlite3_errmsg(db_), sqlite3_extended_errcode(db_)));
}

Result<Transaction> Transaction::begin(Connection& db) {
  if (Status s = db.exec("BEGIN IMMEDIATE"); !s) return s.error();
  return Transaction(&db);
}

Transaction::~Transaction() {
  // Only reached uncommitted on an error path; ROLLBACK may itself fail if SQLite already rolled
  // back (e.g. after an I/O error), which leaves nothing to undo.
  if (db_ != nullptr) sqlite3_exec(db_->handle(), "ROLLBACK", nullptr, nullptr, nullptr);
}

Status Transaction::commit() {
  assert(db_ != nullptr && "commit() called twice");
  Status s = db_->exec("COMMIT");
  if (s) db_ = nullptr;
  return s;
}

}  // namespace clusterpin::store
