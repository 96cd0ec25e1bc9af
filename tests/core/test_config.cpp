// service.json: what init writes loads back unchanged, and every bad value is reported with its
// JSON path, the value given and what is accepted.
#define DOCTEST_CONFIG_IMPLEMENT_WITH_MAIN
#include <doctest/doctest.h>

#include <string>
#include <tuple>
#include <vector>

#include <rapidjson/document.h>

#include "core/config.hpp"

using namespace clusterpin;

namespace {

const std::string kSecret = "2588b80d5cb05374fa142aed6cbb047d1f4ef8ef15e37eba68c65b9d30df67ed";

ServiceConfig sample() {
  ServiceConfig c;
  c.cluster.id = "12D3KooWKy1QdKcmjXrUbqsvHdNkQqvBLtXSQHxa2JZMqz39ZKzn";
  c.cluster.private_key = "CAESQA==";
  c.cluster.secret = kSecret;
  c.cluster.peername = "alpha";
  return c;
}

// Replaces `from` (which must occur once) in the JSON written for the sample config.
std::string edited(const std::string& from, const std::string& to) {
  std::string json = config_to_json(sample());
  auto pos = json.find(from);
  REQUIRE_MESSAGE(pos != std::string::npos, from);
  json.replace(pos, from.size(), to);
  return json;
}

std::string load_error(const std::string& json, ConfigLoadOptions options = {}) {
  auto loaded = parse_config(json, "service.json", options);
  REQUIRE_FALSE(loaded.ok());
  return loaded.error().message;
}

}  // namespace

TEST_CASE("written config has every section and key of Raft mode") {
  rapidjson::Document doc;
  doc.Parse(config_to_json(sample()).c_str());
  REQUIRE(doc.IsObject());
  for (const char* key :
       {"id", "private_key", "secret", "peername", "peers", "bootstrap", "leave_on_shutdown",
        "listen_multiaddress", "state_sync_interval", "ipfs_sync_interval", "pin_recover_interval",
        "replication_factor_min", "replication_factor_max", "monitor_ping_interval",
        "disable_repinning"}) {
    CHECK_MESSAGE(doc["cluster"].HasMember(key), key);
  }
  for (const char* key :
       {"wait_for_leader_timeout", "network_timeout", "commit_retries", "commit_retry_delay",
        "heartbeat_timeout", "election_timeout", "commit_timeout", "max_append_entries",
        "trailing_logs", "snapshot_interval", "snapshot_threshold", "leader_lease_timeout",
        "backups_rotate"}) {
    CHECK_MESSAGE(doc["consensus"]["raft"].HasMember(key), key);
  }
  CHECK(doc["api"]["restapi"]["http_listen_multiaddress"].GetString() ==
        std::string("/ip4/127.0.0.1/tcp/9094"));
  CHECK(doc["ipfs_connector"]["ipfshttp"]["node_multiaddress"].GetString() ==
        std::string("/ip4/127.0.0.1/tcp/5001"));
  CHECK(doc["pin_tracker"]["stateless"].HasMember("concurrent_pins"));
  CHECK(doc["monitor"]["pubsubmon"].HasMember("check_interval"));
  CHECK(doc["allocator"]["balanced"].HasMember("allocate_by"));
  CHECK(doc["informer"]["disk"].HasMember("metric_ttl"));
  CHECK(doc["informer"]["tags"]["tags"]["group"].GetString() == std::string("default"));
}

TEST_CASE("durations are written the way Go prints them") {
  std::string json = config_to_json(sample());
  CHECK(json.find("\"state_sync_interval\": \"5m0s\"") != std::string::npos);
  CHECK(json.find("\"ipfs_sync_interval\": \"2m10s\"") != std::string::npos);
  CHECK(json.find("\"commit_retry_delay\": \"200ms\"") != std::string::npos);
  CHECK(json.find("\"unpin_timeout\": \"3h0m0s\"") != std::string::npos);
}

