// One place that initialises libsodium before the domain layer hashes, signs or draws random keys.
// Safe to call any number of times from any thread; a failure to initialise is fatal.
#pragma once

namespace clusterpin {

void initialize_sodium();

}  // namespace clusterpin
