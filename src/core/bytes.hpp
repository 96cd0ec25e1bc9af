// Byte containers shared by the domain types: an owning Bytes vector and a read-only ByteView.
// Binary forms (CIDs, multihashes, multiaddrs, keys) travel as these so that equality is plain
// byte equality and no text form is ever treated as canonical.
#pragma once

#include <cstdint>
#include <span>
#include <string_view>
#include <vector>

namespace clusterpin {

using Bytes = std::vector<std::uint8_t>;
using ByteView = std::span<const std::uint8_t>;

// The bytes of a text, e.g. to hash or sign a string.
inline ByteView as_bytes(std::string_view text) {
  return {reinterpret_cast<const std::uint8_t*>(text.data()), text.size()};
}

// The bytes as characters, e.g. to bind as an SQLite blob or write as a wire string.
inline std::string_view as_chars(ByteView bytes) {
  return {reinterpret_cast<const char*>(bytes.data()), bytes.size()};
}

inline Bytes to_bytes(std::string_view text) {
  ByteView view = as_bytes(text);
  return {view.begin(), view.end()};
}

}  // namespace clusterpin
