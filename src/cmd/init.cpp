// `clusterpin init`: write <config dir>/service.json with a fresh Ed25519 identity, the cluster
// secret (given, from $CLUSTER_SECRET, or 32 random bytes) and every default; print the peer id
// and the multiaddr other peers use to reach this one. It takes the config folder's lock as the
// daemon and the state tools do, so it never rewrites the file under a running daemon. With
// --force over an existing service.json it keeps that file's identity (cluster.private_key and
// its cluster.id: the data folder holds the Raft state of that peer id, and a new identity could
// never rejoin it) and its cluster secret, unless --secret or $CLUSTER_SECRET gives one.
#include <ifaddrs.h>
#include <netinet/in.h>
#include <sys/stat.h>
#include <unistd.h>
#include <arpa/inet.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <optional>
#include <sstream>
#include <string>
#include <vector>

#include <fmt/core.h>
#include <rapidjson/document.h>
#include <sodium.h>

#include "cmd/applet.hpp"
#include "cmd/cli.hpp"
#include "cmd/config_file.hpp"
#include "core/encoding.hpp"
#include "core/identity.hpp"
#include "core/multiaddr.hpp"
#include "net/http_endpoint.hpp"
#include "net/rpc.hpp"
#include "store/raft_log.hpp"
#include "store/state_db.hpp"

