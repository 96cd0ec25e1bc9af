// ConfState <-> text lines (format described in conf_state_codec.hpp).
// Node ids never contain spaces or newlines (peer ids are base58, simulation names are words);
// that is asserted on encode so a bad id cannot produce an ambiguous record.
#include "store/conf_state_codec.hpp"

#include <fmt/format.h>

namespace clusterpin::store {

namespace {
constexpr std::string_view kVoter = "voter";
constexpr std::string_view kLearner = "learner";

void append_member(std::string& out, std::string_view role, const raft::NodeId& id) {
  assert(!id.empty() && id.find_first_of(" \n") == std::string::npos &&
         "node ids are single words");
  out.append(role).append(" ").append(id).append("\n");
}
}  // namespace

std::string encode_conf_state(const raft::ConfState& conf) {
  std::string out;
  for (const auto& id : conf.voters) append_member(out, kVoter, id);
  for (const auto& id : conf.learners) append_member(out, kLearner, id);
  return out;
}

Result<raft::ConfState> decode_conf_state(std::string_view bytes) {
  raft::ConfState conf;
  while (!bytes.empty()) {
    size_t end = bytes.find('\n');
    if (end == std::string_view::npos)
      return make_error(
          fmt::format("membership record: line \"{}\" has no terminating newline", bytes));
    std::string_view line = bytes.substr(0, end);
    bytes.remove_prefix(end + 1);
    size_t space = line.find(' ');
    if (space == std::string_view::npos || space + 1 == line.size())
      return make_error(
          fmt::format("membership record: line \"{}\" is not \"<role> <node id>\"", line));
    std::string_view role = line.substr(0, space);
    std::string id(line.substr(space + 1));
    if (role == kVoter) {
      conf.voters.push_back(std::move(id));
    } else if (role == kLearner) {
      conf.learners.push_back(std::move(id));
    } else {
      return make_error(
          fmt::format("membership record: unknown role \"{}\" (accepted: voter, learner); written "
                      "by a newer clusterpin?",
                      role));
    }
  }
  return conf;
}

}  // namespace clusterpin::store