TEST_CASE("a written config loads back with the same values and no warnings") {
  ServiceConfig original = sample();
  original.cluster.peers = {"/ip4/10.0.0.2/tcp/9096/p2p/12D3KooWKy1QdKcmjXrUbqsvHdNkQqvBLtXSQHxa2JZMqz39ZKzn"};
  original.cluster.replication_factor_min = 2;
  original.cluster.replication_factor_max = 3;
  original.raft.election_timeout = std::chrono::milliseconds(1500);
  original.restapi.basic_auth_credentials = std::map<std::string, std::string>{{"u", "p"}};
  auto loaded = parse_config(config_to_json(original), "service.json");
  REQUIRE_MESSAGE(loaded.ok(), (loaded.ok() ? "" : loaded.error().message));
  CHECK(loaded->warnings.empty());
  CHECK(config_to_json(loaded->config) == config_to_json(original));
  CHECK(loaded->config.raft.election_timeout == std::chrono::milliseconds(1500));
}

TEST_CASE("malformed JSON is reported with line and column") {
  std::string json = "{\n  \"cluster\": {\n    \"peername\": \"a\",,\n  }\n}\n";
  std::string err = load_error(json);
  CHECK(err.find("service.json: malformed JSON at line 3, column") != std::string::npos);
}

TEST_CASE("a duration that is not a Go duration names the path and the value") {
  std::string err = load_error(edited("\"election_timeout\": \"1s\"", "\"election_timeout\": \"5\""));
  CHECK(err.starts_with("service.json: consensus.raft.election_timeout: \"5\" is not a duration: "));
  CHECK(err.find("missing unit") != std::string::npos);
}

TEST_CASE("every bad value is reported, not just the first") {
  std::string json = edited("\"election_timeout\": \"1s\"", "\"election_timeout\": \"soon\"");
  auto pos = json.find("\"commit_retries\": 1");
  json.replace(pos, 19, "\"commit_retries\": \"x\"");
  std::string err = load_error(json);
  CHECK(err.find("consensus.raft.election_timeout: \"soon\"") != std::string::npos);
  CHECK(err.find("consensus.raft.commit_retries: \"x\" is not an integer") != std::string::npos);
}

TEST_CASE("a value that is not an integer is told with the key's range") {
  std::string json = edited("\"commit_retries\": 1", "\"commit_retries\": 1.5");
  std::string err = load_error(json);
  CHECK(err.find("consensus.raft.commit_retries: 1.5 is not an integer; accepted: an integer from "
                 "0 to 1000") != std::string::npos);
  err = load_error(edited("\"replication_factor_min\": -1", "\"replication_factor_min\": \"2\""));
  CHECK(err.find("cluster.replication_factor_min: \"2\" is not an integer; accepted: -1 (every "
                 "peer) or an integer >= 1") != std::string::npos);
  CHECK(err.find("mixes -1") == std::string::npos);  // said once, not again as a bad pair
}

TEST_CASE("a secret that is not 64 hex chars is refused") {
  std::string short_secret = load_error(edited(kSecret, "abcd"));
  CHECK(short_secret.find("cluster.secret: \"abcd\" is 4 characters long; accepted: 64 hex") !=
        std::string::npos);
  std::string not_hex = load_error(edited(kSecret, std::string(64, 'z')));
  CHECK(not_hex.find("is not hex") != std::string::npos);
}

TEST_CASE("an empty secret is refused unless explicitly allowed as insecure") {
  std::string json = edited(kSecret, "");
  CHECK(load_error(json).find("--insecure-empty-secret") != std::string::npos);
  ConfigLoadOptions insecure;
  insecure.allow_empty_secret = true;
  CHECK(parse_config(json, "service.json", insecure).ok());
}

TEST_CASE("replication factors: min > max and mixing -1 are refused") {
  auto with = [](const std::string& min, const std::string& max) {
    std::string json = edited("\"replication_factor_min\": -1", "\"replication_factor_min\": " + min);
    auto pos = json.find("\"replication_factor_max\": -1");
    json.replace(pos, 28, "\"replication_factor_max\": " + max);
    return json;
  };
  CHECK(load_error(with("3", "2")).find("min 3 is greater than max 2") != std::string::npos);
  CHECK(load_error(with("-1", "2")).find("mixes -1 with a number") != std::string::npos);
  CHECK(load_error(with("0", "2")).find("is not valid") != std::string::npos);
  CHECK(parse_config(with("2", "3"), "service.json").ok());
}

TEST_CASE("a multiaddr that does not parse is refused with the path") {
  std::string err = load_error(edited("/ip4/127.0.0.1/tcp/9094", "/ip4/127.0.0/tcp/9094"));
  CHECK(err.find("api.restapi.http_listen_multiaddress: \"/ip4/127.0.0/tcp/9094\" is not a "
                 "multiaddr") != std::string::npos);
}

