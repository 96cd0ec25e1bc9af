// Compact binary encoding of Raft messages (for the wire) and of membership-change entries (for
// the log). Integers are LEB128 varints, strings are length-prefixed. decode() never trusts its
// input: any truncated, oversized or malformed byte string yields an Error, never a crash.
#pragma once

#include <string>
#include <string_view>

#include "core/raft/message.hpp"
#include "core/raft/types.hpp"
#include "core/result.hpp"

namespace clusterpin::raft {

std::string encode(const Message& message);
Result<Message> decode(std::string_view bytes);

// The payload of an EntryType::ConfChange entry: the change and the configuration it yields.
struct ConfEntry {
  ConfChange change;
  ConfState conf;
};
std::string encode_conf_entry(const ConfEntry& entry);
Result<ConfEntry> decode_conf_entry(std::string_view bytes);

}  // namespace clusterpin::raft
