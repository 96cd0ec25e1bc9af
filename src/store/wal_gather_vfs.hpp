// A SQLite VFS that hands a transaction's WAL frames to the kernel in one write.
//
// SQLite writes each WAL frame with two calls, the 24-byte frame header and then the page, so a
// commit of N pages costs 2N pwrite system calls. On this project's machines a pwrite costs
// about 2 us of CPU whatever its size (4,120-byte frames: 4.1 us each written as two calls,
// 0.65 us each when 37 frames go in one call), and every peer commits a page or two per pin to
// state.db and tracker.db. This VFS wraps the default one and, for WAL files only, gathers
// frames appended at the end of the log in a buffer that goes to the kernel in one write when
// the transaction's commit frame is complete, or earlier when anything else touches the file.
//
// What is kept, and why it is safe:
// - Only appends are gathered: a write at the end of what this handle wrote since the log last
//   started over (the 32-byte WAL header at offset 0). Writes anywhere else (a page rewritten in
//   place within its transaction, checksums rewritten after that) first flush the buffer, then
//   go straight through.
// - The commit frame (its header carries the database size, every other frame's carries 0) is
//   always appended, and the write of its page flushes the buffer and returns the flush's
//   result. SQLite publishes a commit to readers (the wal-index header) only after that write
//   returned, so no other connection can see a frame that is not in the file yet, and a failed
//   write fails the commit as it would have without the buffer.
// - Reads, syncs, size queries, truncations, file controls and close flush first, so the
//   handle always reads what it wrote and a sync covers every frame written before it.
// - Other files (databases, rollback journals) are opened by the wrapped VFS itself: no cost.
// A process killed after a commit returned loses nothing: the frames were in the kernel.
#pragma once

#include <cstdint>

namespace clusterpin::store {

// The most one write carries: a larger transaction goes out in several. SQLite's unix VFS
// writes at most this much per call (it masks sizes with 0x1ffff; a multiple of 128 KiB would
// become an empty write, reported as a full disk).
inline constexpr int kWalGatherBytes = 0x1ffff;

// Registers the gathering VFS as SQLite's default, over the VFS that was the default. Called by
// Connection::open before its first open; returns false (and changes nothing) when SQLite has no
// default VFS or refuses the registration.
bool install_wal_gather_vfs();

// For tests: registers a gathering VFS called `name` over the registered VFS `inner`, not as the
// default. Returns false when `inner` is not registered. Registering a name twice is harmless.
// `inner` must not gather itself: it would take the upper one's whole transaction for frames
// and keep the commit in its buffer.
bool register_wal_gather_vfs(const char* name, const char* inner);

}  // namespace clusterpin::store
