// `clusterpin ipfs gc`: garbage collection of the peers' IPFS daemons (POST /ipfs/gc), as
// `ipfs-cluster-ctl ipfs gc`.
#include <string>

#include <fmt/core.h>
#include <rapidjson/document.h>

#include "cmd/api_client.hpp"
#include "cmd/applet.hpp"
#include "cmd/cli.hpp"

namespace clusterpin::cmd {
namespace {

void declare_gc(cxxopts::Options& o) {
  add_client_options(o);
  o.add_options()("local", "Only collect garbage in this peer's IPFS daemon");
}

std::string text_of(const rapidjson::Value& object, const char* name) {
  auto it = object.FindMember(name);
  return it != object.MemberEnd() && it->value.IsString() ? it->value.GetString() : "";
}

// Each peer (its name, or its id), then the CIDs its IPFS removed; a peer that failed is
// named with its error, and the exit code says so.
int run_gc(const cxxopts::ParseResult& args) {
  auto client = ApiClient::from_args(args);
  if (!client) return usage_error("ipfs gc", client.error().message);
  std::string target = flag(args, "local") ? "/ipfs/gc?local=true" : "/ipfs/gc";
  auto response = client->call("POST", target);
  if (!response) return transport_error("ipfs gc", response.error());
  if (int code = check_response(*response, client->json_output()); code != kExitOk) return code;
  rapidjson::Document d;
  d.Parse(response->body.data(), response->body.size());
  auto peers = d.IsObject() ? d.FindMember("peer_map") : rapidjson::Value::MemberIterator();
  if (!d.IsObject() || peers == d.MemberEnd() || !peers->value.IsObject()) {
    fmt::print(stderr, "clusterpin ipfs gc: the answer is not a GlobalRepoGC object: {}\n",
               response->body.substr(0, 200));
    return kExitApiError;
  }
  if (client->json_output()) {
    fmt::print("{}\n", pretty_json(response->body));
  }
  int failed = 0;
  for (const auto& [id, gc] : peers->value.GetObject()) {
    if (!gc.IsObject()) continue;
    std::string name = text_of(gc, "peername");
    if (name.empty()) name = id.GetString();
    std::string error = text_of(gc, "error");
    if (!error.empty()) {
      ++failed;
      if (!client->json_output()) fmt::print("{} | ERROR: {}\n", name, error);
      fmt::print(stderr, "clusterpin ipfs gc: {}: {}\n", id.GetString(), error);
      continue;
    }
    if (client->json_output()) continue;
    fmt::print("{}\n  > CIDs:\n", name);
    auto keys = gc.FindMember("keys");
    if (keys == gc.MemberEnd() || !keys->value.IsArray()) continue;
    for (const auto& key : keys->value.GetArray()) {
      if (!key.IsObject()) continue;
      std::string cid = text_of(key, "key");
      std::string key_error = text_of(key, "error");
      fmt::print("    - {}\n", cid.empty() ? "ERROR: " + key_error : cid);
    }
  }
  return failed == 0 ? kExitOk : kExitApiError;
}

constexpr Subcommand kSubcommands[] = {
    {"gc", "Collect garbage in the IPFS daemons of every peer (or this one)", declare_gc, run_gc},
};

}  // namespace

int run_ipfs(int argc, char** argv) { return run_subcommands("ipfs", kSubcommands, argc, argv); }

}  // namespace clusterpin::cmd
