// Command-line plumbing shared by the applets: parsing with one uniform error style, --help,
// the config folder rule, and the options of every API client applet.
#pragma once

#include <cstdint>
#include <cstdio>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include <cxxopts.hpp>

#include "core/result.hpp"

namespace clusterpin::cmd {

// Parses argv. On a bad option prints one line naming it (plus the applet list) to stderr and
// returns nullopt; the caller exits with kExitUsage. An argument that neither an option nor a
// declared positional takes is refused the same way (one line naming it and what the command
// accepts), unless --help was given.
std::optional<cxxopts::ParseResult> parse_args(cxxopts::Options& options, int argc, char** argv);

// Whether on/off option `name` is on: given as --name or --name=true (also 1); --name=false (0)
// is off. cxxopts counts an option that was given whatever its value, so a bare count
// turned `--force=false` into --force.
bool flag(const cxxopts::ParseResult& args, const std::string& name);

// The value of integer option `name` (declared with a string value, so that a bad one is
// refused naming the option): nullopt when not given; an error names the option, the value and
// `accepted` when it is not an integer in [min, max] (`accepted` states that range).
Result<std::optional<std::int64_t>> integer_option(const cxxopts::ParseResult& args,
                                                   const std::string& name, std::int64_t min,
                                                   std::int64_t max, std::string_view accepted);

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

// Whether `name` ("--host", "-l", ...) is a client option that takes a value: main() takes these
// (and the on/off ones, see is_client_switch) off the front of
// `clusterpin [client options] <applet> ...`.
bool takes_client_option_value(std::string_view name);

// Whether `name` is an on/off client option (--debug, --force-http, ...): main() takes it off
// the front as it is given ("--debug" or "--debug=false"), with no separate value.
bool is_client_switch(std::string_view name);

// Why ipfs-cluster-ctl's client option `name` (without "=value") is refused, before or after the
// applet name: --https/-s (the API is plain HTTP) and --secret (it is not reached over libp2p).
// Nothing for any other name.
std::optional<std::string> refused_client_option(std::string_view name);

// The client options given before the applet name, as given ("--enc=json", or "--host" then
// its value): parse_args reads them as if they came first after the applet (or subcommand)
// name, so an applet without client options refuses them as it refuses any unknown option.
void set_leading_options(std::vector<std::string> options);


// "a,b,,c" -> {"a", "b", "c"}: the comma lists of --peers and --bootstrap.
std::vector<std::string> split_commas(const std::string& text);

// The comma list of addresses given to option `name`: an error when it names none (an empty
// value, often an unset shell variable, must not mean "no peers").
Result<std::vector<std::string>> address_list(const cxxopts::ParseResult& args, const std::string& name);

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
