// `clusterpin id` and `clusterpin version`: who a peer is, and which build this is.
#include <fmt/core.h>
#include <rapidjson/document.h>

#include "cmd/applet.hpp"
#include "cmd/api_client.hpp"
#include "cmd/cli.hpp"
#include "cmd/format.hpp"
#include "core/version.hpp"

namespace clusterpin::cmd {
namespace {

void declare_id(cxxopts::Options& o) { add_client_options(o); }
int id_main(const cxxopts::ParseResult& args) {
  auto client = ApiClient::from_args(args);
  if (!client) return usage_error("id", client.error().message);
  auto response = client->call("GET", "/id");
  if (!response) return transport_error("id", response.error());
  if (int code = check_response(*response, client->json_output()); code != kExitOk) return code;
  fmt::print("{}\n", client->json_output() ? pretty_json(response->body) : format_id(response->body));
  return kExitOk;
}

void declare_version(cxxopts::Options& o) { add_client_options(o); }
// This binary's version ("clusterpin X.Y.Z"); with --host, the version of that peer
// (GET /version), printed alone as ipfs-cluster-ctl version prints it.
int version_main(const cxxopts::ParseResult& args) {
  auto client = ApiClient::from_args(args);
  if (!client) return usage_error("version", client.error().message);
  if (args.count("host") == 0) {
    std::string v(version());
    if (client->json_output()) {
      print_pretty_json(fmt::format("{{\"version\":\"{}\"}}", v));
    } else {
      fmt::print("clusterpin {}\n", v);
    }
    return kExitOk;
  }
  auto response = client->call("GET", "/version");
  if (!response) return transport_error("version", response.error());
  if (int code = check_response(*response, client->json_output()); code != kExitOk) return code;
  if (client->json_output()) {
    print_pretty_json(response->body);
    return kExitOk;
  }
  rapidjson::Document d;
  d.Parse(response->body.c_str());
  if (!d.IsObject() || !d.HasMember("version") || !d["version"].IsString()) {
    fmt::print(stderr, "clusterpin version: the peer answered without a version: {}\n", response->body);
    return kExitApiError;
  }
  // The version alone, as ipfs-cluster-ctl version prints it: scripts compare it as it is.
  fmt::print("{}\n", d["version"].GetString());
  return kExitOk;
}

}  // namespace

int run_id(int argc, char** argv) {
  return run_simple("id", "Show the identity and addresses of a peer", declare_id, id_main, argc,
                    argv);
}

int run_version(int argc, char** argv) {
  return run_simple("version", "Print the version of this binary, or with --host of that peer",
                    declare_version, version_main, argc, argv);
}

}  // namespace clusterpin::cmd
