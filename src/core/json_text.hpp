// JSON text without a document: appending escaped strings, and re-indenting a compact JSON text
// for people. Both are hot in listings of millions of pins (`pin ls --enc json`), where building
// a document per line cost more than everything else together.
#pragma once

#include <optional>
#include <string>
#include <string_view>

namespace clusterpin {

// Appends s as a quoted JSON string: `"` and `\` escaped, control characters as \b \f \n \r \t
// or \u00XX, every other byte (UTF-8 included) as it is.
void append_json_string(std::string& out, std::string_view s);
// append_json_string written at `p` (at most 6 * size + 2 bytes); returns the end.
char* write_json_string(char* p, std::string_view s);

// The same JSON text laid out one member or element per line, `width` spaces per level, `": "`
// between key and value, empty objects and arrays as {} and [] (the layout of RapidJSON's
// PrettyWriter). Strings and numbers are copied as written. nullopt when `json` is not exactly
// one well-formed JSON value (surrounding whitespace allowed).
std::optional<std::string> indent_json(std::string_view json, int width);
// indent_json appended to `out`, which a caller can reuse line after line (no allocation per
// line in a listing); false, with `out` as it was, when `json` is not well-formed.
bool append_indented_json(std::string& out, std::string_view json, int width);

}  // namespace clusterpin
