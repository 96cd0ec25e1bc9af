// `clusterpin id` and `clusterpin version`: who a peer is, and which build this is.
#include <fmt/core.h>

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
  if (int code = check_response(*response); code != kExitOk) return code;
  fmt::print("{}\n", client->json_output() ? pretty_json(response->body) : format_id(response->body));
  return kExitOk;
}

void declare_version(cxxopts::Options&) {}
int version_main(const cxxopts::ParseResult&) {
  fmt::print("clusterpin {}\n", version());
  return kExitOk;
}

}  // namespace

int run_id(int argc, char** argv) {
  return run_simple("id", "Show the identity and addresses of a peer", declare_id, id_main, argc,
                    argv);
}

int run_version(int argc, char** argv) {
  return run_simple("version", "Print the version of this binary", declare_version, version_main,
                    argc, argv);
}

}  // namespace clusterpin::cmd
