// `clusterpin state export|import|cleanup`: offline tools on a peer's data folder. Each takes the
// daemon's lock file first, so none runs beside a daemon on the same folder. Export streams the
// pinset as applied; import and cleanup move the current data folder aside (after a JSON backup,
// skipped with a warning when state.db cannot be read)
// and never change anything when the input has a bad line or the user does not confirm.
#include <fcntl.h>
#include <sodium.h>
#include <sys/file.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <optional>
#include <string>
#include <vector>

#include <fmt/core.h>
#include <fmt/ranges.h>

#include "cmd/applet.hpp"
#include "cmd/cli.hpp"
#include "cmd/config_file.hpp"
#include "core/encoding.hpp"
#include "core/json_text.hpp"
#include "core/multiaddr.hpp"
#include "core/pin.hpp"
#include "node/backup.hpp"
#include "store/snapshot_file.hpp"
#include "node/peer.hpp"
#include "node/raft_driver.hpp"
#include "store/raft_log.hpp"
#include "store/state_db.hpp"

namespace clusterpin::cmd {
namespace {

namespace fs = std::filesystem;

constexpr std::size_t kImportBatch = 10000;  // pins per state.db transaction

void declare_export(cxxopts::Options& o) {
  add_config_option(o);
  o.add_options()("f,file", "Write to this file instead of standard output",
                  cxxopts::value<std::string>(), "FILE");
}

void declare_import(cxxopts::Options& o) {
  add_config_option(o);
  // clang-format off
  o.add_options()
      ("force", "Replace existing state without asking")
      ("f,file", "NDJSON file of pins, or give it as the argument ('-' or none: standard input)",
       cxxopts::value<std::string>(), "FILE");
  // clang-format on
  o.parse_positional({"file"});
  o.positional_help("[file]");
  o.show_positional_help();  // list -f, --file too: it is also an option
}

void declare_cleanup(cxxopts::Options& o) {
  add_config_option(o);
  o.add_options()("force", "Do not ask for confirmation");
}

int fail(std::string_view sub, const std::string& message) {
  fmt::print(stderr, "clusterpin state {}: {}\n", sub, message);
  return kExitUsage;
}

// What every subcommand works on: the config folder (locked), its settings and data folder.
struct Peer {
  std::string config_dir;
  ServiceConfig config;
  fs::path data_dir;
  int lock_fd = -1;

