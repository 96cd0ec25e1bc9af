// `clusterpin pin add|rm|update|ls`: change and list the shared pinset through a peer's REST API.
// Every CID (and the form of every IPFS path) is checked locally first, so a typo fails before
// anything is contacted. Paths (/ipfs/<cid>/sub, /ipns/<name>, /ipld/<cid>/...) go to the
// /pins/{ipfs|ipns|ipld}/{path} route, where the peer resolves them through its IPFS daemon.
// Progress (pin add -, --wait) goes to standard error only when it is a terminal.
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <iostream>
#include <limits>
#include <optional>
#include <thread>

#include <rapidjson/document.h>
#include <string>
#include <vector>

#include <fmt/core.h>
#include <fmt/ranges.h>

#include "cmd/applet.hpp"
#include "cmd/cli.hpp"
#include "cmd/api_client.hpp"
#include "cmd/format.hpp"
#include "core/cid.hpp"
#include "core/duration.hpp"
#include "core/pin.hpp"
#include "net/ipfs_connector.hpp"
#include "net/http_url.hpp"

namespace clusterpin::cmd {
namespace {

// Second names are ipfs-cluster-ctl's (its --ns, --wt, --replication-min, ...): cxxopts prints
// only the first name of an option, so each description names the others.
void declare_wait(cxxopts::Options& o) {
  o.add_options()
      ("no-status,ns", "Accepted for ipfs-cluster-ctl scripts (also --ns): the pin as committed is "
       "always printed")
      ("w,wait", "Wait until the pin reaches its target status on its allocations (not with '-')")
      ("wait-limit,wl", "With --wait (also --wl): how many peers must reach it (0: every allocated "
       "peer; default: the pin's replication_factor_min for add and update, every peer for rm)",
       cxxopts::value<std::string>(), "N")
      ("wait-timeout,wt", "With --wait (also --wt): stop waiting after this Go duration, 0s or more "
       "(e.g. 5m0s; 0s: no limit)",
       cxxopts::value<std::string>()->default_value("0s"), "DURATION");
}

void declare_add(cxxopts::Options& o) {
  add_client_options(o);
  declare_wait(o);
  o.add_options()
      ("r,replication", "Replication factor: sets both --rmin and --rmax (-1: every peer)",
       cxxopts::value<std::string>(), "N")
      ("rmin,replication-min", "Minimum number of peers that must pin it (also --replication-min)",
       cxxopts::value<std::string>(), "N")
      ("rmax,replication-max", "Maximum number of peers that may pin it (also --replication-max)",
       cxxopts::value<std::string>(), "N")
      ("n,name", "A name for the pin", cxxopts::value<std::string>(), "NAME")
      ("mode", "Pin mode: recursive or direct",
       cxxopts::value<std::string>()->default_value("recursive"), "recursive|direct")
      ("expire-in", "Unpin automatically after this Go duration (e.g. 24h0m0s)",
       cxxopts::value<std::string>(), "DURATION")
      ("metadata", "Metadata key=value (repeatable)", cxxopts::value<std::vector<std::string>>(),
       "KEY=VALUE")
      ("allocations,allocs", "Comma-separated peer ids to pin on (also --allocs)",
       cxxopts::value<std::string>(), "IDS")
      ("cids", "CIDs to pin ('-' reads one per line from standard input)",
       cxxopts::value<std::vector<std::string>>());
  o.parse_positional({"cids"});
  o.positional_help("<cid|path>... | -");
}

void declare_rm(cxxopts::Options& o) {
  add_client_options(o);
  declare_wait(o);
  o.add_options()("cids", "CIDs or IPFS paths to unpin", cxxopts::value<std::vector<std::string>>());
  o.parse_positional({"cids"});
  o.positional_help("<cid|path>...");
}

void declare_update(cxxopts::Options& o) {
  add_client_options(o);
  declare_wait(o);
  o.add_options()
      ("n,name", "A new name for the pin", cxxopts::value<std::string>(), "NAME")
      ("expire-in", "Unpin automatically after this Go duration", cxxopts::value<std::string>(),
       "DURATION")
      ("cids", "The existing CID and the new CID (or IPFS path)",
       cxxopts::value<std::vector<std::string>>());
  o.parse_positional({"cids"});
  o.positional_help("<existing-cid> <new-cid|path>");
}

void declare_ls(cxxopts::Options& o) {
  add_client_options(o);
  o.add_options()
      ("filter", "Pin types to list, comma-separated: all, pin, meta-pin, clusterdag-pin, shard-pin",
       cxxopts::value<std::string>()->default_value("pin"), "TYPES")
      ("cids", "Only these CIDs", cxxopts::value<std::vector<std::string>>());
  o.parse_positional({"cids"});
  o.positional_help("[cid]...");
}

// A pin argument: a CID, or an IPFS path (starts with '/'; the peer resolves it).
bool is_path(std::string_view text) { return text.starts_with("/"); }

// Checks one argument; an error names it and what is accepted.
Status check_arg(const std::string& text, bool paths_allowed) {
  if (paths_allowed && is_path(text)) {
    auto path = net::parse_ipfs_path(text);
    if (!path) return path.error();
    return {};
  }
  auto cid = Cid::parse(text);
  if (!cid) {
    if (!paths_allowed) return cid.error();
    return make_error(fmt::format("{} (or give an IPFS path: /ipfs/<cid>[/path], "
                                  "/ipns/<name>[/path], /ipld/<cid>[/path])",
                                  cid.error().message));
  }
  return {};
}

// Checks every CID or path given on the command line ("-" means standard input, checked later).
bool check_cids(std::string_view sub, const cxxopts::ParseResult& args, bool required,
                bool paths_allowed) {
  if (args.count("cids") == 0) {
    if (required) usage_error(fmt::format("pin {}", sub), "no CID given (usage: see --help)");
    return !required;
  }
  for (const std::string& text : args["cids"].as<std::vector<std::string>>()) {
    if (text == "-") continue;
    if (Status ok = check_arg(text, paths_allowed); !ok) {
      usage_error(fmt::format("pin {}", sub), ok.error().message);
      return false;
    }
  }
  return true;
}

// --wait-timeout (and --expire-in where the applet has it), checked before anything is
// contacted: a bad value must not fail only after the pin was committed. Returns the wait limit,
// or nullopt after printing the usage error.
std::optional<std::chrono::nanoseconds> check_durations(std::string_view sub,
                                                        const cxxopts::ParseResult& args) {
  std::string applet = fmt::format("pin {}", sub);
  std::string text = args["wait-timeout"].as<std::string>();
  auto limit = parse_go_duration(text);
  if (!limit || limit->count() < 0) {
    usage_error(applet, fmt::format("--wait-timeout: {}; accepted: a Go duration of 0s or more "
                                    "(e.g. 90s, 5m0s; 0s: no limit)",
                                    limit ? fmt::format("\"{}\" is negative", text)
                                          : limit.error().message));
    return std::nullopt;
  }
  if (args.count("expire-in") != 0) {
    std::string expire = args["expire-in"].as<std::string>();
    auto d = parse_go_duration(expire);
    if (!d || d->count() <= 0) {
      usage_error(applet, fmt::format("--expire-in: {}; accepted: a positive Go duration "
                                      "(e.g. 90s, 24h0m0s)",
                                      d ? fmt::format("\"{}\" is not positive", expire)
                                        : d.error().message));
      return std::nullopt;
    }
    auto now = std::chrono::duration_cast<std::chrono::nanoseconds>(
        std::chrono::system_clock::now().time_since_epoch());
    if (auto at = expiry_after(now.count(), expire); !at) {
      usage_error(applet, "--" + at.error().message);
      return std::nullopt;
    }
  }
  return *limit;
}

// The REST path of a pin argument: /pins/<cid>, or /pins/<ns>/<root>/<rest> for an IPFS path
// (checked by check_cids already).
std::string pins_target(const std::string& text) {
  if (!is_path(text)) return "/pins/" + text;
  auto path = net::parse_ipfs_path(text);
  return "/pins" + net::percent_encode(path ? path->to_string() : text, true);
}

// Progress on standard error, rewritten in place, only when standard error is a terminal: in a
// pipe or a file nothing is written.
class Progress {
 public:
  Progress() : on_(::isatty(STDERR_FILENO) != 0) {}
  ~Progress() { clear(); }
  void show(std::string_view text) {
    if (!on_) return;
    fmt::print(stderr, "\r{}\x1b[K", text);
    std::fflush(stderr);
    shown_ = true;
  }
  // Leaves the last progress line on the screen as the outcome.
  void keep() {
    if (!shown_) return;
    fmt::print(stderr, "\n");
    shown_ = false;
  }
  // Erases the progress line, before a final message or the end.
  void clear() {
    if (!shown_) return;
    fmt::print(stderr, "\r\x1b[K");
    std::fflush(stderr);
    shown_ = false;
  }

