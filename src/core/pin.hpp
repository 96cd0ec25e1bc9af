// A Pin of the shared pinset: the CID, where it is allocated, its replication factors and the
// user's options, with the three forms it takes: compact binary (SQLite rows and Raft entries),
// the REST API's JSON object (IPFS Cluster v1 keys), and the pin-options query of
// POST /pins/{cid}. A PinsetOp is one change to the pinset as carried in a Raft entry.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "core/cid.hpp"
#include "core/peer_id.hpp"
#include "core/result.hpp"
#include "core/time_format.hpp"

namespace clusterpin {

class TextBuffer;  // core/json_text.hpp

enum class PinType : std::uint8_t { data = 1, meta = 2, cluster_dag = 3, shard = 4 };
enum class PinMode : std::uint8_t { recursive = 0, direct = 1 };

std::string_view pin_type_name(PinType type);  // "pin", "meta-pin", "clusterdag-pin", "shard-pin"
std::string_view pin_mode_name(PinMode mode);  // "recursive", "direct"

struct ReplicationFactors {
  std::int64_t min = 0;
  std::int64_t max = 0;
};

struct PinOptions {
  std::int64_t replication_factor_min = 0;  // 0: the cluster's default
  std::int64_t replication_factor_max = 0;
  std::string name;
  PinMode mode = PinMode::recursive;
  std::uint64_t shard_size = 0;
  std::vector<PeerId> user_allocations;
  UnixNanos expire_at = kZeroTime;
  std::map<std::string, std::string> metadata;
  std::optional<Cid> pin_update;
  std::vector<std::string> origins;  // multiaddrs

  // The replication factors, a 0 (a request that left it out, a pin imported without it) read
  // as the cluster's default, as IPFS Cluster's setupPin reads them for a new pin and a re-pin.
  ReplicationFactors factors_or(ReplicationFactors defaults) const {
    return {replication_factor_min != 0 ? replication_factor_min : defaults.min,
            replication_factor_max != 0 ? replication_factor_max : defaults.max};
  }
};

struct Pin {
  explicit Pin(Cid c) : cid(std::move(c)) {}
  Cid cid;
  PinType type = PinType::data;
  std::vector<PeerId> allocations;  // empty: every peer
  std::int64_t max_depth = -1;      // -1 recursive, 0 direct
  std::optional<Cid> reference;
  UnixNanos timestamp = kZeroTime;  // set by the peer that proposes the pin
  PinOptions options;

  bool everywhere() const { return allocations.empty(); }
  bool allocated_to(const PeerId& peer) const;
};

std::string encode_pin(const Pin& pin);
Result<Pin> decode_pin(std::string_view bytes);
// A pin as a store answers a lookup: an error, absent (nullopt), or encoded bytes to decode.
Result<std::optional<Pin>> decode_stored_pin(const Result<std::optional<std::string>>& stored);
// What an encoded pin asks of IPFS (its mode and depth), read without decoding the rest: a
// reconcile compares it for every pin a tracker records. Refused as decode_pin would refuse
// the fields before it.
struct PinIpfsForm {
  PinMode mode = PinMode::recursive;
  std::int64_t max_depth = -1;
  bool operator==(const PinIpfsForm&) const = default;
  static PinIpfsForm of(const Pin& pin) { return {pin.options.mode, pin.max_depth}; }
};
Result<PinIpfsForm> stored_pin_ipfs_form(std::string_view bytes);

// The REST API object (keys as IPFS Cluster v1 writes them), compact, as one line.
std::string pin_to_json(const Pin& pin);
// The same object for a pin as encode_pin stored it, appended to `out` without building a Pin
// (listings, backups and exports write one per pin). A record decode_pin refuses for its
// layout (version, lengths, counts, type, mode, trailing bytes) is refused with decode_pin's
// error and `out` left as it was; the CIDs and peer IDs in it are written as stored.
// `indent` > 0 writes the object over several lines, `indent` spaces a level (at most
// kMaxPinJsonIndent: more is taken as that), byte for byte as indent_json
// (core/json_text.hpp) would re-indent the compact line.
constexpr int kMaxPinJsonIndent = 8;
Status append_stored_pin_json(std::string& out, std::string_view bytes, int indent = 0);
// The same into a TextBuffer (core/json_text.hpp): what listings use, pin after pin.
Status append_stored_pin_json(TextBuffer& out, std::string_view bytes, int indent = 0);
// Reads what pin_to_json writes (state import, REST clients).
Result<Pin> pin_from_json(std::string_view json);

using QueryParams = std::vector<std::pair<std::string, std::string>>;
// Pin options from a query (replication, replication-min, replication-max, name, mode,
// shard-size, user-allocations, expire-at, expire-in, meta-<key>, pin-update, origins).
Result<PinOptions> pin_options_from_query(const QueryParams& query, UnixNanos now);

// The expiry a Go duration `text` (expire-in) after `now`: an error naming it when
// it is not positive, or ends past the latest time a pin can hold (2262-04-11, the end of
// nanoseconds since 1970 in 64 bits).
Result<UnixNanos> expiry_after(UnixNanos now, std::string_view text);

// One change of the pinset as a Raft entry carries it; an entry holds a batch of them.
struct PinsetOp {
  enum class Kind : std::uint8_t { pin = 1, unpin = 2 };
  Kind kind;
  Pin pin;  // for unpin only pin.cid matters
  // When set, the op applies only if the pinset holds this CID with this pin_version (see
  // core/pin_version.hpp); otherwise it changes nothing. Encoded as kinds 3 and 4.
  std::optional<std::uint64_t> if_version = std::nullopt;
};

std::string encode_ops(std::span<const PinsetOp> ops);
class WireWriter;
// The same in two steps, for a caller that bounds an entry's size as it gathers ops: each op
// appended to `w` by encode_op_into, then the entry of those `count` ops.
void encode_op_into(WireWriter& w, const PinsetOp& op);
std::string encode_ops_entry(std::size_t count, std::string_view encoded_ops);
Result<std::vector<PinsetOp>> decode_ops(std::string_view bytes);

}  // namespace clusterpin
