// A fault-injecting SQLite VFS for tests: it forwards everything to SQLite's "unix" VFS, except
// that once armed every xSync (fsync) fails with SQLITE_IOERR_FSYNC, as a dying disk would, and
// the next write to a WAL file can be made to fail. It also counts the writes that reach WAL
// files. Used to prove that a failed fsync is never acknowledged and stops the writer, and to
// see what the WAL-gathering VFS stacked on it writes.
#pragma once

namespace clusterpin::store::testing {

// Registers the VFS once per process (not as the default) and returns its name for open().
const char* register_failing_sync_vfs();

// While on, every sync through the VFS fails.
void set_sync_failure(bool on);

// Writes that reached WAL files through the VFS since the process started.
int wal_writes();
// The next write to a WAL file fails with SQLITE_IOERR_WRITE (once; false disarms).
void fail_next_wal_write(bool on);

}  // namespace clusterpin::store::testing
