// The REST API of a peer, in IPFS Cluster v1's shape (routes, JSON keys, NDJSON streams with the
// X-Stream-Error trailer, 204 on an empty stream, {"code","message"} errors, basic auth). Each
// request is answered on the io_context thread; commits answer once Raft has committed.
#pragma once

#include <map>
#include <variant>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include <asio.hpp>

#include "core/result.hpp"
#include "net/http_server.hpp"
#include "node/peer.hpp"

namespace clusterpin::node {

class RestApi {
 public:
  RestApi(asio::io_context& io, Peer& peer);
  ~RestApi();
  // Listens on api.restapi.http_listen_multiaddress; refuses a non-loopback address without
  // basic_auth_credentials. Returns the bound endpoint text.
  Result<std::string> start();
  void stop();

 private:
  std::optional<net::HttpRefusal> check_head(const net::HttpRequest& head) const;
  void handle(net::HttpRequest request, std::shared_ptr<net::HttpResponder> responder);
  void route(const net::HttpRequest& request, const std::shared_ptr<net::HttpResponder>& r);
  void post_token(const net::HttpRequest& request, const std::shared_ptr<net::HttpResponder>& r);
  // Why a pin is refused: the HTTP status and the message.
  struct Refusal {
    int status;
    std::string message;
  };
  // The pin that POST /pins/{cid} with these options commits (a pin update takes the old pin's
  // options, a pin again keeps its valid allocations), or why it is refused.
  std::variant<Pin, Refusal> prepare_pin(const Cid& cid, PinOptions options, UnixNanos now);
  void post_pin(const Cid& cid, const net::HttpRequest& request,
                const std::shared_ptr<net::HttpResponder>& r);
  void pin_path(const net::HttpRequest& request, const std::shared_ptr<net::HttpResponder>& r);
  void post_pins_batch(const net::HttpRequest& request, const std::shared_ptr<net::HttpResponder>& r);
  // POST /pins with a list of CIDs: what `pin add -` sends a request (and a Raft entry holds).
  static constexpr std::size_t kMaxPinsPerRequest = 10000;
  void delete_pin(const Cid& cid, const std::shared_ptr<net::HttpResponder>& r);
  void get_allocations(const net::HttpRequest& request, const std::shared_ptr<net::HttpResponder>& r);
  void get_peers(const std::shared_ptr<net::HttpResponder>& r);
  // The status of one CID: its allocations are asked, the other members are `remote`; `errors`
  // (a recover's failures by member) replace those members' entries with cluster_error.
  void get_status(const Cid& cid, bool local, const std::shared_ptr<net::HttpResponder>& r,
                  std::map<std::string, std::string> errors = {});
  void get_statuses(const net::HttpRequest& request, const std::shared_ptr<net::HttpResponder>& r);
  void recover_or_sync_one(const Cid& cid, bool recover, bool local,
                           const std::shared_ptr<net::HttpResponder>& r);
  void run_everywhere(const std::string& method, bool local,
                      const std::shared_ptr<net::HttpResponder>& r);
  // GET /monitor/metrics[/{name}], /health/alerts, /health/graph.
  void get_monitoring(const std::vector<std::string_view>& parts,
                      const std::shared_ptr<net::HttpResponder>& r);
  // GlobalPinInfo: the pin's fields from the shared state and every peer's PinInfoShort.
  std::string global_info_json(const Cid& cid, const std::map<std::string, std::string>& peer_map);

  asio::io_context& io_;
  Peer& peer_;
  std::unique_ptr<net::HttpServer> server_;
  // A TCP loopback listener without credentials answers only requests whose Host names the
  // loopback (net::is_loopback_host): the listener's address is then its only guard.
  bool loopback_names_only_ = false;
  // Callbacks from the IPFS connector (path resolution) check it: they never run on a RestApi
  // that is gone.
  std::shared_ptr<bool> alive_ = std::make_shared<bool>(true);
};

}  // namespace clusterpin::node
