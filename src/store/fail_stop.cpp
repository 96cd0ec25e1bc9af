// The message and exit of a storage fail-stop (see fail_stop.hpp). stderr is unbuffered, and
// _Exit skips every handler that could still write or acknowledge something.
#include "store/fail_stop.hpp"

#include <cstdio>
#include <cstdlib>

namespace clusterpin::store {

void stop_on_storage_failure(const Error& what) {
  std::fprintf(
      stderr,
      "clusterpin: fatal: a write to the data folder failed: %s\n"
      "clusterpin: stopping this peer: nothing in the failed write was acknowledged, and a failed "
      "fsync is never retried; check the disk, then restart the peer\n",
      what.message.c_str());
  std::fflush(stderr);
  std::_Exit(kStorageFailureExitCode);
}

}  // namespace clusterpin::store
