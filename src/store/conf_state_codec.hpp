// The one place where a Raft ConfState is turned into bytes for raft.db and back.
// Format: UTF-8 text, one member per line, "<role> <node id>\n", roles "voter" and "learner", in
// the order of the vectors. A field added to ConfState gets a new role/key here and nowhere else.
// Decoding refuses unknown keys: silently dropping part of a membership would be unsafe.
#pragma once

#include <string>
#include <string_view>

#include "core/raft/types.hpp"
#include "core/result.hpp"

namespace clusterpin::store {

std::string encode_conf_state(const raft::ConfState& conf);
Result<raft::ConfState> decode_conf_state(std::string_view bytes);

}  // namespace clusterpin::store
