// `clusterpin init`: write <config dir>/service.json with a fresh Ed25519 identity, the cluster
// secret (given, from $CLUSTER_SECRET, or 32 random bytes) and every default; print the peer id
// and the multiaddr other peers use to reach this one.
#include <ifaddrs.h>
#include <netinet/in.h>
#include <sys/stat.h>
#include <unistd.h>
#include <arpa/inet.h>

#include <cstdlib>
#include <string>
#include <vector>

#include <fmt/core.h>
#include <sodium.h>

#include "cmd/applet.hpp"
#include "cmd/cli.hpp"
#include "cmd/config_file.hpp"
#include "core/encoding.hpp"
#include "core/identity.hpp"
#include "core/multiaddr.hpp"

namespace clusterpin::cmd {
namespace {

void declare_init(cxxopts::Options& o) {
  add_config_option(o);
  o.add_options()
      ("f,force", "Overwrite an existing service.json")
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
  std::string secret;
  if (args.count("secret") != 0) {
    secret = args["secret"].as<std::string>();
  } else if (const char* env = std::getenv("CLUSTER_SECRET"); env != nullptr) {
    secret = env;
  } else if (args.count("insecure-empty-secret") == 0) {
    unsigned char bytes[32];
    randombytes_buf(bytes, sizeof(bytes));
    return hex_encode(ByteView(bytes, sizeof(bytes)));
  }
  if (secret.empty()) {
    if (args.count("insecure-empty-secret") != 0) return secret;
    return make_error(
        "the secret is empty: anyone could join this cluster; accepted: 64 hex characters, or "
        "--insecure-empty-secret");
  }
  if (auto bytes = decode_secret(secret); !bytes) {
    return make_error("secret " + bytes.error().message);
  }
  return secret;
}

Status check_multiaddr(std::string_view flag, const std::string& text) {
  auto m = Multiaddr::parse(text);
  if (!m) return make_error(fmt::format("--{}: {}", flag, m.error().message));
  return {};
}

int init_main(const cxxopts::ParseResult& args) {
  std::string dir = config_dir(args);
  std::string path = service_json_path(dir);
  struct stat st;
  if (::stat(path.c_str(), &st) == 0 && args.count("force") == 0) {
    return usage_error("init", fmt::format("{} already exists; use --force to overwrite it "
                                           "(the old identity and secret would be lost)",
                                           path));
  }
  auto secret = choose_secret(args);
  if (!secret) return usage_error("init", secret.error().message);

  ServiceConfig config;
  Identity identity = Identity::generate();
  config.cluster.id = identity.peer_id().to_string();
  config.cluster.private_key = identity.private_key_base64();
  config.cluster.secret = *secret;
  config.cluster.peername =
      args.count("peername") != 0 ? args["peername"].as<std::string>() : host_name();
  if (args.count("peers") != 0) {
    for (const auto& peer : split_commas(args["peers"].as<std::string>())) {
      if (auto s = check_multiaddr("peers", peer); !s) return usage_error("init", s.error().message);
      config.cluster.peers.push_back(peer);
    }
  }
  if (args.count("listen") != 0) {
    std::string listen = args["listen"].as<std::string>();
    if (auto s = check_multiaddr("listen", listen); !s) return usage_error("init", s.error().message);
    config.cluster.listen_multiaddress = {listen};
  }
  if (args.count("api") != 0) {
    std::string api = args["api"].as<std::string>();
    if (auto s = check_multiaddr("api", api); !s) return usage_error("init", s.error().message);
    config.restapi.http_listen_multiaddress = api;
  }
  if (args.count("ipfs") != 0) {
    std::string ipfs = args["ipfs"].as<std::string>();
    if (auto s = check_multiaddr("ipfs", ipfs); !s) return usage_error("init", s.error().message);
    config.ipfshttp.node_multiaddress = ipfs;
  }
  if (auto s = write_config_file(path, config); !s) return usage_error("init", s.error().message);

  fmt::print("wrote {}\n", path);
  fmt::print("peer id: {}\n", config.cluster.id);
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
