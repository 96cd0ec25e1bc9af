// `clusterpin state export|import|cleanup`: offline tools on a peer's data folder.
#include <string>

#include "cmd/applet.hpp"
#include "cmd/cli.hpp"

namespace clusterpin::cmd {
namespace {

void declare_export(cxxopts::Options& o) {
  add_config_option(o);
  o.add_options()("f,file", "Write to this file instead of standard output",
                  cxxopts::value<std::string>(), "FILE");
}

void declare_import(cxxopts::Options& o) {
  add_config_option(o);
  o.add_options()
      ("force", "Replace existing state without asking")
      ("file", "NDJSON file of pins ('-' or none: standard input)", cxxopts::value<std::string>());
  o.parse_positional({"file"});
  o.positional_help("[file]");
}

void declare_cleanup(cxxopts::Options& o) {
  add_config_option(o);
  o.add_options()("force", "Do not ask for confirmation");
}

int run_export(const cxxopts::ParseResult&) { return not_implemented("state export"); }
int run_import(const cxxopts::ParseResult&) { return not_implemented("state import"); }
int run_cleanup(const cxxopts::ParseResult&) { return not_implemented("state cleanup"); }

constexpr Subcommand kSubcommands[] = {
    {"export", "Write the pinset as NDJSON, one pin a line", declare_export, run_export},
    {"import", "Replace the pinset with pins read from NDJSON", declare_import, run_import},
    {"cleanup", "Reset this peer's state (a backup is kept)", declare_cleanup, run_cleanup},
};

}  // namespace

int run_state(int argc, char** argv) { return run_subcommands("state", kSubcommands, argc, argv); }

}  // namespace clusterpin::cmd
