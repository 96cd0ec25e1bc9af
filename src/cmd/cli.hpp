// Command-line plumbing shared by the applets: parsing with one uniform error style, --help,
// the config folder rule, and the options of every API client applet.
#pragma once

#include <cstdio>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include <cxxopts.hpp>

namespace clusterpin::cmd {

// Parses argv. On a bad option prints one line naming it (plus the applet list) to stderr and
// returns nullopt; the caller exits with kExitUsage. An argument that neither an option nor a
// declared positional takes is refused the same way (one line naming it and what the command
// accepts), unless --help was given.
std::optional<cxxopts::ParseResult> parse_args(cxxopts::Options& options, int argc, char** argv);

// Prints the applet's help to stdout when --help was given; returns true if it did.
bool print_help_if_asked(const cxxopts::Options& options, const cxxopts::ParseResult& args);

// Adds --help (and nothing else) so every applet answers it the same way.
void add_help_option(cxxopts::Options& options);

// Adds --config DIR.
void add_config_option(cxxopts::Options& options);

// <config dir> = --config DIR, else $CLUSTERPIN_PATH, else ~/.clusterpin.
std::string config_dir(const cxxopts::ParseResult& args);

// Options of applets that talk to a daemon's REST API.
void add_client_options(cxxopts::Options& options);


// "a,b,,c" -> {"a", "b", "c"}: the comma lists of --peers and --bootstrap.
std::vector<std::string> split_commas(const std::string& text);

// Prints "clusterpin <applet>: <message>" to stderr and returns kExitUsage.
int usage_error(std::string_view applet, std::string_view message);

}  // namespace clusterpin::cmd

namespace clusterpin::cmd {

// An applet made of subcommands (`pin add`, `peers ls`, ...). Each subcommand declares its own
// options; `clusterpin <applet> --help` prints every subcommand's help.
struct Subcommand {
  std::string_view name;
  std::string_view summary;
  void (*declare)(cxxopts::Options& options);
  int (*run)(const cxxopts::ParseResult& args);
};

int run_subcommands(std::string_view applet, std::span<const Subcommand> subcommands, int argc,
                    char** argv);

// Declares options with `declare`, parses, answers --help, then calls `run`.
int run_simple(std::string_view applet, std::string_view summary,
               void (*declare)(cxxopts::Options& options),
               int (*run)(const cxxopts::ParseResult& args), int argc, char** argv);

}  // namespace clusterpin::cmd
