// libsodium initialisation: sodium_init() picks the fastest implementations and seeds the RNG.
// Without it randombytes may not be ready, so key generation must never run before it.
#include "core/sodium_init.hpp"

#include <cstdio>
#include <cstdlib>
#include <sodium.h>

namespace clusterpin {

void initialize_sodium() {
  // A function-local static runs sodium_init() once, thread-safely.
  static const bool initialized = [] {
    if (sodium_init() < 0) {
      std::fputs("fatal: libsodium could not be initialised (no usable random source?)\n", stderr);
      std::abort();
    }
    return true;
  }();
  (void)initialized;
}

}  // namespace clusterpin
