// Checks a raft::Config before a core is built from it, naming the field, the value and the
// accepted range in the error.
#include "core/raft/config.hpp"

#include <fmt/format.h>

namespace clusterpin::raft {

namespace {
Error out_of_range(const char* field, long long value, const char* accepted) {
  return make_error(fmt::format("raft config: {}: {} is out of range ({})", field, value, accepted));
}
}  // namespace

Status validate(const Config& c) {
  if (c.id.empty()) return make_error("raft config: id: empty (a peer id is required)");
  if (c.heartbeat_ticks < 1) return out_of_range("heartbeat_ticks", c.heartbeat_ticks, ">= 1");
  if (c.election_ticks <= c.heartbeat_ticks)
    return out_of_range("election_ticks", c.election_ticks, "> heartbeat_ticks");
  if (c.lease_ticks < 1 || c.lease_ticks > c.election_ticks)
    return out_of_range("lease_ticks", c.lease_ticks, "1..election_ticks");
  if (c.max_append_bytes < 1)
    return out_of_range("max_append_bytes", static_cast<long long>(c.max_append_bytes), ">= 1");
  if (c.max_append_entries < 1)
    return out_of_range("max_append_entries", static_cast<long long>(c.max_append_entries), ">= 1");
  if (c.max_inflight < 1)
    return out_of_range("max_inflight", static_cast<long long>(c.max_inflight), ">= 1");
  if (c.snapshot_interval_ticks < 0)
    return out_of_range("snapshot_interval_ticks", c.snapshot_interval_ticks, ">= 0");
  if (c.snapshot_chunk_size < 1)
    return out_of_range("snapshot_chunk_size", static_cast<long long>(c.snapshot_chunk_size),
                        ">= 1");
  return Status();
}

}  // namespace clusterpin::raft
