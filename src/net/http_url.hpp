// Request-target handling: percent-decoding of paths, query strings split into key/value pairs
// (repeated keys kept in order, as Kubo's repeated `arg=` needs) and percent-encoding for
// building targets on the client side. Malformed escapes are refused, never passed through.
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace clusterpin::net {

using QueryPairs = std::vector<std::pair<std::string, std::string>>;

// Decodes %XX escapes; with `plus_is_space` also '+' -> ' ' (form/query encoding).
// Nothing when an escape is truncated or not hexadecimal.
std::optional<std::string> percent_decode(std::string_view text, bool plus_is_space);

// Splits "a=1&b=2&a=3" into decoded pairs in order; a key without '=' gets an empty value.
// Nothing when any component has a malformed escape.
std::optional<QueryPairs> parse_query(std::string_view raw_query);

// Encodes everything except RFC 3986 unreserved characters (and '/' when `keep_slash`).
std::string percent_encode(std::string_view text, bool keep_slash = false);

// Builds "path?k=v&k2=v2" with every key and value encoded; `path` is used as given.
std::string make_target(std::string_view path, const QueryPairs& query);

// The segments of a raw (still encoded) path, each decoded on its own: the path is split on '/'
// before decoding, so an encoded slash ("a%2Fb") stays inside its segment ("a/b"). Empty
// segments (a leading or trailing '/', "//") are skipped. Nothing when a segment has a malformed
// escape.
std::optional<std::vector<std::string>> path_segments(std::string_view raw_path);

// A request target split into its path (raw and decoded) and its raw and decoded query.
struct ParsedTarget {
  std::string path;      // decoded: an encoded '/' can no longer be told from a separator
  std::string raw_path;  // as sent, escapes kept: what path_segments splits
  std::string raw_query;
  QueryPairs query;
};

// Accepts origin-form ("/a/b?x=1"), absolute-form ("http://host/a?x=1") and "*".
// Nothing when the target has another form or a malformed escape.
std::optional<ParsedTarget> parse_target(std::string_view target);

}  // namespace clusterpin::net
