// A fault-injecting SQLite VFS for tests: it forwards everything to SQLite's default VFS, except
// that once armed every xSync (fsync) fails with SQLITE_IOERR_FSYNC, as a dying disk would.
// Used to prove that a failed fsync is never acknowledged and stops the writer.
#pragma once

namespace clusterpin::store::testing {

// Registers the VFS once per process (not as the default) and returns its name for open().
const char* register_failing_sync_vfs();

// While on, every sync through the VFS fails.
void set_sync_failure(bool on);

}  // namespace clusterpin::store::testing