  Peer() = default;
  Peer(const Peer&) = delete;
  Peer& operator=(const Peer&) = delete;
  ~Peer() {
    if (lock_fd >= 0) ::close(lock_fd);
  }
  int rotate() const {
    return static_cast<int>(std::clamp<std::int64_t>(config.raft.backups_rotate, 1, 1000));
  }
};

// Loads service.json and takes <config>/clusterpin.lock as the daemon does (flock, exclusive).
Status open_peer(const cxxopts::ParseResult& args, Peer& peer) {
  peer.config_dir = config_dir(args);
  ConfigLoadOptions options;
  options.allow_empty_secret = true;  // offline: the secret protects links, not the data folder
  auto config = load_config_file(service_json_path(peer.config_dir), options);
  if (!config) return config.error();
  peer.config = std::move(config).value();
  peer.data_dir = data_folder_path(peer.config.raft.data_folder, peer.config_dir);

  auto fd = lock_config_dir(peer.config_dir, "the state tools work only offline");
  if (!fd) return fd.error();
  peer.lock_fd = *fd;
  return {};
}

bool has_state(const Peer& peer) {
  std::error_code ec;
  return fs::exists(peer.data_dir / store::StateDb::kFileName, ec);
}

// Asks on the terminal unless --force. Refuses (false, with a message) when it cannot ask.
bool confirmed(std::string_view sub, const cxxopts::ParseResult& args, const std::string& what,
               bool stdin_is_input) {
  if (flag(args, "force")) return true;
  if (stdin_is_input || ::isatty(STDIN_FILENO) == 0) {
    fmt::print(stderr,
               "clusterpin state {}: {}; standard input is not a terminal to confirm on, so pass "
               "--force to go ahead\n",
               sub, what);
    return false;
  }
  std::string question = what;
  question[0] = static_cast<char>(std::toupper(static_cast<unsigned char>(question[0])));
  fmt::print(stderr, "{}. Continue? [y/N] ", question);
  std::fflush(stderr);
  std::string answer;
  if (!std::getline(std::cin, answer)) return false;
  bool yes = answer == "y" || answer == "Y" || answer == "yes";
  if (!yes) fmt::print(stderr, "clusterpin state {}: nothing changed\n", sub);
  return yes;
}

Result<std::vector<std::string>> founding_voters(const ServiceConfig& config) {
  std::vector<std::string> voters{config.cluster.id};
  for (const auto& text : config.cluster.peers) {
    auto m = Multiaddr::parse(text);
    if (!m || !m->peer_id()) {
      return make_error(
          fmt::format("service.json: cluster.peers: \"{}\" has no /p2p/<peer id>; every entry must "
                      "name its peer",
                      text));
    }
    std::string id = m->peer_id()->to_string();
    if (std::find(voters.begin(), voters.end(), id) == voters.end()) voters.push_back(id);
  }
  std::sort(voters.begin(), voters.end());
  return voters;
}

Result<std::string> move_state_aside(const Peer& peer) {
  return node::move_data_aside(peer.config_dir, peer.data_dir, peer.rotate());
}

// ---------------------------------------------------------------------------------------------
// export

int run_export(const cxxopts::ParseResult& args) {
  Peer peer;
  if (Status s = open_peer(args, peer); !s) return fail("export", s.error().message);
  if (!has_state(peer)) {
    // A peer that left, was removed or was cleaned up keeps its last state beside the folder.
    fs::path aside = node::old_folder(peer.data_dir, 0);
    std::error_code ec;
    std::string where =
        fs::exists(aside / store::StateDb::kFileName, ec)
            ? fmt::format("the state it held before it left or was reset is in {} (export it with "
                          "consensus.raft.data_folder set to that folder), and JSON backups of the "
                          "pinset are in {}",
                          aside.string(), node::backups_folder(peer.config_dir).string())
            : "this peer has never run here";
    return fail("export", fmt::format("no state in {}: {}; nothing to export", peer.data_dir.string(), where));
  }
  auto state = store::StateDb::open(peer.data_dir);
  if (!state) return fail("export", state.error().message);
  auto applied = state->applied();
  if (!applied) return fail("export", applied.error().message);
  std::error_code ec;
  if (fs::exists(peer.data_dir / store::RaftLog::kFileName, ec)) {
    auto log = store::RaftLog::open(peer.data_dir);
    auto last = log ? log->last_index() : Result<raft::Index>(log.error());
    if (last && *last > applied->index) {
      fmt::print(
          stderr,
          "warning: raft.db holds entries {} to {} after the applied state ({}); any of them "
          "that were committed are not in this export (start and stop the daemon once to "
          "apply them)\n",
          applied->index + 1, *last, applied->index);
    }
  }
  auto reader = state->open_reader();
  if (!reader) return fail("export", reader.error().message);

  std::string path = args.count("file") != 0 ? args["file"].as<std::string>() : "-";
  std::FILE* out = stdout;
  if (path != "-") {
    out = std::fopen(path.c_str(), "we");
    if (!out)
      return fail("export", fmt::format("cannot create {}: {}", path, std::strerror(errno)));
  }
  Status bad;
  bool write_failed = false;
  TextBuffer line;
  Status listed = reader->for_each_pin([&](std::string_view, std::string_view bytes) {
    line.clear();
    if (Status s = append_stored_pin_json(line, bytes); !s) {
      bad = make_error("state.db holds an unreadable pin: " + s.error().message);
      return false;
    }
    line.append("\n");
    if (std::fwrite(line.view().data(), 1, line.size(), out) != line.size()) write_failed = true;
    return !write_failed;
  });
  if (std::fflush(out) != 0) write_failed = true;
  if (out != stdout && std::fclose(out) != 0) write_failed = true;
  if (!listed) return fail("export", listed.error().message);
  if (!bad) return fail("export", bad.error().message);
  if (write_failed) {
    return fail("export", fmt::format("cannot write {}: {}", path == "-" ? "standard output" : path,
                                      std::strerror(errno)));
  }
  return kExitOk;
}

// ---------------------------------------------------------------------------------------------
// import

// Builds a complete data folder in `staging` from NDJSON on `in`: state.db with the pins applied
// as entries 1..k of term 1, a snapshot of it at k, and raft.db whose log starts after that
// snapshot (founding voters as its configuration). Peers that join later receive the pins
// through the snapshot. Returns how many pins were stored and how many lines repeated a CID.
struct Imported {
  std::uint64_t pins = 0;      // distinct CIDs stored
  std::uint64_t repeated = 0;  // lines whose CID an earlier line had (the last line of a CID wins)
};

Result<Imported> build_imported_folder(const Peer& peer, std::istream& in,
                                            const std::string& source, const fs::path& staging) {
  auto voters = founding_voters(peer.config);
  if (!voters) return voters.error();
  const std::string cluster = node::derive_cluster_id(*voters);

  auto state = store::StateDb::open(staging);
  if (!state) return state.error();
  if (Status s = state->set_cluster_id(cluster); !s) return s.error();

  raft::Index index = 0;
  std::uint64_t count = 0;
  std::vector<store::StateOp> batch;
  auto flush = [&]() -> Status {
    auto applied = state->apply(++index, 1, batch);
    if (!applied) return applied.error();
    batch.clear();
    return {};
  };
  std::string line;
  std::uint64_t number = 0;
  while (std::getline(in, line)) {
    ++number;
    if (line.find_first_not_of(" \t\r") == std::string::npos) continue;
    auto pin = pin_from_json(line);
    if (!pin)
      return make_error(fmt::format("{}: line {}: {}", source, number, pin.error().message));
    const auto& bytes = pin->cid.bytes();
    batch.push_back(
        store::StateOp::put_pin(std::string(bytes.begin(), bytes.end()), encode_pin(*pin)));
    ++count;
    if (batch.size() >= kImportBatch) {
      if (Status s = flush(); !s) return s.error();
    }
  }
  if (in.bad()) return make_error(fmt::format("cannot read {}", source));
  if (!batch.empty() || index == 0) {
    if (Status s = flush(); !s) return s.error();
  }

  fs::path snapshot = node::RaftDriver::snapshot_file(staging, index);
  std::error_code ec;
  fs::create_directories(snapshot.parent_path(), ec);
  if (ec)
    return make_error(
        fmt::format("cannot create {}: {}", snapshot.parent_path().string(), ec.message()));
  auto taken = state->create_snapshot(snapshot);
  if (!taken) return taken.error();

  auto log = store::RaftLog::open(staging);
  if (!log) return log.error();
  if (Status s = log->set_cluster_id(cluster); !s) return s.error();
  store::LogBatch founding;
  founding.snapshot = raft::SnapshotMeta{index, 1, raft::ConfState{*voters, {}}};
  founding.hard_state = raft::HardState{1, "", index};
  if (Status s = log->apply(founding); !s) return s.error();
  auto reader = state->open_reader();
  if (!reader) return reader.error();
  auto stored = reader->count_pins();
  if (!stored) return stored.error();
  return Imported{*stored, count - std::min(count, *stored)};
}

int run_import(const cxxopts::ParseResult& args) {
  // The file given twice (as the argument and with -f, or -f twice): which one was meant is
  // unknown, and the import replaces the whole state.
  if (args.count("file") > 1) {
    std::vector<std::string> given;
    for (const auto& kv : args.arguments()) {
      if (kv.key() == "file") given.push_back("'" + kv.value() + "'");
    }
    return fail("import", fmt::format("the file is given {} times ({}); give it once, as the "
                                      "argument or with -f/--file",
                                      given.size(), fmt::join(given, ", ")));
  }
  Peer peer;
  if (Status s = open_peer(args, peer); !s) return fail("import", s.error().message);
  std::string source = args.count("file") != 0 ? args["file"].as<std::string>() : "-";
  bool from_stdin = source == "-";
  std::ifstream file;
  if (!from_stdin) {
    std::error_code ec;
    if (fs::is_directory(source, ec)) {
      return fail("import", fmt::format("{} is a folder; accepted: an NDJSON file of pins (as "
                                        "'state export' writes), or - for standard input",
                                        source));
    }
    file.open(source, std::ios::binary);
    if (!file)
      return fail("import", fmt::format("cannot read {}: {}", source, std::strerror(errno)));
  }
  std::string what =
      has_state(peer)
          ? fmt::format(
                "this replaces the whole state of this peer ({}) with the pins in {}; the "
                "current data folder is moved aside after a JSON backup",
                peer.data_dir.string(), from_stdin ? "standard input" : source)
          : fmt::format("this creates the state of this peer ({}) from the pins in {}",
                        peer.data_dir.string(), from_stdin ? "standard input" : source);
  if (!confirmed("import", args, what, from_stdin)) return kExitUsage;

  fs::path staging = fs::path(peer.data_dir.string() + ".importing");
  std::error_code ec;
  fs::remove_all(staging, ec);  // a previous import that was interrupted
  auto built = build_imported_folder(peer, from_stdin ? std::cin : file,
                                     from_stdin ? "standard input" : source, staging);
  if (!built) {
    fs::remove_all(staging, ec);
    return fail("import", built.error().message + "; nothing was changed");
  }
  auto aside = move_state_aside(peer);
  if (!aside) {
    fs::remove_all(staging, ec);
    return fail("import", aside.error().message);
  }
  fs::rename(staging, peer.data_dir, ec);
  if (ec) {
    return fail("import", fmt::format("the imported state is complete in {}, but renaming it to {} "
                                      "failed: {} (rename it by hand){}{}",
                                      staging.string(), peer.data_dir.string(), ec.message(),
                                      aside->empty() ? "" : "; ", *aside));
  }
  if (Status s = store::sync_parent_directory(fs::absolute(peer.data_dir)); !s) {
    return fail("import", s.error().message);
  }
  if (!aside->empty()) fmt::print(stderr, "{}\n", *aside);
  fmt::print(stderr, "imported {} pins into {}", built->pins, peer.data_dir.string());
  if (built->repeated != 0) {
    fmt::print(stderr, " ({} line{} repeated the CID of an earlier line; the last line of each CID "
               "was kept)", built->repeated, built->repeated == 1 ? "" : "s");
  }
  fmt::print(stderr, "\n");
  return kExitOk;
}

// ---------------------------------------------------------------------------------------------
// cleanup

// A founding peer (cluster.peers) restarted with an empty folder would found the cluster again,
// as a voter that forgot its log and its votes: it could help elect a leader that lacks
// entries it had acknowledged. After a cleanup its next start joins through the other peers
// instead (cluster.bootstrap, unless already set), which refuse a voter that lost its state
// until it is removed (`peers rm`), then take it back as a new learner.
void rejoin_next_time(Peer& peer) {
  if (!peer.config.cluster.bootstrap.empty()) return;
  std::vector<std::string> others;
  for (const auto& text : peer.config.cluster.peers) {
    auto m = Multiaddr::parse(text);
    if (m && m->peer_id() && m->peer_id()->to_string() != peer.config.cluster.id) others.push_back(text);
  }
  if (others.empty()) return;  // a single-peer cluster founds itself again, which is safe
  ServiceConfig config = peer.config;
  config.cluster.bootstrap = others;
  if (Status s = write_config_file(service_json_path(peer.config_dir), config); !s) {
    fmt::print(stderr, "cannot record cluster.bootstrap: {}; start the peer with --bootstrap "
               "<a member's address> so that it joins instead of founding the cluster again\n",
               s.error().message);
    return;
  }
  fmt::print(stderr,
             "cluster.bootstrap now lists the {} other peer(s) of cluster.peers: the next start "
             "joins the cluster through them. If this peer is still a member, remove it first "
             "(`clusterpin peers rm {}` on another peer). To found a new cluster instead (every "
             "peer cleaned up), empty cluster.bootstrap.\n",
             others.size(), peer.config.cluster.id);
}

int run_cleanup(const cxxopts::ParseResult& args) {
  Peer peer;
  if (Status s = open_peer(args, peer); !s) return fail("cleanup", s.error().message);
  std::error_code ec;
  if (!fs::exists(peer.data_dir, ec)) {
    fmt::print(stderr, "nothing to clean up: {} does not exist\n", peer.data_dir.string());
    // A lost data folder: the peer still counts as a member of its cluster until reset.
    if (read_member_of(peer.config_dir)) {
      forget_member_of(peer.config_dir);
      rejoin_next_time(peer);
    }
    return kExitOk;
  }
  std::string what = fmt::format(
      "this resets this peer: its data folder {} is moved aside after a JSON backup of the pinset",
      peer.data_dir.string());
  if (!confirmed("cleanup", args, what, false)) return kExitUsage;
  auto aside = move_state_aside(peer);
  if (!aside) return fail("cleanup", aside.error().message);
  fmt::print(stderr, "{}\n", *aside);
  forget_member_of(peer.config_dir);
  rejoin_next_time(peer);
  return kExitOk;
}

constexpr Subcommand kSubcommands[] = {
    {"export", "Write the pinset as NDJSON, one pin a line", declare_export, run_export},
    {"import", "Replace the pinset with pins read from NDJSON", declare_import, run_import},
    {"cleanup", "Reset this peer's state (a backup is kept)", declare_cleanup, run_cleanup},
};

}  // namespace

int run_state(int argc, char** argv) {
  return run_subcommands("state", kSubcommands, argc, argv);
}

}  // namespace clusterpin::cmd
