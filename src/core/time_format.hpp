// Timestamps as the REST API writes them: RFC 3339 in UTC with Go's RFC3339Nano trimming
// ("2026-11-24T01:29:54.123Z", zero fraction omitted), and Go's zero time
// "0001-01-01T00:00:00Z" for "no time". Values are nanoseconds since the Unix epoch.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "core/result.hpp"

namespace clusterpin {

// Nanoseconds since 1970-01-01T00:00:00Z; kZeroTime stands for Go's zero time.
using UnixNanos = std::int64_t;
inline constexpr UnixNanos kZeroTime = INT64_MIN;

std::string format_rfc3339(UnixNanos t);
void append_rfc3339(std::string& out, UnixNanos t);  // format_rfc3339, appended to out
// format_rfc3339 written at `p` (at most kMaxRfc3339Length bytes); returns the end.
inline constexpr std::size_t kMaxRfc3339Length = 30;  // "2026-11-24T01:29:54.123456789Z"
char* write_rfc3339(char* p, UnixNanos t);
// Accepts "Z" or a numeric offset, with or without a fraction; returns kZeroTime for Go's zero.
Result<UnixNanos> parse_rfc3339(std::string_view text);

}  // namespace clusterpin
