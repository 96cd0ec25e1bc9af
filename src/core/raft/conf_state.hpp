// Membership arithmetic on ConfState: who is a voter or a learner, and the configuration that
// results from one ConfChange. Pure functions, shared by the Node files.
#pragma once

#include <algorithm>
#include <vector>

#include "core/raft/types.hpp"

namespace clusterpin::raft {

inline bool contains(const std::vector<NodeId>& ids, const NodeId& id) {
  return std::find(ids.begin(), ids.end(), id) != ids.end();
}

// A voter or a learner of `conf`.
inline bool is_member(const ConfState& conf, const NodeId& id) {
  return contains(conf.voters, id) || contains(conf.learners, id);
}

inline ConfState apply_change(ConfState conf, const ConfChange& change) {
  auto erase = [](std::vector<NodeId>& ids, const NodeId& id) {
    ids.erase(std::remove(ids.begin(), ids.end(), id), ids.end());
  };
  switch (change.type) {
    case ConfChangeType::Bootstrap: break;
    case ConfChangeType::AddLearner: conf.learners.push_back(change.node); break;
    case ConfChangeType::PromoteLearner:
      erase(conf.learners, change.node);
      conf.voters.push_back(change.node);
      break;
    case ConfChangeType::RemoveNode:
      erase(conf.voters, change.node);
      erase(conf.learners, change.node);
      break;
  }
  return conf;
}

}  // namespace clusterpin::raft