TEST_CASE("unknown keys are warnings, not errors") {
  std::string json = edited("\"peername\": \"alpha\",", "\"peername\": \"alpha\", \"colour\": 1,");
  auto loaded = parse_config(json, "service.json");
  REQUIRE(loaded.ok());
  REQUIRE(loaded->warnings.size() == 1);
  CHECK(loaded->warnings[0] == "service.json: cluster.colour: unknown key (ignored)");
}

TEST_CASE("IPFS Cluster keys without meaning here load with a warning that says so") {
  std::string json = edited("\"peername\": \"alpha\",",
                            "\"peername\": \"alpha\", \"mdns_interval\": \"10s\",");
  auto loaded = parse_config(json, "service.json");
  REQUIRE(loaded.ok());
  REQUIRE(loaded->warnings.size() == 1);
  CHECK(loaded->warnings[0].find("cluster.mdns_interval: has no effect") != std::string::npos);
}

TEST_CASE("Raft and HTTP tunables clusterpin has no use for warn only when set to something else") {
  auto as_written = parse_config(config_to_json(sample()), "service.json");
  REQUIRE(as_written.ok());
  CHECK(as_written->warnings.empty());
  std::string json = edited("\"commit_timeout\": \"50ms\"", "\"commit_timeout\": \"200ms\"");
  auto loaded = parse_config(json, "service.json");
  REQUIRE(loaded.ok());
  REQUIRE(loaded->warnings.size() == 1);
  CHECK(loaded->warnings[0].find("consensus.raft.commit_timeout: has no effect in clusterpin") != std::string::npos);
  ServiceConfig c = sample();
  c.restapi.write_timeout = std::chrono::seconds(30);
  c.cluster.peer_watch_interval = std::chrono::seconds(1);
  c.raft.leader_lease_timeout = std::chrono::seconds(2);
  auto three = parse_config(config_to_json(c), "service.json");
  REQUIRE(three.ok());
  CHECK(three->warnings.size() == 3);
}

TEST_CASE("missing keys keep their defaults") {
  auto loaded = parse_config("{\"cluster\": {\"secret\": \"" + kSecret + "\"}}", "service.json");
  REQUIRE(loaded.ok());
  CHECK(loaded->config.raft.snapshot_threshold == 8192);
  CHECK(loaded->config.cluster.monitor_ping_interval == std::chrono::seconds(15));
}

TEST_CASE("durations that would turn a timer off, spin it or round to 0 are refused naming what is accepted") {
  struct Case {
    std::string from, to, path, accepted;
  };
  for (const auto& c : std::vector<Case>{
           {R"("monitor_ping_interval": "15s")", R"("monitor_ping_interval": "1ns")", "cluster.monitor_ping_interval", "1ms"},
           {R"("monitor_ping_interval": "15s")", R"("monitor_ping_interval": "5ms")", "cluster.monitor_ping_interval", "100ms or more"},
           {R"("state_sync_interval": "5m0s")", R"("state_sync_interval": "0s")", "cluster.state_sync_interval", "100ms or more"},
           {R"("ipfs_sync_interval": "2m10s")", R"("ipfs_sync_interval": "1ms")", "cluster.ipfs_sync_interval", "100ms or more"},
           {R"("check_interval": "15s")", R"("check_interval": "0s")", "monitor.pubsubmon.check_interval", "100ms or more"},
           {R"("network_timeout": "10s")", R"("network_timeout": "0s")", "consensus.raft.network_timeout", "100ms or more"},
           {R"("wait_for_leader_timeout": "15s")", R"("wait_for_leader_timeout": "0s")", "consensus.raft.wait_for_leader_timeout", "100ms or more"},
           {R"("pin_timeout": "2m0s")", R"("pin_timeout": "500us")", "ipfs_connector.ipfshttp.pin_timeout", ">= 1ms"},
           {R"("heartbeat_timeout": "1s")", R"("heartbeat_timeout": "30s")", "consensus.raft.election_timeout", "election_timeout >= heartbeat_timeout"},
       }) {
    CAPTURE(c.to);
    std::string err = load_error(edited(c.from, c.to));
    CHECK(err.find("service.json: " + c.path + ": ") != std::string::npos);
    CHECK(err.find(c.accepted) != std::string::npos);
  }
  // Both metric TTLs: a TTL of 0s expired every metric at once.
  std::string json = config_to_json(sample());
  for (auto pos = json.find(R"("metric_ttl": "30s")"); pos != std::string::npos; pos = json.find(R"("metric_ttl": "30s")")) {
    json.replace(pos, 19, R"("metric_ttl": "0s")");
  }
  std::string err = load_error(json);
  CHECK(err.find("informer.disk.metric_ttl") != std::string::npos);
  CHECK(err.find("informer.tags.metric_ttl") != std::string::npos);
}

