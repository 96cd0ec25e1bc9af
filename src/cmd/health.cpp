// `clusterpin health graph|metrics|alerts`: what the peers know about each other.
#include <string>

#include "cmd/applet.hpp"
#include "cmd/cli.hpp"

namespace clusterpin::cmd {
namespace {

void declare_graph(cxxopts::Options& o) {
  add_client_options(o);
  o.add_options()
      ("format", "Output format: dot, svg or png (svg and png need Graphviz's dot)",
       cxxopts::value<std::string>()->default_value("dot"), "dot|svg|png")
      ("f,file", "Write to this file instead of standard output", cxxopts::value<std::string>(),
       "FILE");
}

void declare_metrics(cxxopts::Options& o) {
  add_client_options(o);
  o.add_options()("name", "Metric name (default: list the metric names)",
                  cxxopts::value<std::string>());
  o.parse_positional({"name"});
  o.positional_help("[name]");
}

void declare_alerts(cxxopts::Options& o) { add_client_options(o); }

int run_graph(const cxxopts::ParseResult&) { return not_implemented("health graph"); }
int run_metrics(const cxxopts::ParseResult&) { return not_implemented("health metrics"); }
int run_alerts(const cxxopts::ParseResult&) { return not_implemented("health alerts"); }

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
