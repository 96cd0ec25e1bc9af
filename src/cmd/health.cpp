// `clusterpin health graph|metrics|alerts`: what the peers know about each other.
#include <fcntl.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <fstream>
#include <functional>
#include <optional>
#include <map>
#include <set>
#include <string>
#include <vector>

#include <fmt/core.h>
#include <fmt/ranges.h>
#include <rapidjson/document.h>
#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>

#include "cmd/api_client.hpp"
#include "cmd/applet.hpp"
#include "cmd/cli.hpp"
#include "cmd/format.hpp"
#include "core/metrics.hpp"
#include "core/time_format.hpp"
#include "net/http_url.hpp"

extern char** environ;

namespace clusterpin::cmd {
namespace {

void declare_graph(cxxopts::Options& o) {
  add_client_options(o);
  o.add_options()
      ("format", "Output format: dot, svg or png (svg and png need Graphviz's dot)",
       cxxopts::value<std::string>()->default_value("dot"), "dot|svg|png")
      ("f,file", "Write to this file instead of standard output", cxxopts::value<std::string>(),
       "FILE")
      ("all-ipfs-peers", "Also draw IPFS peers that are not the daemon of a cluster peer");
}

void declare_metrics(cxxopts::Options& o) {
  add_client_options(o);
  o.add_options()("name", "Metric name (default: list the metric names)",
                  cxxopts::value<std::string>());
  o.parse_positional({"name"});
  o.positional_help("[name]");
}

void declare_alerts(cxxopts::Options& o) { add_client_options(o); }

// Runs one GET and hands over the body; prints errors and returns the exit code otherwise.
int get(std::string_view applet, ApiClient& client, const std::string& target, std::string& body) {
  auto response = client.call("GET", target);
  if (!response) return transport_error(applet, response.error());
  if (int code = check_response(*response, client.json_output()); code != kExitOk) return code;
  body = response->body;
  return kExitOk;
}

std::string humanize(std::int64_t nanos) {
  std::int64_t s = nanos / 1'000'000'000;
  if (s < 120) return fmt::format("{} second{}", s, s == 1 ? "" : "s");
  if (s < 7200) return fmt::format("{} minutes", s / 60);
  return fmt::format("{} hours", s / 3600);
}

std::int64_t now_nanos() {
  using namespace std::chrono;
  return duration_cast<nanoseconds>(system_clock::now().time_since_epoch()).count();
}

std::string expiry_text(const Metric& m) {
  std::int64_t left = m.expire - now_nanos();
  return left > 0 ? "Expires in: " + humanize(left) : "Expired: " + humanize(-left) + " ago";
}

// GET `target` and hand each item of the JSON list it answers to `each` (text output), or print
// the list as the API gave it (--enc json).
int for_each_item(std::string_view applet, const cxxopts::ParseResult& args, const std::string& target,
                  const std::function<void(const rapidjson::Value&)>& each, std::size_t* count = nullptr) {
  auto client = ApiClient::from_args(args);
  if (!client) return usage_error(applet, client.error().message);
  std::string body;
  if (int code = get(applet, *client, target, body); code != kExitOk) return code;
  if (client->json_output()) {
    fmt::print("{}\n", pretty_json(body));
    return kExitOk;
  }
  rapidjson::Document doc;
  doc.Parse(body.c_str());
  if (doc.HasParseError() || !doc.IsArray()) {
    fmt::print(stderr, "clusterpin {}: the API answered something that is not a JSON list\n", applet);
    return kExitApiError;
  }
  for (const auto& item : doc.GetArray()) each(item);
  if (count) *count = doc.GetArray().Size();
  return kExitOk;
}

std::optional<Metric> metric_of(const rapidjson::Value& item) {
  rapidjson::StringBuffer buffer;
  rapidjson::Writer<rapidjson::StringBuffer> w(buffer);
  item.Accept(w);
  auto m = metric_from_json(std::string_view(buffer.GetString(), buffer.GetSize()));
  if (!m) return std::nullopt;
  return std::move(m).value();
}

// The metric names the peer knows (GET /monitor/metrics), or nullopt when it cannot say.
std::optional<std::vector<std::string>> metric_names(ApiClient& client) {
  auto response = client.call("GET", "/monitor/metrics");
  if (!response || response->status / 100 != 2) return std::nullopt;
  rapidjson::Document doc;
  doc.Parse(response->body.c_str());
  if (doc.HasParseError() || !doc.IsArray()) return std::nullopt;
  std::vector<std::string> names;
  for (const auto& item : doc.GetArray()) {
    if (item.IsString()) names.emplace_back(item.GetString());
  }
  return names;
}

int run_metrics(const cxxopts::ParseResult& args) {
  std::string name = args.count("name") ? args["name"].as<std::string>() : std::string();
  if (name.empty()) {
    std::size_t count = 1;  // only the text output counts the items
    int code = for_each_item("health metrics", args, "/monitor/metrics",
        [](const rapidjson::Value& item) {
          if (item.IsString()) fmt::print("{}\n", item.GetString());
        }, &count);
    if (code == kExitOk && count == 0) fmt::print(stderr, "no metrics received yet\n");
    return code;
  }
  auto client = ApiClient::from_args(args);
  if (!client) return usage_error("health metrics", client.error().message);
  // A name the peer does not know is a typo: refused naming the ones it knows.
  auto unknown = [&](const std::optional<std::vector<std::string>>& names) {
    std::string known = !names          ? "the peer could not list the names it knows"
                        : names->empty() ? "this peer has received no metrics yet"
                                         : fmt::format("known to this peer: {}", fmt::join(*names, ", "));
    return usage_error("health metrics", fmt::format("no metric named \"{}\" ({})", name, known));
  };
  auto is_known = [&](const std::optional<std::vector<std::string>>& names) {
    return names && std::find(names->begin(), names->end(), name) != names->end();
  };
  // A peer may decode "%2F" before routing and answer "no route": a name with a '/' is first
  // looked up among the names.
  if (name.find('/') != std::string::npos) {
    if (auto names = metric_names(*client); !is_known(names)) return unknown(names);
  }
  std::string body;
  // The name is one path segment: "a/b" or "tag:x" are sent percent-encoded.
  if (int code = get("health metrics", *client, "/monitor/metrics/" + net::percent_encode(name), body);
      code != kExitOk) {
    return code;
  }
  rapidjson::Document doc;
  doc.Parse(body.c_str());
  if (doc.HasParseError() || !doc.IsArray()) {
    fmt::print(stderr, "clusterpin health metrics: the API answered something that is not a JSON list\n");
    return kExitApiError;
  }
  // An empty answer for a name the peer does not know is a typo, not "no values right now".
  if (doc.GetArray().Empty()) {
    if (auto names = metric_names(*client); !is_known(names)) return unknown(names);
  }
  if (client->json_output()) {
    fmt::print("{}\n", pretty_json(body));
    return kExitOk;
  }
  for (const auto& item : doc.GetArray()) {
    if (auto m = metric_of(item)) fmt::print("{} | {}: {} | {}\n", m->peer, m->name, m->value, expiry_text(*m));
  }
  if (doc.GetArray().Empty()) {
    fmt::print(stderr, "no peer has a valid {} metric right now\n", name);
  }
  return kExitOk;
}

int run_alerts(const cxxopts::ParseResult& args) {
  return for_each_item("health alerts", args, "/health/alerts", [](const rapidjson::Value& item) {
    auto m = metric_of(item);
    if (!m) return;
    std::string triggered = item.HasMember("triggered_at") && item["triggered_at"].IsString()
                                ? item["triggered_at"].GetString() : format_rfc3339(kZeroTime);
    fmt::print("{}: {} expired at {}, alert triggered at {}\n", m->peer, m->name,
               format_rfc3339(m->expire), triggered);
  });
}

std::string dot_quote(std::string_view s) {
  std::string out = "\"";
  for (char c : s) {
    if (c == '\n') {  // DOT's line break inside a label
      out += "\\n";
      continue;
    }
    if (c == '"' || c == '\\') out += '\\';
    out += c;
  }
  return out + "\"";
}

std::string short_id(const std::string& id) {
  return id.size() > 12 ? "…" + id.substr(id.size() - 6) : id;
}

// ConnectGraph JSON -> Graphviz DOT: cluster peers as boxes, IPFS daemons as ellipses; solid
// arrows for "sees", dashed from a peer to its IPFS daemon.
Result<std::string> graph_to_dot(const std::string& json, bool all_ipfs) {
  rapidjson::Document doc;
  doc.Parse(json.c_str());
  if (doc.HasParseError() || !doc.IsObject()) return make_error("the API answered a graph that is not a JSON object");
  auto object = [&](const char* key) -> const rapidjson::Value* {
    return doc.HasMember(key) && doc[key].IsObject() ? &doc[key] : nullptr;
  };
  std::map<std::string, std::string> names;
  if (const auto* v = object("id_to_peername")) {
    for (const auto& kv : v->GetObject()) names[kv.name.GetString()] = kv.value.IsString() ? kv.value.GetString() : "";
  }
  std::map<std::string, std::string> to_ipfs;
  if (const auto* v = object("cluster_to_ipfs")) {
    for (const auto& kv : v->GetObject()) {
      if (kv.value.IsString()) to_ipfs[kv.name.GetString()] = kv.value.GetString();
    }
  }
  std::map<std::string, std::string> errors;
  if (const auto* v = object("errors")) {
    for (const auto& kv : v->GetObject()) {
      if (kv.value.IsString()) errors[kv.name.GetString()] = kv.value.GetString();
    }
  }
  std::set<std::string> cluster_ipfs;
  for (const auto& [peer, ipfs] : to_ipfs) cluster_ipfs.insert(ipfs);

  std::string out = "digraph cluster {\n  graph [rankdir=LR];\n  node [shape=box, style=filled, fillcolor=\"#dbe9f6\"];\n";
  int n = 0;
  std::map<std::string, std::string> node_of;
  for (const auto& [id, name] : names) {
    std::string node = fmt::format("C{}", n++);
    node_of["c" + id] = node;
    std::string label = name.empty() ? short_id(id) : name + "\n" + short_id(id);
    std::string attrs;
    if (errors.count(id)) {
      label += "\nunreachable";
      attrs = ", fillcolor=\"#f6d5d5\", color=red";
    }
    out += fmt::format("  {} [label={}{}];\n", node, dot_quote(label), attrs);
  }
  auto ipfs_node = [&](const std::string& ipfs) {
    auto it = node_of.find("i" + ipfs);
    if (it != node_of.end()) return it->second;
    std::string node = fmt::format("I{}", n++);
    node_of["i" + ipfs] = node;
    out += fmt::format("  {} [label={}, shape=ellipse, fillcolor=\"#e8f4e1\"];\n", node,
                       dot_quote("IPFS\n" + short_id(ipfs)));
    return node;
  };
  for (const auto& [peer, ipfs] : to_ipfs) {
    if (!node_of.count("c" + peer)) continue;
    out += fmt::format("  {} -> {} [style=dashed];\n", node_of["c" + peer], ipfs_node(ipfs));
  }
  if (const auto* v = object("cluster_links")) {
    for (const auto& kv : v->GetObject()) {
      std::string from = kv.name.GetString();
      if (!node_of.count("c" + from) || !kv.value.IsArray()) continue;
      for (const auto& to : kv.value.GetArray()) {
        if (to.IsString() && node_of.count("c" + std::string(to.GetString()))) {
          out += fmt::format("  {} -> {};\n", node_of["c" + from], node_of["c" + std::string(to.GetString())]);
        }
      }
    }
  }
  if (const auto* v = object("ipfs_links")) {
    for (const auto& kv : v->GetObject()) {
      std::string from = kv.name.GetString();
      if (!kv.value.IsArray()) continue;
      for (const auto& to : kv.value.GetArray()) {
        if (!to.IsString()) continue;
        std::string target = to.GetString();
        if (!all_ipfs && !cluster_ipfs.count(target)) continue;
        std::string a = ipfs_node(from);
        std::string b = ipfs_node(target);
        out += fmt::format("  {} -> {} [color=\"#5a8f3c\"];\n", a, b);
      }
    }
  }
  out += "}\n";
  return out;
}

bool on_path(const std::string& program) {
  const char* path = std::getenv("PATH");
  std::string dirs = path ? path : "/usr/bin:/bin";
  std::size_t start = 0;
  while (start <= dirs.size()) {
    std::size_t end = dirs.find(':', start);
    if (end == std::string::npos) end = dirs.size();
    std::string candidate = dirs.substr(start, end - start) + "/" + program;
    if (::access(candidate.c_str(), X_OK) == 0) return true;
    start = end + 1;
  }
  return false;
}

// Renders DOT with Graphviz: `dot -T<format>` reading the DOT from a temporary file, writing to
// `file` (or standard output).
int render(const std::string& dot, const std::string& format, const std::string& file) {
  if (!on_path("dot")) {
    fmt::print(stderr,
               "clusterpin health graph: --format {} needs Graphviz's `dot`, which is not "
               "installed; install it (Debian: apt-get install graphviz) or use --format dot\n",
               format);
    return kExitUsage;
  }
  char input[] = "/tmp/clusterpin-graph-XXXXXX";
  int fd = ::mkstemp(input);
  if (fd < 0) {
    fmt::print(stderr, "clusterpin health graph: cannot create a temporary file\n");
    return kExitUsage;
  }
  bool wrote = ::write(fd, dot.data(), dot.size()) == static_cast<ssize_t>(dot.size());
  ::close(fd);
  std::string type = "-T" + format;
  std::vector<std::string> argv_text{"dot", type, input};
  if (!file.empty()) {
    argv_text.push_back("-o");
    argv_text.push_back(file);
  }
  std::vector<char*> argv;
  for (auto& a : argv_text) argv.push_back(a.data());
  argv.push_back(nullptr);
  pid_t pid = 0;
  int status = 1;
  if (wrote && ::posix_spawnp(&pid, "dot", nullptr, nullptr, argv.data(), environ) == 0) {
    ::waitpid(pid, &status, 0);
  }
  ::unlink(input);
  if (!wrote || !WIFEXITED(status) || WEXITSTATUS(status) != 0) {
    fmt::print(stderr, "clusterpin health graph: dot failed to render {}\n", format);
    return kExitUsage;
  }
  return kExitOk;
}

// Writes `text` to `file`, or to standard output when `file` is empty.
int write_output(const std::string& text, const std::string& file) {
  if (file.empty()) {
    fmt::print("{}", text);
    return kExitOk;
  }
  std::ofstream out(file, std::ios::binary | std::ios::trunc);
  out << text;
  if (!out.flush()) {
    fmt::print(stderr, "clusterpin health graph: cannot write {}\n", file);
    return kExitUsage;
  }
  return kExitOk;
}

int run_graph(const cxxopts::ParseResult& args) {
  std::string format = args["format"].as<std::string>();
  if (format != "dot" && format != "svg" && format != "png") {
    return usage_error("health graph", fmt::format("--format \"{}\" is not known; accepted: dot, svg, png", format));
  }
  std::string file = args.count("file") ? args["file"].as<std::string>() : std::string();
  auto client = ApiClient::from_args(args);
  if (!client) return usage_error("health graph", client.error().message);
  // --enc json prints the API's graph object: a --format (how to draw it) contradicts it, and
  // --file takes it as it takes a drawing.
  if (client->json_output() && args.count("format") != 0) {
    return usage_error("health graph", "--format and --enc json both choose the output: --format "
                                       "draws the graph (dot, svg, png), --enc json gives the "
                                       "API's graph object; give one of them");
  }
  std::string body;
  if (int code = get("health graph", *client, "/health/graph", body); code != kExitOk) return code;
  if (client->json_output()) return write_output(pretty_json(body) + "\n", file);
  auto dot = graph_to_dot(body, flag(args, "all-ipfs-peers"));
  if (!dot) {
    fmt::print(stderr, "clusterpin health graph: {}\n", dot.error().message);
    return kExitApiError;
  }
  if (format != "dot") return render(*dot, format, file);
  return write_output(*dot, file);
}

constexpr Subcommand kSubcommands[] = {
    {"graph", "Print the cluster as a Graphviz graph", declare_graph, run_graph},
    {"metrics", "Show the latest metrics of every peer", declare_metrics, run_metrics},
    {"alerts", "Show the alerts raised for peers whose metrics expired", declare_alerts,
     run_alerts},
};

}  // namespace

int run_health(int argc, char** argv) {
  return run_subcommands("health", kSubcommands, argc, argv);
}

}  // namespace clusterpin::cmd
