// The failing-sync VFS (see failing_vfs.hpp). Each file it opens is a WrappedFile: our
// sqlite3_file header followed in the same allocation by the real VFS's file object, to which
// every io method is forwarded. Only xSync and xWrite look at the failure switches; xWrite also
// counts the writes to WAL files.
#include "failing_vfs.hpp"

#include <sqlite3.h>

#include <atomic>
#include <cassert>
#include <mutex>

namespace clusterpin::store::testing {

namespace {

std::atomic<bool> g_fail_sync{false};
std::atomic<bool> g_fail_wal_write{false};
std::atomic<int> g_wal_writes{0};
sqlite3_vfs* g_real = nullptr;
sqlite3_vfs g_vfs;

struct WrappedFile {
  sqlite3_file base;
  sqlite3_file* real;  // points just past this struct; szOsFile reserves the room
  bool wal;            // opened as a WAL file
};

sqlite3_file* real_of(sqlite3_file* f) {
  return reinterpret_cast<WrappedFile*>(f)->real;
}
const sqlite3_io_methods* m(sqlite3_file* f) {
  return real_of(f)->pMethods;
}

int x_close(sqlite3_file* f) {
  return m(f)->xClose(real_of(f));
}
int x_read(sqlite3_file* f, void* buf, int n, sqlite3_int64 off) {
  return m(f)->xRead(real_of(f), buf, n, off);
}
int x_write(sqlite3_file* f, const void* buf, int n, sqlite3_int64 off) {
  if (reinterpret_cast<WrappedFile*>(f)->wal) {
    if (g_fail_wal_write.exchange(false)) return SQLITE_IOERR_WRITE;
    ++g_wal_writes;
  }
  return m(f)->xWrite(real_of(f), buf, n, off);
}
int x_truncate(sqlite3_file* f, sqlite3_int64 size) {
  return m(f)->xTruncate(real_of(f), size);
}
int x_sync(sqlite3_file* f, int flags) {
  if (g_fail_sync.load()) return SQLITE_IOERR_FSYNC;
  return m(f)->xSync(real_of(f), flags);
}
int x_file_size(sqlite3_file* f, sqlite3_int64* size) {
  return m(f)->xFileSize(real_of(f), size);
}
int x_lock(sqlite3_file* f, int level) {
  return m(f)->xLock(real_of(f), level);
}
int x_unlock(sqlite3_file* f, int level) {
  return m(f)->xUnlock(real_of(f), level);
}
int x_check_reserved(sqlite3_file* f, int* out) {
  return m(f)->xCheckReservedLock(real_of(f), out);
}
int x_file_control(sqlite3_file* f, int op, void* arg) {
  return m(f)->xFileControl(real_of(f), op, arg);
}
int x_sector_size(sqlite3_file* f) {
  return m(f)->xSectorSize(real_of(f));
}
int x_device_characteristics(sqlite3_file* f) {
  return m(f)->xDeviceCharacteristics(real_of(f));
}
int x_shm_map(sqlite3_file* f, int page, int size, int extend, void volatile** out) {
  return m(f)->xShmMap(real_of(f), page, size, extend, out);
}
int x_shm_lock(sqlite3_file* f, int offset, int n, int flags) {
  return m(f)->xShmLock(real_of(f), offset, n, flags);
}
void x_shm_barrier(sqlite3_file* f) {
  m(f)->xShmBarrier(real_of(f));
}
int x_shm_unmap(sqlite3_file* f, int del) {
  return m(f)->xShmUnmap(real_of(f), del);
}
int x_fetch(sqlite3_file* f, sqlite3_int64 off, int n, void** out) {
  return m(f)->xFetch(real_of(f), off, n, out);
}
int x_unfetch(sqlite3_file* f, sqlite3_int64 off, void* p) {
  return m(f)->xUnfetch(real_of(f), off, p);
}

const sqlite3_io_methods g_methods = {
    3,
    x_close,
    x_read,
    x_write,
    x_truncate,
    x_sync,
    x_file_size,
    x_lock,
    x_unlock,
    x_check_reserved,
    x_file_control,
    x_sector_size,
    x_device_characteristics,
    x_shm_map,
    x_shm_lock,
    x_shm_barrier,
    x_shm_unmap,
    x_fetch,
    x_unfetch,
};

int x_open(sqlite3_vfs*, sqlite3_filename name, sqlite3_file* f, int flags, int* out_flags) {
  auto* w = reinterpret_cast<WrappedFile*>(f);
  w->real = reinterpret_cast<sqlite3_file*>(w + 1);
  w->wal = (flags & SQLITE_OPEN_WAL) != 0;
  int rc = g_real->xOpen(g_real, name, w->real, flags, out_flags);
  // SQLite calls xClose only when pMethods is set, so mirror the real file's state.
  assert((w->real->pMethods == nullptr || w->real->pMethods->iVersion >= 3) &&
         "the default VFS has shm methods");
  w->base.pMethods = w->real->pMethods != nullptr ? &g_methods : nullptr;
  return rc;
}
int x_delete(sqlite3_vfs*, const char* name, int sync_dir) {
  return g_real->xDelete(g_real, name, sync_dir);
}
int x_access(sqlite3_vfs*, const char* name, int flags, int* out) {
  return g_real->xAccess(g_real, name, flags, out);
}
int x_full_pathname(sqlite3_vfs*, const char* name, int n, char* out) {
  return g_real->xFullPathname(g_real, name, n, out);
}
int x_randomness(sqlite3_vfs*, int n, char* out) {
  return g_real->xRandomness(g_real, n, out);
}
int x_sleep(sqlite3_vfs*, int us) {
  return g_real->xSleep(g_real, us);
}
int x_current_time(sqlite3_vfs*, double* out) {
  return g_real->xCurrentTime(g_real, out);
}
int x_get_last_error(sqlite3_vfs*, int n, char* out) {
  return g_real->xGetLastError(g_real, n, out);
}
int x_current_time_int64(sqlite3_vfs*, sqlite3_int64* out) {
  return g_real->xCurrentTimeInt64(g_real, out);
}

}  // namespace

const char* register_failing_sync_vfs() {
  static std::once_flag once;
  std::call_once(once, [] {
    // The OS's VFS, not the default: the default is the WAL-gathering VFS once a Connection was
    // opened, and the gathering VFS stacked on this one would gather twice (the lower one would
    // keep a commit that the upper one wrote in one call, not knowing it ends a transaction).
    g_real = sqlite3_vfs_find("unix");
    assert(g_real != nullptr && g_real->iVersion >= 2 && "SQLite on Unix has the unix VFS");
    g_vfs = sqlite3_vfs{};
    g_vfs.iVersion = 2;
    g_vfs.szOsFile = static_cast<int>(sizeof(WrappedFile)) + g_real->szOsFile;
    g_vfs.mxPathname = g_real->mxPathname;
    g_vfs.zName = "clusterpin-failing-sync";
    g_vfs.xOpen = x_open;
    g_vfs.xDelete = x_delete;
    g_vfs.xAccess = x_access;
    g_vfs.xFullPathname = x_full_pathname;
    g_vfs.xDlOpen = g_real->xDlOpen;
    g_vfs.xDlError = g_real->xDlError;
    g_vfs.xDlSym = g_real->xDlSym;
    g_vfs.xDlClose = g_real->xDlClose;
    g_vfs.xRandomness = x_randomness;
    g_vfs.xSleep = x_sleep;
    g_vfs.xCurrentTime = x_current_time;
    g_vfs.xGetLastError = x_get_last_error;
    g_vfs.xCurrentTimeInt64 = x_current_time_int64;
    sqlite3_vfs_register(&g_vfs, 0);
  });
  return g_vfs.zName;
}

void set_sync_failure(bool on) {
  g_fail_sync.store(on);
}

int wal_writes() {
  return g_wal_writes.load();
}

void fail_next_wal_write(bool on) {
  g_fail_wal_write.store(on);
}

}  // namespace clusterpin::store::testing