namespace clusterpin::cmd {
namespace {

void declare_init(cxxopts::Options& o) {
  add_config_option(o);
  o.add_options()
      ("f,force", "Overwrite an existing service.json (its identity and secret are kept)")
      ("secret", "Cluster secret as 64 hex chars (default: $CLUSTER_SECRET, else random)",
       cxxopts::value<std::string>(), "HEX")
      ("peers", "Comma-separated multiaddrs of the other peers (fills cluster.peers)",
       cxxopts::value<std::string>(), "MULTIADDRS")
      ("peername", "A human-friendly name for this peer (default: the host name)",
       cxxopts::value<std::string>(), "NAME")
      ("listen", "Peer-to-peer listen address (cluster.listen_multiaddress)",
       cxxopts::value<std::string>(), "MULTIADDR")
      ("api", "REST API listen address (api.restapi.http_listen_multiaddress)",
       cxxopts::value<std::string>(), "MULTIADDR")
      ("ipfs", "The IPFS daemon's RPC API (ipfs_connector.ipfshttp.node_multiaddress)",
       cxxopts::value<std::string>(), "MULTIADDR")
      ("insecure-empty-secret", "Write an empty secret: anyone who can reach the peer can join");
}

std::string host_name() {
  char name[256] = {};
  if (::gethostname(name, sizeof(name) - 1) != 0 || name[0] == '\0') return "clusterpin";
  return name;
}

// The first non-loopback IPv4 address of this host, for the "reach me at" line.
std::string first_public_ipv4() {
  ifaddrs* list = nullptr;
  std::string found = "127.0.0.1";
  if (::getifaddrs(&list) != 0) return found;
  for (ifaddrs* i = list; i != nullptr; i = i->ifa_next) {
    if (i->ifa_addr == nullptr || i->ifa_addr->sa_family != AF_INET) continue;
    auto* in = reinterpret_cast<sockaddr_in*>(i->ifa_addr);
    char text[INET_ADDRSTRLEN] = {};
    ::inet_ntop(AF_INET, &in->sin_addr, text, sizeof(text));
    if (std::string_view(text).substr(0, 4) != "127.") {
      found = text;
      break;
    }
  }
  ::freeifaddrs(list);
  return found;
}

std::string reachable_address(const std::string& listen, const PeerId& id) {
  std::string text = listen;
  if (auto pos = text.find("/ip4/0.0.0.0/"); pos != std::string::npos) {
    text.replace(pos, 13, "/ip4/" + first_public_ipv4() + "/");
  }
  return text + "/p2p/" + id.to_string();
}

Result<std::string> choose_secret(const cxxopts::ParseResult& args) {
  if (args.count("secret") != 0 && flag(args, "insecure-empty-secret")) {
    return make_error("--secret and --insecure-empty-secret contradict each other; accepted: one "
                      "of them");
  }
  std::string secret;
  std::string_view source = "--secret";  // where the secret came from, named in its errors
  if (args.count("secret") != 0) {
    secret = args["secret"].as<std::string>();
  } else if (const char* env = std::getenv("CLUSTER_SECRET"); env != nullptr) {
    secret = env;
    source = "$CLUSTER_SECRET";
  } else if (!flag(args, "insecure-empty-secret")) {
    unsigned char bytes[32];
    randombytes_buf(bytes, sizeof(bytes));
    return hex_encode(ByteView(bytes, sizeof(bytes)));
  }
  if (secret.empty()) {
    if (flag(args, "insecure-empty-secret")) return secret;
    return make_error(fmt::format(
        "{}: the secret is empty: anyone could join this cluster; accepted: 64 hex characters, "
        "or --insecure-empty-secret{}",
        source, source == "--secret" ? "" : " (or unset $CLUSTER_SECRET for a new secret)"));
  }
  if (auto bytes = decode_secret(secret); !bytes) {
    return make_error(fmt::format("{}: secret {}", source, bytes.error().message));
  }
  return secret;
}

// The checks the daemon makes of these addresses when it starts, made now: a peer address or
// the listen address is a TCP multiaddr, the REST API and IPFS addresses are what an HTTP endpoint
// accepts.
Status check_peer_multiaddr(std::string_view flag, const std::string& text) {
  auto m = Multiaddr::parse(text);
  if (!m) return make_error(fmt::format("--{}: {}", flag, m.error().message));
  // --listen is listened on (an address); --peers are dialled (an address or a name).
  if (flag == "listen") {
    if (auto tcp = net::tcp_endpoint_of(*m); !tcp)
      return make_error(fmt::format("--{}: {}", flag, tcp.error().message));
  } else if (auto target = net::dial_target_of(*m); !target) {
    return make_error(fmt::format("--{}: {}", flag, target.error().message));
  }
  return {};
}

// --api is listened on (an address), --ipfs is connected to (an address or a name).
Result<net::HttpEndpoint> check_http_multiaddr(std::string_view flag, const std::string& text) {
  if (auto m = Multiaddr::parse(text); !m) return make_error(fmt::format("--{}: {}", flag, m.error().message));
  auto endpoint = flag == "api" ? net::parse_http_listen_endpoint(text) : net::parse_http_endpoint(text);
  if (!endpoint) return make_error(fmt::format("--{}: {}", flag, endpoint.error().message));
  return endpoint;
}

// What an existing service.json says about the peer, read leniently (only the keys init needs,
// so a file that no longer loads still gives up its identity).
struct OldConfig {
  std::optional<Identity> identity;  // from cluster.private_key, when it decodes
  std::string why_no_identity;       // otherwise, the reason
  std::filesystem::path data_dir;    // consensus.raft.data_folder, else <config>/clusterpin-data
  std::string secret;                // cluster.secret, when it is a valid one
};

OldConfig read_old_config(const std::string& dir, const std::string& path) {
  OldConfig old;
  old.data_dir = data_folder_path("", dir);
  std::ifstream in(path, std::ios::binary);
  std::stringstream text;
  text << in.rdbuf();
  rapidjson::Document doc;
  doc.Parse(text.str().c_str());
  if (!in || doc.HasParseError() || !doc.IsObject()) {
    old.why_no_identity = fmt::format("{} cannot be read as JSON", path);
    return old;
  }
  if (doc.HasMember("consensus") && doc["consensus"].IsObject() &&
      doc["consensus"].HasMember("raft") && doc["consensus"]["raft"].IsObject() &&
      doc["consensus"]["raft"].HasMember("data_folder") &&
      doc["consensus"]["raft"]["data_folder"].IsString() &&
      doc["consensus"]["raft"]["data_folder"].GetStringLength() > 0) {
    old.data_dir = data_folder_path(doc["consensus"]["raft"]["data_folder"].GetString(), dir);
  }
  if (doc.HasMember("cluster") && doc["cluster"].IsObject() && doc["cluster"].HasMember("secret") &&
      doc["cluster"]["secret"].IsString()) {
    std::string secret = doc["cluster"]["secret"].GetString();
    if (decode_secret(secret)) old.secret = std::move(secret);
  }
  if (!doc.HasMember("cluster") || !doc["cluster"].IsObject() ||
      !doc["cluster"].HasMember("private_key") || !doc["cluster"]["private_key"].IsString()) {
    old.why_no_identity = fmt::format("{} has no cluster.private_key", path);
    return old;
  }
  auto identity = Identity::from_private_key_base64(doc["cluster"]["private_key"].GetString());
  if (!identity) {
    old.why_no_identity = fmt::format("{}: cluster.private_key: {}", path, identity.error().message);
    return old;
  }
  old.identity = std::move(identity).value();
  return old;
}

bool holds_state(const std::filesystem::path& data_dir) {
  std::error_code ec;
  return std::filesystem::exists(data_dir / store::StateDb::kFileName, ec) ||
         std::filesystem::exists(data_dir / store::RaftLog::kFileName, ec);
}

int init_main(const cxxopts::ParseResult& args) {
  std::string dir = config_dir(args);
  std::string path = service_json_path(dir);
  struct stat st;
  bool exists = ::stat(path.c_str(), &st) == 0;
  if (exists && !flag(args, "force")) {
    return usage_error("init", fmt::format("{} already exists; use --force to overwrite it "
                                           "(the peer identity and the cluster secret are kept; "
                                           "every other setting is written anew)",
                                           path));
  }
  auto secret = choose_secret(args);
  if (!secret) return usage_error("init", secret.error().message);
  // Re-initialising a peer keeps the secret of its cluster, as it keeps its identity: with a
  // new one it could not talk to its cluster any more. --secret or $CLUSTER_SECRET still win.
  const bool secret_given = args.count("secret") != 0 || std::getenv("CLUSTER_SECRET") != nullptr ||
                            flag(args, "insecure-empty-secret");
  if (exists && !secret_given) {
    if (std::string kept_secret = read_old_config(dir, path).secret; !kept_secret.empty()) {
      secret = std::move(kept_secret);
    }
  }

  // A daemon or a state tool on this folder holds the lock: never rewrite its file under it.
  // (A folder that does not exist yet has no daemon.)
  std::optional<int> lock;
  if (::stat(dir.c_str(), &st) == 0) {
    auto fd = lock_config_dir(dir, "init rewrites its service.json");
    if (!fd) return usage_error("init", fd.error().message);
    lock = *fd;
  }

  std::optional<Identity> kept;
  if (exists) {
    OldConfig old = read_old_config(dir, path);
    if (old.identity) {
      kept = std::move(old.identity);
    } else if (holds_state(old.data_dir)) {
      return usage_error(
          "init", fmt::format("cannot keep this peer's identity ({}), and {} holds the Raft state "
                              "of that identity, which a new one could never rejoin; move that "
                              "folder away (or delete it) first",
                              old.why_no_identity, old.data_dir.string()));
    }
  }

  ServiceConfig config;
  Identity identity = kept ? *kept : Identity::generate();
  config.cluster.id = identity.peer_id().to_string();
  config.cluster.private_key = identity.private_key_base64();
  config.cluster.secret = *secret;
  config.cluster.peername =
      args.count("peername") != 0 ? args["peername"].as<std::string>() : host_name();
  if (config.cluster.peername.empty()) {
    return usage_error("init", "--peername: the name is empty; accepted: any non-empty name "
                               "(default: the host name)");
  }
  if (args.count("peers") != 0) {
    auto peers = address_list(args, "peers");
    if (!peers) return usage_error("init", peers.error().message);
    for (const auto& peer : *peers) {
      // The daemon's rules for cluster.peers (each entry names its peer, at a TCP address),
      // applied now rather than at the first start.
      auto m = Multiaddr::parse(peer);
      if (!m) return usage_error("init", fmt::format("--peers: {}", m.error().message));
      if (!m->peer_id()) {
        return usage_error("init", fmt::format("--peers: \"{}\" has no /p2p/<peer id>; every entry "
                                               "must name its peer (e.g. /ip4/10.0.0.2/tcp/9096/"
                                               "p2p/12D3KooW...)",
                                               peer));
      }
      if (auto s = check_peer_multiaddr("peers", peer); !s) return usage_error("init", s.error().message);
      config.cluster.peers.push_back(peer);
    }
  }
  if (args.count("listen") != 0) {
    std::string listen = args["listen"].as<std::string>();
    if (auto s = check_peer_multiaddr("listen", listen); !s) return usage_error("init", s.error().message);
    // The other peers name this peer by the port: one the system picks at each start (0)
    // could not be written in their cluster.peers.
    if (auto m = Multiaddr::parse(listen); m) {
      if (auto tcp = net::tcp_endpoint_of(*m); tcp && tcp->port() == 0) {
        return usage_error("init", fmt::format("--listen: \"{}\" has port 0: the other peers must "
                                               "be able to name this peer's port; accepted: a TCP "
                                               "multiaddr with a port from 1 to 65535 (default "
                                               "/ip4/0.0.0.0/tcp/9096)", listen));
      }
    }
    config.cluster.listen_multiaddress = {listen};
  }
  if (args.count("api") != 0) {
    std::string api = args["api"].as<std::string>();
    auto endpoint = check_http_multiaddr("api", api);
    if (!endpoint) return usage_error("init", endpoint.error().message);
    if (endpoint->kind == net::HttpEndpoint::Kind::tcp && !endpoint->address.is_loopback()) {
      fmt::print(stderr, "clusterpin init: note: --api {} is reachable from other hosts: the daemon "
                         "starts only once api.restapi.basic_auth_credentials is set in service.json\n",
                 api);
    }
    config.restapi.http_listen_multiaddress = api;
  }
  if (args.count("ipfs") != 0) {
    std::string ipfs = args["ipfs"].as<std::string>();
    if (auto s = check_http_multiaddr("ipfs", ipfs); !s) return usage_error("init", s.error().message);
    config.ipfshttp.node_multiaddress = ipfs;
  }
  if (auto s = write_config_file(path, config); !s) return usage_error("init", s.error().message);

  fmt::print("wrote {}\n", path);
  fmt::print("peer id: {}{}\n", config.cluster.id,
             kept ? " (kept from the previous service.json)" : "");
  for (const auto& listen : config.cluster.listen_multiaddress) {
    fmt::print("other peers reach this peer at: {}\n",
               reachable_address(listen, identity.peer_id()));
  }
  return kExitOk;
}

}  // namespace

int run_init(int argc, char** argv) {
  return run_simple("init", "Write a new configuration and identity", declare_init, init_main,
                    argc, argv);
}

}  // namespace clusterpin::cmd
