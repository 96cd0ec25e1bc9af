// Durations in Go's text form, as service.json writes them ("1m0s", "300ms", "-1.5h").
// parse_go_duration accepts exactly what Go's time.ParseDuration accepts (units ns us µs μs ms
// s m h, fractions, signs, a bare "0") and refuses values beyond int64 nanoseconds;
// format_go_duration prints exactly what Go's Duration.String() prints.
#pragma once

#include <chrono>
#include <string>
#include <string_view>

#include "core/result.hpp"

namespace clusterpin {

Result<std::chrono::nanoseconds> parse_go_duration(std::string_view text);
std::string format_go_duration(std::chrono::nanoseconds duration);

}  // namespace clusterpin
