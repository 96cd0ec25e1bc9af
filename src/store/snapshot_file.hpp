// Snapshot files on disk: reading one in chunks to stream it to a lagging peer, assembling a
// received one from chunks, and the fsyncs that make a file and its directory entry durable.
// A snapshot file is a complete SQLite database (see StateDb::create_snapshot); these functions
// treat it as bytes. Chunk appends are idempotent so a retransmitted chunk does no harm.
#pragma once

#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <string>
#include <string_view>

#include "core/result.hpp"

namespace clusterpin::store {

// Up to `max_len` bytes from `offset`; empty at or past the end of the file.
Result<std::string> read_snapshot_chunk(const std::filesystem::path& file, std::uint64_t offset,
                                        std::size_t max_len);

// Writes `bytes` at `offset` of `file` (created when missing). `offset` must not be past the
// current end (no holes); a chunk that lies within what is already written is accepted again.
// Returns the file size afterwards. Starts the write-out of the chunk's pages without waiting
// (sync_file_range), so little is left for sync_file(); not durable until then.
Result<std::uint64_t> append_snapshot_chunk(const std::filesystem::path& file, std::uint64_t offset,
                                            std::string_view bytes);

// Removes a database file that is about to be written anew, with the files SQLite keeps
// beside it (-journal, -wal, -shm): a rollback journal left by a kill would otherwise be taken
// as hot by the next open of the new file and roll the old pages back into it. An error names
// the file that could not be removed.
Status remove_database_file(const std::filesystem::path& file);

// fsync(2) of a file's data and metadata.
Status sync_file(const std::filesystem::path& file);
// fsync(2) of the directory holding `file`, so a create or rename of it survives power loss.
Status sync_parent_directory(const std::filesystem::path& file);

}  // namespace clusterpin::store
