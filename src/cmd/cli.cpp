// Shared command-line plumbing for the applets (see cli.hpp).
#include "cmd/cli.hpp"

#include <algorithm>
#include <charconv>
#include <cstdlib>

#include <fmt/core.h>

#include "cmd/applet.hpp"

namespace clusterpin::cmd {
namespace {

// cxxopts quotes names with typographic quotes; the project's messages use plain ones.
std::string plain_quotes(std::string text) {
  for (std::string_view q : {"\u2018", "\u2019"}) {
    for (auto pos = text.find(q); pos != std::string::npos; pos = text.find(q)) {
      text.replace(pos, q.size(), "'");
    }
  }
  return text;
}

// What the usage line of options.help() shows after "[OPTION...]": the positional arguments the
// command takes ("<peer-id>", "[cid]..."), or "" when it takes none.
std::string positional_usage(const cxxopts::Options& options) {
  std::string help = options.help();
  std::string marker = options.program() + " [OPTION...]";
  auto pos = help.find(marker);
  if (pos == std::string::npos) return {};
  pos += marker.size();
  auto end = help.find('\n', pos);
  std::string rest = help.substr(pos, end == std::string::npos ? std::string::npos : end - pos);
  auto first = rest.find_first_not_of(' ');
  return first == std::string::npos ? std::string() : rest.substr(first);
}

std::vector<std::string>& leading_options() {
  static std::vector<std::string> options;
  return options;
}

bool has_client_options(const cxxopts::Options& options) {
  const auto& groups = options.groups();
  return std::find(groups.begin(), groups.end(), "client") != groups.end();
}

}  // namespace

bool takes_client_option_value(std::string_view name) {
  for (std::string_view known : {"-l", "--host", "--enc", "--encoding", "-t", "--timeout", "--basic-auth"}) {
    if (name == known) return true;
  }
  return false;
}

bool is_client_switch(std::string_view name) {
  for (std::string_view known : {"-d", "--debug", "--force-http", "--no-check-certificate"}) {
    if (name == known) return true;
  }
  return false;
}

std::optional<std::string> refused_client_option(std::string_view name) {
  if (name == "--https" || name == "-s") {
    return fmt::format("{}: clusterpin's REST API speaks plain HTTP, not TLS; leave {} out (to "
                       "reach a remote API over TLS, put a TLS proxy or an SSH tunnel in front of "
                       "it)", name, name);
  }
  if (name == "--secret") {
    // ctl sends its requests over libp2p, protected by the cluster secret, when --host names a
    // peer (/p2p/<id>); clusterpin's client only speaks HTTP to the REST API.
    return "--secret: clusterpin reaches the REST API over HTTP, not over libp2p, so it takes no "
           "cluster secret; leave --secret out and give --host the peer's REST API address "
           "(api.restapi.http_listen_multiaddress, default /ip4/127.0.0.1/tcp/9094), with "
           "--basic-auth if the API asks for credentials (a new peer's secret is given to "
           "'clusterpin init --secret')";
  }
  return std::nullopt;
}

void set_leading_options(std::vector<std::string> options) { leading_options() = std::move(options); }

std::optional<cxxopts::ParseResult> parse_args(cxxopts::Options& options, int argc, char** argv) {
  // Client options given before the applet name go first after the program name: one given
  // again after it wins, as the later of two does. An applet without them refuses them.
  if (!leading_options().empty() && !has_client_options(options)) {
    fmt::print(stderr, "{}: it takes no client options ('{}' was given before the applet name; "
                       "see '{} --help')\n",
               options.program(), leading_options().front(), options.program());
    return std::nullopt;
  }
  std::vector<char*> merged;
  if (argc > 0 && !leading_options().empty()) {
    merged.push_back(argv[0]);
    for (std::string& option : leading_options()) merged.push_back(option.data());
    for (int i = 1; i < argc; ++i) merged.push_back(argv[i]);
    merged.push_back(nullptr);
    argc = static_cast<int>(merged.size()) - 1;
    argv = merged.data();
  }
  // ipfs-cluster-ctl's --https and --secret: an unknown option alone would not say why
  // clusterpin has no use for them.
  if (has_client_options(options)) {
    for (int i = 1; i < argc && std::string_view(argv[i]) != "--"; ++i) {
      std::string_view arg = argv[i];
      if (!arg.starts_with("--")) continue;
      if (auto why = refused_client_option(arg.substr(0, arg.find('=')))) {
        fmt::print(stderr, "{}: {}\n", options.program(), *why);
        return std::nullopt;
      }
    }
  }
  std::optional<cxxopts::ParseResult> result;
  try {
    result = options.parse(argc, argv);
  } catch (const cxxopts::exceptions::incorrect_argument_type& e) {
    // Every typed option here is on/off (numbers are parsed by integer_option). cxxopts names
    // only the value ("Argument 'maybe' failed to parse"); the option is the one given it with
    // '=' (an on/off option takes no separate value).
    std::string what = plain_quotes(e.what());
    std::string value, option;
    if (auto open = what.find('\''), close = what.find('\'', open + 1);
        open != std::string::npos && close != std::string::npos) {
      value = what.substr(open + 1, close - open - 1);
    }
    for (int i = 1; i < argc && option.empty(); ++i) {
      std::string_view arg = argv[i];
      if (arg == "--") break;
      auto eq = arg.find('=');
      if (arg.starts_with("-") && eq != std::string_view::npos && arg.substr(eq + 1) == value) {
        option = std::string(arg.substr(0, eq));
      }
    }
    if (option.empty()) {
      fmt::print(stderr, "{}: {}; accepted for an on/off option: true or false (also 1 or 0)\n",
                 options.program(), what);
    } else {
      fmt::print(stderr, "{}: {}: \"{}\" is not on or off; accepted for an on/off option: true or "
                         "false (also 1 or 0)\n", options.program(), option, value);
    }
    return std::nullopt;
  } catch (const cxxopts::exceptions::exception& e) {
    fmt::print(stderr, "{}: {} (see '{} --help'; applets: {})\n", options.program(),
               plain_quotes(e.what()), options.program(), applet_names());
    return std::nullopt;
  }
  // Arguments that no option or positional took would otherwise be dropped without a word
  // (`state export backup.ndjson` writing to standard output). --help still wins.
  const auto& unmatched = result->unmatched();
  if (!unmatched.empty() && !flag(*result, "help")) {
    std::string accepted = positional_usage(options);
    fmt::print(stderr, "{}: unexpected argument '{}' ({}; see '{} --help')\n", options.program(),
               unmatched.front(),
               accepted.empty() ? "it takes no arguments, only options"
                                : fmt::format("it accepts: [options] {}", accepted),
               options.program());
    return std::nullopt;
  }
  // An empty --config (an unset shell variable) would otherwise name the root folder.
  if (result->count("config") != 0 && (*result)["config"].as<std::string>().empty() &&
      !flag(*result, "help")) {
    fmt::print(stderr, "{}: --config: the folder is empty; accepted: the path of a configuration "
                       "folder (default: $CLUSTERPIN_PATH, else ~/.clusterpin)\n",
               options.program());
    return std::nullopt;
  }
  return result;
}

bool flag(const cxxopts::ParseResult& args, const std::string& name) {
  return args.count(name) != 0 && args[name].as<bool>();
}

Result<std::optional<std::int64_t>> integer_option(const cxxopts::ParseResult& args,
                                                   const std::string& name, std::int64_t min,
                                                   std::int64_t max, std::string_view accepted) {
  if (args.count(name) == 0) return std::optional<std::int64_t>();
  const std::string text = args[name].as<std::string>();
  std::int64_t value = 0;
  auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (ec != std::errc() || end != text.data() + text.size() || value < min || value > max) {
    const bool integer = ec != std::errc::invalid_argument && end == text.data() + text.size();
    return make_error(fmt::format("--{}: \"{}\" is {}; accepted: {}", name, text,
                                  integer ? "out of range" : "not an integer", accepted));
  }
  return std::optional<std::int64_t>(value);
}

void add_help_option(cxxopts::Options& options) {
  options.add_options()("h,help", "Print this help and exit");
}

bool print_help_if_asked(const cxxopts::Options& options, const cxxopts::ParseResult& args) {
  if (!flag(args, "help")) return false;
  fmt::print("{}", options.help());
  return true;
}

void add_config_option(cxxopts::Options& options) {
  options.add_options()("c,config",
                        "Configuration folder (default: $CLUSTERPIN_PATH, else ~/.clusterpin)",
                        cxxopts::value<std::string>(), "DIR");
}

std::string config_dir(const cxxopts::ParseResult& args) {
  if (args.count("config") != 0) return args["config"].as<std::string>();
  if (const char* env = std::getenv("CLUSTERPIN_PATH"); env != nullptr && *env != '\0') {
    return env;
  }
  const char* home = std::getenv("HOME");
  return std::string(home != nullptr && *home != '\0' ? home : ".") + "/.clusterpin";
}

void add_client_options(cxxopts::Options& options) {
  options.add_options("client")
      ("l,host", "REST API address of the peer to talk to (one address; forms: see man clusterpin)",
       cxxopts::value<std::string>()->default_value("/ip4/127.0.0.1/tcp/9094"), "ADDRESS")
      ("enc,encoding", "Output format: text or json (--encoding is the same option)",
       cxxopts::value<std::string>()->default_value("text"), "text|json")
      ("t,timeout", "Give up after this many seconds (0: never)",
       cxxopts::value<std::string>()->default_value("0"), "SECONDS")
      ("basic-auth", "Credentials user[:password] (default: $CLUSTER_CREDENTIALS)",
       cxxopts::value<std::string>(), "USER[:PW]")
      ("force-http", "Accepted for ipfs-cluster-ctl scripts: the API is plain HTTP already")
      ("no-check-certificate",
       "Accepted for ipfs-cluster-ctl scripts: plain HTTP has no certificate to check")
      ("d,debug", "Print each request line and the answer's status line on standard error");
}

std::vector<std::string> split_commas(const std::string& text) {
  std::vector<std::string> out;
  std::size_t start = 0;
  while (start <= text.size()) {
    auto comma = text.find(',', start);
    if (comma == std::string::npos) comma = text.size();
    if (comma > start) out.push_back(text.substr(start, comma - start));
    start = comma + 1;
  }
  return out;
}

Result<std::vector<std::string>> address_list(const cxxopts::ParseResult& args, const std::string& name) {
  auto list = split_commas(args[name].as<std::string>());
  if (list.empty()) {
    return make_error(fmt::format("--{}: no address given; accepted: comma-separated multiaddrs "
                                  "(e.g. /ip4/10.0.0.2/tcp/9096/p2p/12D3KooW...)",
                                  name));
  }
  return list;
}

int usage_error(std::string_view applet, std::string_view message) {
  fmt::print(stderr, "clusterpin {}: {}\n", applet, message);
  return kExitUsage;
}

}  // namespace clusterpin::cmd

