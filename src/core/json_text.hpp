// JSON text without a document: appending escaped strings, and re-indenting a compact JSON text
// for people. Both are hot in listings of millions of pins (`pin ls --enc json`), where building
// a document per line cost more than everything else together.
#pragma once

#include <algorithm>
#include <cstddef>
#include <optional>
#include <string>
#include <string_view>

namespace clusterpin {

// Text written in place into a buffer that only grows: the first `size()` bytes are the text,
// the rest is room whose bytes are unspecified. A writer that claims a bound before writing
// (room(n), then written(end)) pays for zero-filling only what the buffer never had; with a
// std::string, each resize to the bound fills it again (a listing writes millions of pins).
class TextBuffer {
 public:
  // At least n bytes of room after the text; returns where it starts.
  char* room(std::size_t n) {
    if (bytes_.size() - used_ < n) bytes_.resize(std::max(used_ + n, 2 * bytes_.size()));
    return bytes_.data() + used_;
  }
  // The text now ends at `end` (inside the room last claimed).
  void written(const char* end) { used_ = static_cast<std::size_t>(end - bytes_.data()); }
  void append(std::string_view text) {
    std::copy(text.begin(), text.end(), room(text.size()));
    used_ += text.size();
  }
  void clear() { used_ = 0; }
  std::size_t size() const { return used_; }
  bool empty() const { return used_ == 0; }
  std::string_view view() const { return {bytes_.data(), used_}; }

 private:
  std::string bytes_;
  std::size_t used_ = 0;
};

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
