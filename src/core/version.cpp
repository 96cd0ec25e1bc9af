// The version string compiled into the binary.
#include "core/version.hpp"

namespace clusterpin {

std::string_view version() { return CLUSTERPIN_VERSION; }

}  // namespace clusterpin
