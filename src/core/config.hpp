// service.json: every section and default of a clusterpin peer's configuration, how it is written
// by `clusterpin init`, and how it is loaded and checked. One field list (visit_fields in
// config.cpp) drives writing, reading and the unknown-key check, so they cannot disagree.
// Section and key names follow IPFS Cluster's Raft mode so its documentation carries over.
#pragma once

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "core/bytes.hpp"
#include "core/result.hpp"

namespace clusterpin {

using std::chrono::nanoseconds;

struct ClusterConfig {
  std::string id;           // peer id, "12D3KooW..."
  std::string private_key;  // base64 libp2p protobuf Ed25519 private key
  std::string secret;       // 64 hex chars (32 bytes); empty only with an explicit insecure flag
  std::string peername;
  std::vector<std::string> peers;      // multiaddrs of the other peers (with /p2p/<id>)
  std::vector<std::string> bootstrap;  // multiaddrs to join through on start
  bool leave_on_shutdown = false;
  std::vector<std::string> listen_multiaddress{"/ip4/0.0.0.0/tcp/9096"};
  std::vector<std::string> announce_multiaddress;
  nanoseconds state_sync_interval = std::chrono::minutes(5);
  nanoseconds ipfs_sync_interval = std::chrono::seconds(130);
  nanoseconds pin_recover_interval = std::chrono::minutes(12);
  std::int64_t replication_factor_min = -1;
  std::int64_t replication_factor_max = -1;
  nanoseconds monitor_ping_interval = std::chrono::seconds(15);
  nanoseconds peer_watch_interval = std::chrono::seconds(5);
  bool disable_repinning = false;
  // How long an allocated peer may be down before its pins are re-allocated.
  nanoseconds repin_grace_period = std::chrono::minutes(1);
};

struct RaftConfig {
  nanoseconds wait_for_leader_timeout = std::chrono::seconds(15);
  nanoseconds network_timeout = std::chrono::seconds(10);
  std::int64_t commit_retries = 1;
  nanoseconds commit_retry_delay = std::chrono::milliseconds(200);
  std::int64_t backups_rotate = 6;
  std::string data_folder;  // empty: <config dir>/clusterpin-data; relative: under <config dir>
  nanoseconds heartbeat_timeout = std::chrono::seconds(1);
  nanoseconds election_timeout = std::chrono::seconds(1);
  nanoseconds commit_timeout = std::chrono::milliseconds(50);
  std::int64_t max_append_entries = 64;
  std::int64_t trailing_logs = 10240;
  nanoseconds snapshot_interval = std::chrono::minutes(2);
  std::int64_t snapshot_threshold = 8192;
  nanoseconds leader_lease_timeout = std::chrono::milliseconds(500);
};

struct RestApiConfig {
  std::string http_listen_multiaddress = "/ip4/127.0.0.1/tcp/9094";
  nanoseconds read_timeout{0};
  nanoseconds read_header_timeout = std::chrono::seconds(5);
  nanoseconds write_timeout{0};
  nanoseconds idle_timeout = std::chrono::minutes(2);
  std::int64_t max_header_bytes = 4096;
  std::optional<std::map<std::string, std::string>> basic_auth_credentials;  // null: no auth
  std::map<std::string, std::string> headers;
  std::vector<std::string> cors_allowed_origins{"*"};
  std::vector<std::string> cors_allowed_methods{"GET"};
  std::vector<std::string> cors_allowed_headers;
  std::vector<std::string> cors_exposed_headers{"Content-Type", "X-Stream-Output",
                                                "X-Chunked-Output", "X-Content-Length"};
  bool cors_allow_credentials = true;
  nanoseconds cors_max_age{0};
};

struct IpfsHttpConfig {
  std::string node_multiaddress = "/ip4/127.0.0.1/tcp/5001";
  nanoseconds connect_swarms_delay = std::chrono::seconds(30);
  nanoseconds ipfs_request_timeout = std::chrono::minutes(5);
  nanoseconds pin_timeout = std::chrono::minutes(2);  // no-progress timeout, not a total
  nanoseconds unpin_timeout = std::chrono::hours(3);
  nanoseconds repogc_timeout = std::chrono::hours(24);
  bool unpin_disable = false;
};

struct PinTrackerConfig {
  std::int64_t max_pin_queue_size = 1000000;
  std::int64_t concurrent_pins = 10;
  nanoseconds priority_pin_max_age = std::chrono::hours(24);
  std::int64_t priority_pin_max_retries = 5;
};

struct MonitorConfig {
  nanoseconds check_interval = std::chrono::seconds(15);
};

struct AllocatorConfig {
  std::vector<std::string> allocate_by{"tag:group", "freespace"};
};

struct InformerConfig {
  nanoseconds disk_metric_ttl = std::chrono::seconds(30);
  std::string disk_metric_type = "freespace";
  nanoseconds tags_metric_ttl = std::chrono::seconds(30);
  std::map<std::string, std::string> tags{{"group", "default"}};
};

struct ServiceConfig {
  ClusterConfig cluster;
  RaftConfig raft;
  RestApiConfig restapi;
  IpfsHttpConfig ipfshttp;
  PinTrackerConfig tracker;
  MonitorConfig monitor;
  AllocatorConfig allocator;
  InformerConfig informer;
};

struct ConfigLoadOptions {
  // An empty cluster.secret lets anyone join; refused unless the user says so explicitly.
  bool allow_empty_secret = false;
};

struct LoadedConfig {
  ServiceConfig config;
  std::vector<std::string> warnings;  // unknown keys and keys with no effect; never fatal
};

// Pretty JSON (2-space indent) with every section and key.
std::string config_to_json(const ServiceConfig& config);

// Parses and checks service.json text. `origin` names the file in messages. On failure the error
// lists every bad value, one per line: "<origin>: <json.path>: <value> <why>; accepted: ...".
// The data folder of a peer: consensus.raft.data_folder, a relative one taken under the config
// folder (as IPFS Cluster does, so the daemon and the state tools find the same folder from any
// working directory), or <config dir>/clusterpin-data when it is empty.
std::filesystem::path data_folder_path(std::string_view data_folder, const std::filesystem::path& config_dir);

Result<LoadedConfig> parse_config(std::string_view json, std::string_view origin,
                                  const ConfigLoadOptions& options = {});

// The 32 bytes of a 64-hex-char secret.
Result<Bytes> decode_secret(std::string_view hex);

}  // namespace clusterpin
