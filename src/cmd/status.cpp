// `clusterpin status|sync|recover`: the local state of pins on every peer, and its repair.
#include <string>
#include <vector>

#include "cmd/applet.hpp"
#include "cmd/cli.hpp"
#include "cmd/api_client.hpp"
#include "cmd/format.hpp"
#include "core/cid.hpp"
#include "core/tracker.hpp"
#include "net/http_url.hpp"

#include <fmt/core.h>

namespace clusterpin::cmd {
namespace {

void declare_cids(cxxopts::Options& o) {
  o.add_options()("cids", "CIDs (default: all)", cxxopts::value<std::vector<std::string>>());
  o.parse_positional({"cids"});
  o.positional_help("[cid]...");
}

void declare_status(cxxopts::Options& o) {
  add_client_options(o);
  o.add_options()
      ("local", "Only this peer's status")
      ("filter", "Only these statuses (comma list, e.g. pin_error,queued)",
       cxxopts::value<std::string>(), "STATUSES");
  declare_cids(o);
}

void declare_sync(cxxopts::Options& o) {
  add_client_options(o);
  declare_cids(o);
}

void declare_recover(cxxopts::Options& o) {
  add_client_options(o);
  o.add_options()("local", "Only recover on this peer");
  declare_cids(o);
}

bool check_cids(std::string_view applet, const cxxopts::ParseResult& args) {
  if (args.count("cids") == 0) return true;
  for (const std::string& text : args["cids"].as<std::vector<std::string>>()) {
    auto cid = Cid::parse(text);
    if (!cid) {
      usage_error(applet, cid.error().message);
      return false;
    }
  }
  return true;
}

// Prints each GlobalPinInfo of an answer (one object, or an NDJSON stream); `failures`, when
// given, collects the members whose entry is cluster_error.
int print_infos(std::string_view applet, ApiClient& client, const std::string& method,
                const std::string& target, std::vector<std::string>* failures = nullptr) {
  buffer_listing_output();
  auto print = [&](std::string_view line) {
    if (line.empty()) return true;
    if (failures != nullptr) {
      for (std::string& f : cluster_errors_of(line)) failures->push_back(std::move(f));
    }
    if (client.json_output()) {
      print_pretty_json(line);
    } else {
      print_line(format_global_info(line));
    }
    return true;
  };
  auto response = client.call(method, target, {}, print);
  if (!response) return transport_error(applet, response.error());
  if (int code = check_response(*response, client.json_output()); code != kExitOk) return code;
  if (!response->body.empty()) print(response->body);
  if (!response->stream_error().empty()) {
    fmt::print(stderr, "clusterpin {}: {}\n", applet, response->stream_error());
    return kExitApiError;
  }
  return kExitOk;
}

std::vector<std::string> cids_of(const cxxopts::ParseResult& args) {
  return args.count("cids") != 0 ? args["cids"].as<std::vector<std::string>>() : std::vector<std::string>{};
}

int status_main(const cxxopts::ParseResult& args) {
  if (!check_cids("status", args)) return kExitUsage;
  auto client = ApiClient::from_args(args);
  if (!client) return usage_error("status", client.error().message);
  net::QueryPairs q;
  if (flag(args, "local")) q.emplace_back("local", "true");
  if (args.count("filter") != 0) {
    std::string filter = args["filter"].as<std::string>();
    // An empty value (often an unset shell variable) must not mean "every status".
    if (filter.empty()) {
      return usage_error("status", fmt::format("--filter: no status given; accepted: a comma list of {}",
                                               status_filter_names()));
    }
    if (auto f = parse_status_filter(filter); !f) return usage_error("status", "--filter: " + f.error().message);
    q.emplace_back("filter", filter);
  }
  auto cids = cids_of(args);
  // GET /pins/<cid> ignores filter: a filtered status of one CID goes through the listing
  // route, as several CIDs do.
  if (cids.size() == 1 && args.count("filter") == 0) {
    return print_infos("status", *client, "GET", net::make_target("/pins/" + cids[0], q));
  }
  if (!cids.empty()) {
    std::string joined;
    for (const auto& c : cids) joined += (joined.empty() ? "" : ",") + c;
    q.emplace_back("cids", joined);
  }
  return print_infos("status", *client, "GET", net::make_target("/pins", q));
}

int sync_main(const cxxopts::ParseResult& args) {
  if (!check_cids("sync", args)) return kExitUsage;
  auto client = ApiClient::from_args(args);
  if (!client) return usage_error("sync", client.error().message);
  auto cids = cids_of(args);
  if (!cids.empty()) {
    for (const auto& cid : cids) {
      if (int code = print_infos("sync", *client, "POST", "/pins/" + cid + "/sync"); code != kExitOk) return code;
    }
    return kExitOk;
  }
  auto response = client->call("POST", "/pins/sync");
  if (!response) return transport_error("sync", response.error());
  if (int code = check_response(*response, client->json_output()); code != kExitOk) return code;
  // --enc json: what the API answered (nothing for its 204 No Content).
  if (client->json_output()) {
    if (!response->body.empty()) print_pretty_json(response->body);
    return kExitOk;
  }
  fmt::print("synced: every peer compared its state with IPFS (see 'clusterpin status')\n");
  return kExitOk;
}

int recover_main(const cxxopts::ParseResult& args) {
  if (!check_cids("recover", args)) return kExitUsage;
  auto client = ApiClient::from_args(args);
  if (!client) return usage_error("recover", client.error().message);
  net::QueryPairs q;
  if (flag(args, "local")) q.emplace_back("local", "true");
  auto cids = cids_of(args);
  if (cids.empty()) return print_infos("recover", *client, "POST", net::make_target("/pins/recover", q));
  // A member that could not recover a CID is its cluster_error line in the status printed, and
  // is named again on standard error: the exit status says the recover was not done everywhere.
  int result = kExitOk;
  for (const auto& cid : cids) {
    std::vector<std::string> failures;
    int code = print_infos("recover", *client, "POST", net::make_target("/pins/" + cid + "/recover", q), &failures);
    if (code != kExitOk) return code;
    for (const std::string& f : failures) {
      fmt::print(stderr, "clusterpin recover: {}: not recovered on {}\n", cid, f);
      result = kExitApiError;
    }
  }
  return result;
}

}  // namespace

int run_status(int argc, char** argv) {
  return run_simple("status", "Show the status of pins on every peer", declare_status,
                    status_main, argc, argv);
}
int run_sync(int argc, char** argv) {
  return run_simple("sync", "Compare the local state with IPFS and mark what drifted",
                    declare_sync, sync_main, argc, argv);
}
int run_recover(int argc, char** argv) {
  return run_simple("recover", "Retry pins and unpins that are in error", declare_recover,
                    recover_main, argc, argv);
}

}  // namespace clusterpin::cmd
