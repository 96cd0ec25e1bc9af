// Fail-stop for storage: when a write or fsync of the data folder fails, the peer stops.
// After a failed fsync the kernel may have dropped the dirty pages and cleared the error, so a
// retry could "succeed" without the data; acknowledging anything afterwards would be a lie.
#pragma once

#include "core/result.hpp"

namespace clusterpin::store {

// Exit status of a peer stopped by a storage failure (EX_IOERR from sysexits.h).
inline constexpr int kStorageFailureExitCode = 74;

// Prints `what` and why the peer stops to stderr, then exits with kStorageFailureExitCode at
// once (no destructors, no atexit handlers: nothing more may reach the disk or the network).
[[noreturn]] void stop_on_storage_failure(const Error& what);

}  // namespace clusterpin::store