TEST_CASE("integers out of their range are refused with the range") {
  for (const auto& [from, to, path] : std::vector<std::tuple<std::string, std::string, std::string>>{
           {R"("backups_rotate": 6)", R"("backups_rotate": 0)", "consensus.raft.backups_rotate"},
           {R"("commit_retries": 1)", R"("commit_retries": 4294967296)", "consensus.raft.commit_retries"},
           {R"("max_header_bytes": 4096)", R"("max_header_bytes": -1024)", "api.restapi.max_header_bytes"},
           {R"("priority_pin_max_retries": 5)", R"("priority_pin_max_retries": -1)", "pin_tracker.stateless.priority_pin_max_retries"},
       }) {
    CAPTURE(to);
    std::string err = load_error(edited(from, to));
    CHECK(err.find("service.json: " + path + ": ") != std::string::npos);
    CHECK(err.find("accepted: an integer from") != std::string::npos);
  }
}

TEST_CASE("a key written twice is refused, not read as its first value") {
  std::string err = load_error(edited(R"("peername": "alpha",)", R"("peername": "alpha", "peername": "beta",)"));
  CHECK(err.find("service.json: cluster.peername: the key appears more than once") != std::string::npos);
}

TEST_CASE("a section that is not an object is refused once, naming it") {
  std::string json = config_to_json(sample());
  auto pos = json.find("\"informer\": {");
  REQUIRE(pos != std::string::npos);
  json = json.substr(0, pos) + "\"informer\": null, \"informer_was\": {" + json.substr(pos + 13);
  auto loaded = parse_config(json, "service.json");
  REQUIRE_FALSE(loaded.ok());
  CHECK(loaded.error().message.find("service.json: informer: null is not an object") != std::string::npos);
  CHECK(loaded.error().message.find("informer.disk") == std::string::npos);
}

TEST_CASE("allocate_by names only metrics the peers publish") {
  std::string err = load_error(edited(R"("allocate_by": [)", R"("allocate_by": ["numpin", )"));
  CHECK(err.find("allocator.balanced.allocate_by: \"numpin\" is not a metric clusterpin publishes") !=
        std::string::npos);
  CHECK(err.find("tag:<name>") != std::string::npos);
  CHECK(parse_config(edited(R"("allocate_by": [)", R"("allocate_by": ["tag:region", )"), "service.json").ok());
}

TEST_CASE("listen addresses, credentials and headers that cannot work are refused") {
  std::string err = load_error(edited(R"("listen_multiaddress": [)", R"("listen_multiaddress": [], "was": [)"));
  CHECK(err.find("cluster.listen_multiaddress: [] names no address") != std::string::npos);
  auto two = parse_config(edited(R"("listen_multiaddress": [)",
                                 R"("listen_multiaddress": ["/ip4/0.0.0.0/tcp/9096", )"), "service.json");
  REQUIRE(two.ok());
  bool warned = false;
  for (const auto& w : two->warnings) warned |= w.find("only the first address") != std::string::npos;
  CHECK(warned);
  err = load_error(edited(R"("basic_auth_credentials": null)", R"("basic_auth_credentials": {"": ""})"));
  CHECK(err.find("api.restapi.basic_auth_credentials: an empty user name") != std::string::npos);
  err = load_error(edited(R"("headers": {})", R"("headers": {"Bad Name:": "v"})"));
  CHECK(err.find("api.restapi.headers: \"Bad Name:\" is not a header name") != std::string::npos);
}

TEST_CASE("a relative data folder is taken under the config folder") {
  CHECK(data_folder_path("", "/etc/cp") == std::filesystem::path("/etc/cp/clusterpin-data"));
  CHECK(data_folder_path("raft", "/etc/cp") == std::filesystem::path("/etc/cp/raft"));
  CHECK(data_folder_path("/srv/raft", "/etc/cp") == std::filesystem::path("/srv/raft"));
}
