// `clusterpin daemon`: run a cluster peer (secure links, Raft, SQLite, REST API). One io_context
// thread runs everything but the Raft log's fsyncs. A lock file stops a second daemon on the same
// config folder. SIGINT/SIGTERM stop it cleanly (leaving the cluster first with --leave).
#include <fcntl.h>
#include <sys/file.h>
#include <sys/resource.h>
#include <unistd.h>

#include <cerrno>
#include <csignal>
#include <filesystem>
#include <cstring>
#include <string>
#include <vector>

#include <asio.hpp>
#include <fmt/core.h>
#include <fmt/ranges.h>

#include "cmd/applet.hpp"
#include "cmd/cli.hpp"
#include "cmd/config_file.hpp"
#include "net/http_endpoint.hpp"
#include "node/backup.hpp"
#include "node/peer.hpp"
#include "node/rest_api.hpp"

namespace clusterpin::cmd {
namespace {

void declare_daemon(cxxopts::Options& o) {
  add_config_option(o);
  o.add_options()
      ("j,bootstrap", "Join a running cluster through these peers (comma-separated multiaddrs)",
       cxxopts::value<std::string>(), "MULTIADDRS")
      ("x,leave", "Leave the cluster on clean shutdown (as cluster.leave_on_shutdown)")
      ("insecure-empty-secret", "Accept an empty cluster secret (anyone can join: insecure)");
}

void log_line(const std::string& line) { fmt::print(stderr, "{}\n", line); }

// Raises the soft limit of open files to the hard one, as Go programs (IPFS Cluster, Kubo) do
// at start: the usual soft limit of 1024 is what the REST API alone may hold (max_connections),
// besides peer links, IPFS calls and SQLite files.
void raise_open_files_limit() {
  rlimit limit{};
  if (::getrlimit(RLIMIT_NOFILE, &limit) != 0 || limit.rlim_cur >= limit.rlim_max) return;
  const rlim_t was = limit.rlim_cur;
  limit.rlim_cur = limit.rlim_max;
  if (::setrlimit(RLIMIT_NOFILE, &limit) != 0)
    log_line(fmt::format("could not raise the open files limit from {}: {}", was, std::strerror(errno)));
}

// A peer that left (or was removed) keeps no state of the cluster: its data folder is moved
// aside (after a JSON backup) and the last known peers go into cluster.bootstrap, so a restart
// joins the cluster again from a clean folder.
void forget_cluster(const std::string& dir, ServiceConfig config, const std::vector<std::string>& rejoin) {
  const std::filesystem::path data = data_folder_path(config.raft.data_folder, dir);
  auto moved = node::move_data_aside(dir, data, static_cast<int>(config.raft.backups_rotate));
  log_line(moved ? "left the cluster: " + *moved : "left the cluster, but " + moved.error().message);
  forget_member_of(dir);
  if (rejoin.empty()) return;
  config.cluster.bootstrap = rejoin;
  if (auto s = write_config_file(service_json_path(dir), config); !s) {
    log_line("cannot record cluster.bootstrap: " + s.error().message);
    return;
  }
  log_line(fmt::format("cluster.bootstrap now lists {} address(es): a restart rejoins the cluster",
                       rejoin.size()));
}

int daemon_main(const cxxopts::ParseResult& args) {
  raise_open_files_limit();
  std::string dir = config_dir(args);
  ConfigLoadOptions load_options;
  load_options.allow_empty_secret = flag(args, "insecure-empty-secret");
  auto config = load_config_file(service_json_path(dir), load_options);
  if (!config) {
    fmt::print(stderr, "clusterpin daemon: {}\n", config.error().message);
    return kExitUsage;
  }
  // The IPFS address is used only once the peer runs: a bad one would surface in `id` alone.
  if (auto ipfs = net::parse_http_endpoint(config->ipfshttp.node_multiaddress); !ipfs) {
    fmt::print(stderr, "clusterpin daemon: {}: ipfs_connector.ipfshttp.node_multiaddress: {}\n",
               service_json_path(dir), ipfs.error().message);
    return kExitUsage;
  }
  std::vector<std::string> bootstrap = config->cluster.bootstrap;
  if (args.count("bootstrap") != 0) {
    auto given = address_list(args, "bootstrap");
    if (!given) {
      fmt::print(stderr, "clusterpin daemon: {}\n", given.error().message);
      return kExitUsage;
    }
    bootstrap = std::move(given).value();
  }
  auto lock = lock_config_dir(dir, "another daemon cannot share its data folder");
  if (!lock) {
    fmt::print(stderr, "clusterpin daemon: {}\n", lock.error().message);
    return kExitUsage;
  }
  // --leave=false overrides cluster.leave_on_shutdown as --leave does.
  bool leave = args.count("leave") != 0 ? flag(args, "leave") : config->cluster.leave_on_shutdown;

  asio::io_context io;
  node::PeerOptions options;
  options.config = *config;
  options.config_dir = dir;
  options.bootstrap = std::move(bootstrap);
  options.bootstrap_from_flag = args.count("bootstrap") != 0;
  options.allow_empty_secret = load_options.allow_empty_secret;
  options.member_of = read_member_of(dir).value_or("");
  options.log = log_line;
  auto peer = node::Peer::open(io, options);
  if (!peer) {
    fmt::print(stderr, "clusterpin daemon: {}\n", peer.error().message);
    return kExitUsage;
  }
  node::RestApi api(io, **peer);
  int exit_code = 0;
  bool stopping = false;
  bool left = false;                // removed from the cluster, or left it on shutdown
  std::vector<std::string> rejoin;  // the other members' addresses, for cluster.bootstrap
  asio::signal_set signals(io, SIGINT, SIGTERM);
  auto shutdown = [&](int code) {
    if (stopping) return;
    stopping = true;
    exit_code = code;
    api.stop();
    bool leaving = leave && code == 0 && !left;
    if (leaving) rejoin = (*peer)->other_member_addresses();
    (*peer)->stop(leaving, [&, leaving](Status s) {
      if (leaving && s) left = true;
      signals.cancel();
      io.stop();
    });
  };
  signals.async_wait([&](const std::error_code& ec, int signal) {
    if (ec) return;
    log_line(fmt::format("received {}, shutting down", signal == SIGINT ? "SIGINT" : "SIGTERM"));
    shutdown(0);
  });
  (*peer)->on_removed([&] {
    log_line("this peer was removed from the cluster; shutting down");
    rejoin = (*peer)->other_member_addresses();
    left = true;
    shutdown(0);
  });
  log_line(fmt::format("starting peer {} ({})", config->cluster.id, config->cluster.peername));
  (*peer)->start([&](Status ready) {
    if (!ready) {
      log_line("clusterpin daemon: " + ready.error().message);
      shutdown(1);
      return;
    }
    auto bound = api.start();
    if (!bound) {
      log_line("clusterpin daemon: " + bound.error().message);
      shutdown(1);
      return;
    }
    log_line(fmt::format("REST API listening on {}", *bound));
    if (auto s = write_member_of(dir, (*peer)->cluster_id()); !s) {
      log_line("warning: " + s.error().message + " (it lets a start on a lost data folder be "
               "refused instead of founding the cluster again)");
    }
    log_line(fmt::format("** clusterpin peer {} is READY ** peers: {}", config->cluster.id,
                         fmt::join((*peer)->member_ids(), ", ")));
  });
  io.run();
  peer->reset();
  if (left) forget_cluster(dir, *config, rejoin);
  ::close(*lock);
  return exit_code;
}

}  // namespace

int run_daemon(int argc, char** argv) {
  return run_simple("daemon", "Run a cluster peer", declare_daemon, daemon_main, argc, argv);
}

}  // namespace clusterpin::cmd