namespace clusterpin::cmd {
namespace {

cxxopts::Options make_options(std::string program, std::string_view summary,
                              void (*declare)(cxxopts::Options&)) {
  cxxopts::Options options(std::move(program), std::string(summary));
  add_help_option(options);
  declare(options);
  return options;
}

}  // namespace

int run_simple(std::string_view applet, std::string_view summary,
               void (*declare)(cxxopts::Options& options),
               int (*run)(const cxxopts::ParseResult& args), int argc, char** argv) {
  cxxopts::Options options = make_options(fmt::format("clusterpin {}", applet), summary, declare);
  auto args = parse_args(options, argc, argv);
  if (!args) return kExitUsage;
  if (print_help_if_asked(options, *args)) return kExitOk;
  return run(*args);
}

int run_subcommands(std::string_view applet, std::span<const Subcommand> subcommands, int argc,
                    char** argv) {
  auto list = [&] {
    std::string names;
    for (const Subcommand& s : subcommands) names += (names.empty() ? "" : ", ") + std::string(s.name);
    return names;
  };
  std::string_view first = argc >= 2 ? std::string_view(argv[1]) : std::string_view();
  if (first.empty() || first == "--help" || first == "-h") {
    fmt::print(first.empty() ? stderr : stdout, "Usage: clusterpin {} <{}> [options]\n\n", applet,
               list());
    for (const Subcommand& s : subcommands) {
      cxxopts::Options options =
          make_options(fmt::format("clusterpin {} {}", applet, s.name), s.summary, s.declare);
      fmt::print(first.empty() ? stderr : stdout, "{}\n", options.help());
    }
    return first.empty() ? kExitUsage : kExitOk;
  }
  for (const Subcommand& s : subcommands) {
    if (s.name != first) continue;
    cxxopts::Options options =
        make_options(fmt::format("clusterpin {} {}", applet, s.name), s.summary, s.declare);
    auto args = parse_args(options, argc - 1, argv + 1);
    if (!args) return kExitUsage;
    if (print_help_if_asked(options, *args)) return kExitOk;
    return s.run(*args);
  }
  fmt::print(stderr, "clusterpin {}: unknown subcommand '{}' (accepted: {})\n", applet, first,
             list());
  return kExitUsage;
}

}  // namespace clusterpin::cmd
