// The version of this clusterpin build (from meson's project version).
#pragma once
#include <string_view>

namespace clusterpin {
std::string_view version();
}