 private:
  bool on_;
  bool shown_ = false;
};

// --metadata values, checked before anything is contacted: each must be key=value with a
// non-empty key (as ipfs-cluster-ctl, which refuses a value without '=').
bool check_metadata(const cxxopts::ParseResult& args) {
  if (args.count("metadata") == 0) return true;
  for (const auto& kv : args["metadata"].as<std::vector<std::string>>()) {
    auto eq = kv.find('=');
    if (eq == std::string::npos || eq == 0) {
      usage_error("pin add", fmt::format("--metadata: \"{}\" {}; accepted: key=value (the value may "
                                         "be empty: key=)",
                                         kv, eq == 0 ? "has an empty key" : "has no '='"));
      return false;
    }
  }
  return true;
}

// --replication, --rmin and --rmax, checked before anything is contacted (the peer checks how
// they combine with each other and the cluster's size).
bool check_replication(const cxxopts::ParseResult& args) {
  for (const char* name : {"replication", "rmin", "rmax"}) {
    auto n = integer_option(args, name, -1, std::numeric_limits<int>::max(),
                            "-1 (every peer), 0 (the cluster's default) or a number of "
                            "peers up to 2147483647");
    if (!n) {
      usage_error("pin add", n.error().message);
      return false;
    }
  }
  return true;
}

std::string query_of(const cxxopts::ParseResult& args) {
  net::QueryPairs q;
  if (args.count("replication") != 0) q.emplace_back("replication", args["replication"].as<std::string>());
  if (args.count("rmin") != 0) q.emplace_back("replication-min", args["rmin"].as<std::string>());
  if (args.count("rmax") != 0) q.emplace_back("replication-max", args["rmax"].as<std::string>());
  if (args.count("name") != 0) q.emplace_back("name", args["name"].as<std::string>());
  if (args.count("mode") != 0) q.emplace_back("mode", args["mode"].as<std::string>());
  if (args.count("expire-in") != 0) q.emplace_back("expire-in", args["expire-in"].as<std::string>());
  if (args.count("allocations") != 0) q.emplace_back("user-allocations", args["allocations"].as<std::string>());
  if (args.count("metadata") != 0) {
    for (const auto& kv : args["metadata"].as<std::vector<std::string>>()) {
      auto eq = kv.find('=');
      q.emplace_back("meta-" + kv.substr(0, eq), kv.substr(eq + 1));  // checked: has '='
    }
  }
  return net::make_target("", q);
}

void print_pin(const ApiClient& client, std::string_view json) {
  if (client.json_output()) return print_pretty_json(json);
  print_line(format_pin(json));
}

// What --wait waits for: `target` on `peers` of the pin's peers (0: all), for at most `limit`
// (0: no limit).
struct WaitFor {
  std::string_view target;
  std::chrono::nanoseconds limit{0};
  std::int64_t peers = 0;
};

int wait_for(std::string_view applet, ApiClient& client, const std::string& cid, const WaitFor& wait);

// --wait-limit (nullopt when not given), checked before anything is contacted. Without --wait
// it would change nothing: refused (ipfs-cluster-ctl has no such option to follow).
Result<std::optional<std::int64_t>> wait_limit_of(const cxxopts::ParseResult& args) {
  if (args.count("wait-limit") != 0 && !flag(args, "wait")) {
    return make_error("--wait-limit needs --wait (it says how many peers --wait waits for)");
  }
  return integer_option(args, "wait-limit", 0, std::numeric_limits<int>::max(),
                        "a number of peers from 0 to 2147483647 (0: every peer the pin "
                        "is on)");
}

// Whole-response calls: prints the pin the API answered with, then waits when asked (for the
// CID in the answer: a path's CID is known once the peer resolved it). Without --wait-limit, a
// wait for `pinned` counts the pin's replication_factor_min peers, as ipfs-cluster-ctl does;
// one for `unpinned` every peer.
int pin_call(std::string_view applet, const cxxopts::ParseResult& args, const std::string& method,
             const std::string& target, std::string_view wait_target,
             std::chrono::nanoseconds wait_limit, std::optional<std::int64_t> wait_peers) {
  auto client = ApiClient::from_args(args);
  if (!client) return usage_error(applet, client.error().message);
  auto response = client->call(method, target);
  if (!response) return transport_error(applet, response.error());
  if (int code = check_response(*response, client->json_output()); code != kExitOk) return code;
  print_pin(*client, response->body);
  if (!flag(args, "wait")) return kExitOk;
  rapidjson::Document pin;
  pin.Parse(response->body.c_str());
  if (!pin.IsObject() || !pin.HasMember("cid") || !pin["cid"].IsString()) {
    fmt::print(stderr, "clusterpin {}: cannot wait: the API answered a pin without a cid\n", applet);
    return kExitApiError;
  }
  std::int64_t peers = 0;
  if (wait_peers) {
    peers = *wait_peers;
  } else if (wait_target == "pinned" && pin.HasMember("replication_factor_min") &&
             pin["replication_factor_min"].IsInt64()) {
    peers = std::max<std::int64_t>(0, pin["replication_factor_min"].GetInt64());
  }
  return wait_for(applet, *client, pin["cid"].GetString(), WaitFor{wait_target, wait_limit, peers});
}

// `pin add -`: CIDs from standard input, checked locally and sent in batches of 10,000 (one
// request per batch, not one round trip per CID; the leader proposes it as entries of at most
// 512 KiB, two for 10,000 pins).
int add_from_stdin(const cxxopts::ParseResult& args) {
  auto client = ApiClient::from_args(args);
  if (!client) return usage_error("pin add", client.error().message);
  Progress progress;
  std::string query = query_of(args);
  std::string batch;
  std::size_t in_batch = 0, line_number = 0, pinned = 0;
  auto flush = [&]() -> int {
    if (in_batch == 0) return kExitOk;
    auto response = client->call("POST", "/pins" + query, std::move(batch));
    batch.clear();
    if (!response || response->status / 100 != 2) progress.clear();  // errors start on a clean line
    if (!response) return transport_error("pin add", response.error());
    if (int code = check_response(*response, client->json_output()); code != kExitOk) {
      // The line the peer names counts from the start of its batch of 10,000; the CID is named.
      fmt::print(stderr, "pin add: that batch was refused whole; {} CIDs before it were pinned\n", pinned);
      return code;
    }
    pinned += in_batch;
    in_batch = 0;
    progress.show(fmt::format("pinned {} CIDs", pinned));
    return kExitOk;
  };
  std::string line;
  while (std::getline(std::cin, line)) {
    ++line_number;
    // Blanks around a CID (spaces, tabs, a CR) are not part of it.
    const auto first = line.find_first_not_of(" \t\r");
    if (first == std::string::npos) continue;
    line.erase(line.find_last_not_of(" \t\r") + 1);
    line.erase(0, first);
    if (is_path(line)) {
      progress.clear();
      return usage_error("pin add", fmt::format("standard input line {}: \"{}\" is an IPFS path; "
                                                "'pin add -' reads CIDs only (give a path as an "
                                                "argument: clusterpin pin add {}) ({} CIDs before "
                                                "it were pinned)",
                                                line_number, line, line, pinned));
    }
    auto cid = Cid::parse(line);
    if (!cid) {
      progress.clear();
      return usage_error("pin add", fmt::format("standard input line {}: {} ({} CIDs before it were pinned)",
                                                line_number, cid.error().message, pinned));
    }
    batch += line;
    batch += '\n';
    if (++in_batch == 10000) {
      if (int code = flush(); code != kExitOk) return code;
    }
  }
  if (int code = flush(); code != kExitOk) return code;
  progress.clear();
  if (client->json_output()) {
    print_pretty_json(fmt::format("{{\"pinned\":{}}}", pinned));
  } else {
    fmt::print("pinned {} CIDs\n", pinned);
  }
  return kExitOk;
}

// --wait: polls GET /pins/<cid> every second until every peer that is not `remote` reports
// `target` (pinned or unpinned); an error status or --wait-timeout (`limit`, checked by
// check_durations; 0: none) ends the wait with an error.
int wait_for(std::string_view applet, ApiClient& client, const std::string& cid, const WaitFor& wait) {
  const std::string_view target = wait.target;
  const std::chrono::nanoseconds limit = wait.limit;
  auto deadline = std::chrono::steady_clock::now() + limit;
  Progress progress;
  while (true) {
    auto response = client.call("GET", "/pins/" + cid);
    if (!response || response->status / 100 != 2) progress.clear();
    if (!response) return transport_error(applet, response.error());
    if (int code = check_response(*response, client.json_output()); code != kExitOk) return code;
    rapidjson::Document d;
    d.Parse(response->body.c_str());
    std::size_t done = 0, total = 0;
    std::string failure;
    std::vector<std::string> behind;  // "peername: status" of the peers not there yet
    if (d.IsObject() && d.HasMember("peer_map") && d["peer_map"].IsObject()) {
      for (const auto& m : d["peer_map"].GetObject()) {
        std::string status = m.value.HasMember("status") ? m.value["status"].GetString() : "";
        if (status == "remote") continue;
        ++total;
        if (status == target) {
          ++done;
        } else {
          std::string name = m.value.HasMember("peername") && m.value["peername"].IsString() &&
                                     m.value["peername"].GetStringLength() > 0
                                 ? m.value["peername"].GetString()
                                 : m.name.GetString();
          behind.push_back(fmt::format("{}: {}", name, status));
        }
        if (status.find("error") != std::string::npos) {
          failure = fmt::format("{} on {}: {}", status, m.name.GetString(),
                                m.value.HasMember("error") ? m.value["error"].GetString() : "");
        }
      }
    }
    if (!failure.empty()) {
      progress.clear();
      fmt::print(stderr, "clusterpin {}: {}: {}\n", applet, cid, failure);
      return kExitApiError;
    }
    const std::size_t needed =
        wait.peers == 0 ? total : std::min(total, static_cast<std::size_t>(wait.peers));
    progress.show(fmt::format("{}: {} of {} peers {}", cid, done, needed, target));
    if (done >= needed) {
      progress.keep();
      return kExitOk;
    }
    if (limit.count() > 0 && std::chrono::steady_clock::now() >= deadline) {
      progress.clear();
      fmt::print(stderr, "clusterpin {}: {}: {} of the {} peer(s) waited for {} after {} ({})\n", applet,
                 cid, done, needed, target, format_go_duration(limit), fmt::join(behind, ", "));
      return kExitApiError;
    }
    std::this_thread::sleep_for(std::chrono::seconds(1));
  }
}

int run_add(const cxxopts::ParseResult& args) {
  if (!check_cids("add", args, true, true)) return kExitUsage;
  auto wait_limit = check_durations("add", args);
  if (!wait_limit) return kExitUsage;
  auto wait_peers = wait_limit_of(args);
  if (!wait_peers) return usage_error("pin add", wait_peers.error().message);
  if (!check_metadata(args)) return kExitUsage;
  if (!check_replication(args)) return kExitUsage;
  auto cids = args["cids"].as<std::vector<std::string>>();
  if (std::find(cids.begin(), cids.end(), "-") != cids.end()) {
    if (cids.size() != 1) {
      return usage_error("pin add", "'-' (CIDs from standard input) cannot be mixed with other CIDs");
    }
    if (flag(args, "wait")) {
      return usage_error("pin add", "--wait cannot be used with '-' (CIDs from standard input); "
                                    "check the pins afterwards with 'clusterpin status'");
    }
    return add_from_stdin(args);
  }
  for (const auto& cid : cids) {
    if (int code = pin_call("pin add", args, "POST", pins_target(cid) + query_of(args), "pinned",
                            *wait_limit, *wait_peers);
        code != kExitOk) {
      return code;
    }
  }
  return kExitOk;
}

int run_rm(const cxxopts::ParseResult& args) {
  if (!check_cids("rm", args, true, true)) return kExitUsage;
  auto wait_limit = check_durations("rm", args);
  if (!wait_limit) return kExitUsage;
  auto wait_peers = wait_limit_of(args);
  if (!wait_peers) return usage_error("pin rm", wait_peers.error().message);
  const auto& cids = args["cids"].as<std::vector<std::string>>();
  if (std::find(cids.begin(), cids.end(), "-") != cids.end()) {
    return usage_error("pin rm", "'-' is not a CID: pin rm takes CIDs or IPFS paths as arguments");
  }
  for (const auto& cid : cids) {
    if (int code = pin_call("pin rm", args, "DELETE", pins_target(cid), "unpinned", *wait_limit, *wait_peers);
        code != kExitOk) {
      return code;
    }
  }
  return kExitOk;
}

int run_update(const cxxopts::ParseResult& args) {
  if (!check_cids("update", args, true, true)) return kExitUsage;
  auto cids = args["cids"].as<std::vector<std::string>>();
  if (cids.size() != 2) {
    return usage_error("pin update", "expects exactly two arguments: <existing-cid> <new-cid|path>");
  }
  if (Status ok = check_arg(cids[0], false); !ok) {
    return usage_error("pin update", fmt::format("the existing pin must be a CID: {}", ok.error().message));
  }
  auto wait_limit = check_durations("update", args);
  if (!wait_limit) return kExitUsage;
  auto wait_peers = wait_limit_of(args);
  if (!wait_peers) return usage_error("pin update", wait_peers.error().message);
  net::QueryPairs q{{"pin-update", cids[0]}};
  if (args.count("name") != 0) q.emplace_back("name", args["name"].as<std::string>());
  if (args.count("expire-in") != 0) q.emplace_back("expire-in", args["expire-in"].as<std::string>());
  return pin_call("pin update", args, "POST", net::make_target(pins_target(cids[1]), q), "pinned",
                  *wait_limit, *wait_peers);
}

// --filter of pin ls: a comma list of pin types, none of them empty (an empty value, often an
// unset shell variable, must not mean "all"). Checked before anything is contacted, with CIDs
// too (where, as in ipfs-cluster-ctl, it does not apply): the peer, as IPFS Cluster's, would
// skip an unknown name beside known ones without a word.
Status check_pin_filter(const std::string& filter) {
  constexpr std::string_view kAccepted =
      "accepted: a comma list of all, pin, meta-pin, clusterdag-pin, shard-pin";
  if (filter.empty()) return make_error(fmt::format("--filter: no pin type given; {}", kAccepted));
  std::size_t start = 0;
  while (true) {
    auto comma = filter.find(',', start);
    std::string type = filter.substr(start, comma == std::string::npos ? std::string::npos : comma - start);
    if (type.empty()) {
      return make_error(fmt::format("--filter: \"{}\" has an empty name; {}", filter, kAccepted));
    }
    if (type != "all" && type != "pin" && type != "meta-pin" && type != "clusterdag-pin" &&
        type != "shard-pin") {
      return make_error(fmt::format("--filter: \"{}\" is not a pin type; {}", type, kAccepted));
    }
    if (comma == std::string::npos) return {};
    start = comma + 1;
  }
}

int run_ls(const cxxopts::ParseResult& args) {
  if (!check_cids("ls", args, false, false)) return kExitUsage;
  const std::string filter = args["filter"].as<std::string>();
  if (Status ok = check_pin_filter(filter); !ok) return usage_error("pin ls", ok.error().message);
  auto client = ApiClient::from_args(args);
  if (!client) return usage_error("pin ls", client.error().message);
  if (args.count("cids") != 0) {
    for (const auto& cid : args["cids"].as<std::vector<std::string>>()) {
      auto response = client->call("GET", "/allocations/" + cid);
      if (!response) return transport_error("pin ls", response.error());
      if (int code = check_response(*response, client->json_output()); code != kExitOk) return code;
      print_pin(*client, response->body);
    }
    return kExitOk;
  }
  net::QueryPairs q{{"filter", filter}};
  buffer_listing_output();
  auto response = client->list(net::make_target("/allocations", q), [&](std::string_view line) {
    print_pin(*client, line);
    return true;
  });
  if (!response) return transport_error("pin ls", response.error());
  if (int code = check_response(*response, client->json_output()); code != kExitOk) return code;
  if (!response->stream_error().empty()) {
    fmt::print(stderr, "clusterpin pin ls: the listing was cut short: {}\n", response->stream_error());
    return kExitApiError;
  }
  return kExitOk;
}

constexpr Subcommand kSubcommands[] = {
    {"add", "Pin CIDs in the cluster", declare_add, run_add},
    {"rm", "Unpin CIDs from the cluster", declare_rm, run_rm},
    {"update", "Pin a new CID with the options of an existing pin", declare_update, run_update},
    {"ls", "List the shared pinset (answered from the peer's local copy)", declare_ls, run_ls},
};

}  // namespace

int run_pin(int argc, char** argv) { return run_subcommands("pin", kSubcommands, argc, argv); }

}  // namespace clusterpin::cmd
