// The WAL-gathering VFS (see wal_gather_vfs.hpp): a wrapper of another VFS whose WAL file
// handles buffer appended frames until the commit frame's page is written.
#include "store/wal_gather_vfs.hpp"

#include <sqlite3.h>

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <deque>
#include <mutex>
#include <string>

namespace clusterpin::store {

namespace {

constexpr int kFrameHeaderBytes = 24;

// The file object SQLite allocates (szOsFile bytes) for a WAL handle: this struct, then the
// wrapped VFS's own file object. Plain data: SQLite allocates it with no constructor.
struct GatherFile {
  sqlite3_file base;    // pMethods = &kMethods
  sqlite3_file* inner;  // the wrapped VFS's file, right after this struct
  char* buffer;         // kWalGatherBytes, allocated at the first append
  sqlite3_int64 start;  // file offset of buffer[0]
  int length;           // bytes buffered
  // End of what this handle wrote since the log last started over; appends start here. -1 when
  // unknown (after a failed flush): nothing is gathered until a write makes it known again.
  sqlite3_int64 end;
  bool commit_header;  // the last append was the header of a commit frame
};

constexpr std::size_t kGatherFileBytes = (sizeof(GatherFile) + 15) / 16 * 16;

GatherFile* of(sqlite3_file* f) { return reinterpret_cast<GatherFile*>(f); }
const sqlite3_io_methods* inner_methods(GatherFile* g) { return g->inner->pMethods; }

// Writes what is buffered. Whatever the outcome the buffer is empty afterwards: after a failed
// write the transaction is abandoned, and frames past its last commit are never read. That
// relies on the callers: SQLite alone may roll back only the failed statement (SQLITE_FULL) and
// go on to commit frames this dropped, but every user of this VFS (StateDb, RaftLog, TrackerDb)
// rolls back the whole transaction when any statement in it fails.
int flush(GatherFile* g) {
  if (g->length == 0) return SQLITE_OK;
  int rc = inner_methods(g)->xWrite(g->inner, g->buffer, g->length, g->start);
  g->length = 0;
  if (rc != SQLITE_OK) g->end = -1;
  return rc;
}

std::uint32_t read_be32(const unsigned char* p) {
  return (std::uint32_t{p[0]} << 24) | (std::uint32_t{p[1]} << 16) | (std::uint32_t{p[2]} << 8) |
         std::uint32_t{p[3]};
}

int close_file(sqlite3_file* f) {
  GatherFile* g = of(f);
  int rc = flush(g);
  int closed = inner_methods(g)->xClose(g->inner);
  std::free(g->buffer);
  g->buffer = nullptr;
  return rc != SQLITE_OK ? rc : closed;
}

int read_file(sqlite3_file* f, void* out, int amount, sqlite3_int64 offset) {
  GatherFile* g = of(f);
  if (int rc = flush(g); rc != SQLITE_OK) return rc;
  return inner_methods(g)->xRead(g->inner, out, amount, offset);
}

int write_file(sqlite3_file* f, const void* data, int amount, sqlite3_int64 offset) {
  GatherFile* g = of(f);
  // Bytes 4-7 of a frame header: the database size in pages for a commit frame, else 0. The
  // page that follows a commit frame's header ends the transaction: it goes out with the rest.
  bool header = amount == kFrameHeaderBytes;
  bool commit_page = !header && g->commit_header;
  g->commit_header = header && read_be32(static_cast<const unsigned char*>(data) + 4) != 0;
  bool append = g->end >= 0 && offset == g->end && amount <= kWalGatherBytes;
  if (append && g->buffer == nullptr) {
    g->buffer = static_cast<char*>(std::malloc(kWalGatherBytes));
    append = g->buffer != nullptr;
  }
  if (!append) {
    // Anywhere else, or too large: what is buffered goes first, then this write as it is.
    if (int rc = flush(g); rc != SQLITE_OK) return rc;
    int rc = inner_methods(g)->xWrite(g->inner, data, amount, offset);
    if (rc != SQLITE_OK) return rc;
    // A write at offset 0 is the WAL header of a log that starts over: frames follow it.
    g->end = offset == 0 ? amount : std::max(g->end, offset + amount);
    return SQLITE_OK;
  }
  if (g->length + amount > kWalGatherBytes) {
    if (int rc = flush(g); rc != SQLITE_OK) return rc;
  }
  if (g->length == 0) g->start = offset;
  std::memcpy(g->buffer + g->length, data, static_cast<std::size_t>(amount));
  g->length += amount;
  g->end = offset + amount;
  return commit_page ? flush(g) : SQLITE_OK;
}

int truncate_file(sqlite3_file* f, sqlite3_int64 size) {
  GatherFile* g = of(f);
  if (int rc = flush(g); rc != SQLITE_OK) return rc;
  int rc = inner_methods(g)->xTruncate(g->inner, size);
  if (rc == SQLITE_OK && g->end > size) g->end = size;
  return rc;
}

int sync_file(sqlite3_file* f, int flags) {
  GatherFile* g = of(f);
  if (int rc = flush(g); rc != SQLITE_OK) return rc;
  return inner_methods(g)->xSync(g->inner, flags);
}

int file_size(sqlite3_file* f, sqlite3_int64* size) {
  GatherFile* g = of(f);
  if (int rc = flush(g); rc != SQLITE_OK) return rc;
  return inner_methods(g)->xFileSize(g->inner, size);
}

int lock(sqlite3_file* f, int level) { return inner_methods(of(f))->xLock(of(f)->inner, level); }
int unlock(sqlite3_file* f, int level) {
  return inner_methods(of(f))->xUnlock(of(f)->inner, level);
}
int check_reserved_lock(sqlite3_file* f, int* out) {
  return inner_methods(of(f))->xCheckReservedLock(of(f)->inner, out);
}

int file_control(sqlite3_file* f, int op, void* arg) {
  GatherFile* g = of(f);
  if (int rc = flush(g); rc != SQLITE_OK) return rc;
  return inner_methods(g)->xFileControl(g->inner, op, arg);
}

int sector_size(sqlite3_file* f) { return inner_methods(of(f))->xSectorSize(of(f)->inner); }
int device_characteristics(sqlite3_file* f) {
  return inner_methods(of(f))->xDeviceCharacteristics(of(f)->inner);
}

// Shared memory belongs to database files; a WAL handle forwards these only for completeness.
int shm_map(sqlite3_file* f, int region, int size, int extend, void volatile** out) {
  const sqlite3_io_methods* m = inner_methods(of(f));
  if (m->iVersion < 2 || m->xShmMap == nullptr) return SQLITE_IOERR_SHMMAP;
  return m->xShmMap(of(f)->inner, region, size, extend, out);
}
int shm_lock(sqlite3_file* f, int offset, int n, int flags) {
  const sqlite3_io_methods* m = inner_methods(of(f));
  if (m->iVersion < 2 || m->xShmLock == nullptr) return SQLITE_IOERR_SHMLOCK;
  return m->xShmLock(of(f)->inner, offset, n, flags);
}
void shm_barrier(sqlite3_file* f) {
  const sqlite3_io_methods* m = inner_methods(of(f));
  if (m->iVersion >= 2 && m->xShmBarrier != nullptr) m->xShmBarrier(of(f)->inner);
}
int shm_unmap(sqlite3_file* f, int delete_flag) {
  const sqlite3_io_methods* m = inner_methods(of(f));
  if (m->iVersion < 2 || m->xShmUnmap == nullptr) return SQLITE_OK;
  return m->xShmUnmap(of(f)->inner, delete_flag);
}
int fetch(sqlite3_file* f, sqlite3_int64 offset, int amount, void** out) {
  GatherFile* g = of(f);
  *out = nullptr;
  if (int rc = flush(g); rc != SQLITE_OK) return rc;
  const sqlite3_io_methods* m = inner_methods(g);
  if (m->iVersion < 3 || m->xFetch == nullptr) return SQLITE_OK;  // no mapping: SQLite reads
  return m->xFetch(g->inner, offset, amount, out);
}
int unfetch(sqlite3_file* f, sqlite3_int64 offset, void* page) {
  const sqlite3_io_methods* m = inner_methods(of(f));
  if (m->iVersion < 3 || m->xUnfetch == nullptr) return SQLITE_OK;
  return m->xUnfetch(of(f)->inner, offset, page);
}

const sqlite3_io_methods kMethods = {
    3,           close_file, read_file,       write_file, truncate_file,
    sync_file,   file_size,  lock,            unlock,     check_reserved_lock,
    file_control, sector_size, device_characteristics, shm_map, shm_lock,
    shm_barrier, shm_unmap,  fetch,           unfetch,
};

sqlite3_vfs* inner_vfs(sqlite3_vfs* vfs) { return static_cast<sqlite3_vfs*>(vfs->pAppData); }

int open_file(sqlite3_vfs* vfs, sqlite3_filename name, sqlite3_file* f, int flags,
              int* out_flags) {
  sqlite3_vfs* inner = inner_vfs(vfs);
  // Anything but a WAL is the wrapped VFS's own file object, at the start of the allocation.
  if ((flags & SQLITE_OPEN_WAL) == 0) return inner->xOpen(inner, name, f, flags, out_flags);
  GatherFile* g = of(f);
  std::memset(g, 0, sizeof(GatherFile));
  g->inner = reinterpret_cast<sqlite3_file*>(reinterpret_cast<char*>(f) + kGatherFileBytes);
  g->end = -1;
  int rc = inner->xOpen(inner, name, g->inner, flags, out_flags);
  // SQLite calls xClose after a failed open only when pMethods is set; ours forwards it.
  g->base.pMethods = g->inner->pMethods != nullptr ? &kMethods : nullptr;
  if (rc != SQLITE_OK) return rc;
  // Frames are appended after whatever the log holds until it starts over.
  sqlite3_int64 size = 0;
  if (inner_methods(g)->xFileSize(g->inner, &size) == SQLITE_OK) g->end = size;
  return SQLITE_OK;
}

int vfs_delete_file(sqlite3_vfs* v, const char* name, int sync_dir) {
  return inner_vfs(v)->xDelete(inner_vfs(v), name, sync_dir);
}
int vfs_access(sqlite3_vfs* v, const char* name, int flags, int* out) {
  return inner_vfs(v)->xAccess(inner_vfs(v), name, flags, out);
}
int vfs_full_pathname(sqlite3_vfs* v, const char* name, int size, char* out) {
  return inner_vfs(v)->xFullPathname(inner_vfs(v), name, size, out);
}
void* vfs_dl_open(sqlite3_vfs* v, const char* name) { return inner_vfs(v)->xDlOpen(inner_vfs(v), name); }
void vfs_dl_error(sqlite3_vfs* v, int size, char* out) { inner_vfs(v)->xDlError(inner_vfs(v), size, out); }
void (*vfs_dl_sym(sqlite3_vfs* v, void* handle, const char* symbol))(void) {
  return inner_vfs(v)->xDlSym(inner_vfs(v), handle, symbol);
}
void vfs_dl_close(sqlite3_vfs* v, void* handle) { inner_vfs(v)->xDlClose(inner_vfs(v), handle); }
int vfs_randomness(sqlite3_vfs* v, int size, char* out) {
  return inner_vfs(v)->xRandomness(inner_vfs(v), size, out);
}
int vfs_sleep(sqlite3_vfs* v, int micros) { return inner_vfs(v)->xSleep(inner_vfs(v), micros); }
int vfs_current_time(sqlite3_vfs* v, double* out) {
  return inner_vfs(v)->xCurrentTime(inner_vfs(v), out);
}
int vfs_last_error(sqlite3_vfs* v, int size, char* out) {
  sqlite3_vfs* inner = inner_vfs(v);
  return inner->xGetLastError != nullptr ? inner->xGetLastError(inner, size, out) : 0;
}
int vfs_current_time_int64(sqlite3_vfs* v, sqlite3_int64* out) {
  sqlite3_vfs* inner = inner_vfs(v);
  if (inner->iVersion >= 2 && inner->xCurrentTimeInt64 != nullptr)
    return inner->xCurrentTimeInt64(inner, out);
  double days = 0;
  int rc = inner->xCurrentTime(inner, &days);
  *out = static_cast<sqlite3_int64>(days * 86400000.0);
  return rc;
}
int vfs_set_system_call(sqlite3_vfs* v, const char* name, sqlite3_syscall_ptr call) {
  sqlite3_vfs* inner = inner_vfs(v);
  if (inner->iVersion < 3 || inner->xSetSystemCall == nullptr) return SQLITE_NOTFOUND;
  return inner->xSetSystemCall(inner, name, call);
}
sqlite3_syscall_ptr vfs_get_system_call(sqlite3_vfs* v, const char* name) {
  sqlite3_vfs* inner = inner_vfs(v);
  if (inner->iVersion < 3 || inner->xGetSystemCall == nullptr) return nullptr;
  return inner->xGetSystemCall(inner, name);
}
const char* vfs_next_system_call(sqlite3_vfs* v, const char* name) {
  sqlite3_vfs* inner = inner_vfs(v);
  if (inner->iVersion < 3 || inner->xNextSystemCall == nullptr) return nullptr;
  return inner->xNextSystemCall(inner, name);
}

// Registered VFS objects must live as long as the process; their names with them.
struct Registered {
  std::string name;
  sqlite3_vfs vfs;
};

std::mutex g_mutex;
std::deque<Registered> g_registered;  // a deque: registered objects never move

bool register_over(sqlite3_vfs* inner, const char* name, bool make_default) {
  if (inner == nullptr) return false;
  std::lock_guard lock(g_mutex);
  if (sqlite3_vfs_find(name) != nullptr) return true;
  Registered& r = g_registered.emplace_back();
  r.name = name;
  r.vfs = sqlite3_vfs{};
  r.vfs.iVersion = 3;
  r.vfs.szOsFile =
      std::max(inner->szOsFile, static_cast<int>(kGatherFileBytes) + inner->szOsFile);
  r.vfs.mxPathname = inner->mxPathname;
  r.vfs.zName = r.name.c_str();
  r.vfs.pAppData = inner;
  r.vfs.xOpen = open_file;
  r.vfs.xDelete = vfs_delete_file;
  r.vfs.xAccess = vfs_access;
  r.vfs.xFullPathname = vfs_full_pathname;
  r.vfs.xDlOpen = vfs_dl_open;
  r.vfs.xDlError = vfs_dl_error;
  r.vfs.xDlSym = vfs_dl_sym;
  r.vfs.xDlClose = vfs_dl_close;
  r.vfs.xRandomness = vfs_randomness;
  r.vfs.xSleep = vfs_sleep;
  r.vfs.xCurrentTime = vfs_current_time;
  r.vfs.xGetLastError = vfs_last_error;
  r.vfs.xCurrentTimeInt64 = vfs_current_time_int64;
  r.vfs.xSetSystemCall = vfs_set_system_call;
  r.vfs.xGetSystemCall = vfs_get_system_call;
  r.vfs.xNextSystemCall = vfs_next_system_call;
  if (sqlite3_vfs_register(&r.vfs, make_default ? 1 : 0) != SQLITE_OK) {
    g_registered.pop_back();
    return false;
  }
  return true;
}

}  // namespace

bool install_wal_gather_vfs() {
  return register_over(sqlite3_vfs_find(nullptr), "clusterpin-wal-gather", true);
}

bool register_wal_gather_vfs(const char* name, const char* inner) {
  return register_over(sqlite3_vfs_find(inner), name, false);
}

}  // namespace clusterpin::store
