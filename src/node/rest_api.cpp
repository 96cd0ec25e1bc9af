// REST routes (see rest_api.hpp). Pins are read from the local copy of the shared state; changes
// go through Peer::commit_ops (leader forwarding, retries) and are answered after the commit.
#include "node/rest_api.hpp"

#include <fmt/core.h>

#include <algorithm>
#include <cctype>
#include <chrono>
#include <map>

#include <fmt/ranges.h>
#include <rapidjson/document.h>
#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>

#include "core/allocator.hpp"
#include "core/json_text.hpp"
#include "core/tracker.hpp"
#include "core/multiaddr.hpp"
#include "core/version.hpp"
#include "net/http_auth.hpp"
#include "net/http_endpoint.hpp"
#include "net/http_url.hpp"
#include "net/ipfs_connector.hpp"

namespace clusterpin::node {
namespace {

using Responder = std::shared_ptr<net::HttpResponder>;

constexpr const char* kNotInPinset = "pin is not part of the pinset";

std::int64_t unix_seconds_now() {
  return std::chrono::duration_cast<std::chrono::seconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

bool is_loopback(const net::HttpEndpoint& e) {
  return e.kind == net::HttpEndpoint::Kind::unix_socket || e.address.is_loopback();
}

// Streams a list of JSON texts as NDJSON (one object a line), with backpressure; a non-empty
// `error` ends the stream with it as the X-Stream-Error trailer.
void stream_lines(const Responder& r, std::shared_ptr<std::vector<std::string>> lines, std::size_t next,
                  std::string error = {}) {
  while (next < lines->size()) {
    bool more = r->write_chunk((*lines)[next] + "\n");
    ++next;
    if (!more) {
      r->on_drained([r, lines, next, error] {
        if (r->connected()) stream_lines(r, lines, next, error);
      });
      return;
    }
  }
  r->finish(error.empty() ? net::HttpHeaders{} : net::HttpHeaders{{"X-Stream-Error", error}});
}

// An origin against a cors_allowed_origins entry: "*" is any origin, one '*' inside an entry
// stands for any text there ("https://*.example.org"), anything else matches ignoring case.
bool origin_matches(std::string_view pattern, std::string_view origin) {
  auto star = pattern.find('*');
  if (star == std::string_view::npos) return net::equals_ignore_case(pattern, origin);
  std::string_view head = pattern.substr(0, star), tail = pattern.substr(star + 1);
  return origin.size() >= head.size() + tail.size() &&
         net::equals_ignore_case(origin.substr(0, head.size()), head) &&
         net::equals_ignore_case(origin.substr(origin.size() - tail.size()), tail);
}

bool listed(const std::vector<std::string>& names, std::string_view name) {
  return std::any_of(names.begin(), names.end(), [&](const std::string& n) {
    return n == "*" || net::equals_ignore_case(n, name);
  });
}

// CORS, as IPFS Cluster's REST API answers it with the same api.restapi.cors_* settings (the
// rs/cors rules): a request from an allowed origin with an allowed method gets
// Access-Control-Allow-Origin ("*" when every origin is allowed, else its origin), the exposed
// headers and the credentials flag; a preflight (OPTIONS with Access-Control-Request-Method)
// is answered 204 here, with the method and headers it asked for when all are allowed, and
// without any Access-Control-Allow-* header (the browser then refuses) when not.
struct Cors {
  bool preflight = false;
  bool allowed = false;  // the request's origin and method (or the preflight's) are allowed
  net::HttpHeaders headers;
};

Cors cors_for(const RestApiConfig& c, const net::HttpRequest& q) {
  Cors out;
  auto origin = q.headers.get("Origin");
  auto asked_method = q.headers.get("Access-Control-Request-Method");
  out.preflight = q.method == "OPTIONS" && asked_method.has_value();
  if (!origin) return out;
  out.headers.add("Vary", out.preflight ? "Origin, Access-Control-Request-Method, Access-Control-Request-Headers"
                                        : "Origin");
  bool any_origin = std::find(c.cors_allowed_origins.begin(), c.cors_allowed_origins.end(), "*") !=
                    c.cors_allowed_origins.end();
  bool allowed = std::any_of(c.cors_allowed_origins.begin(), c.cors_allowed_origins.end(),
                             [&](const std::string& o) { return origin_matches(o, *origin); });
  if (!allowed) return out;
  std::string method = out.preflight ? std::string(*asked_method) : q.method;
  std::transform(method.begin(), method.end(), method.begin(), [](unsigned char ch) { return std::toupper(ch); });
  if (method != "OPTIONS" && !listed(c.cors_allowed_methods, method)) return out;
  std::string asked_headers;
  if (out.preflight) {
    for (std::string_view name : q.headers.tokens("Access-Control-Request-Headers")) {
      if (!net::equals_ignore_case(name, "Origin") && !listed(c.cors_allowed_headers, name)) return out;
      asked_headers += fmt::format("{}{}", asked_headers.empty() ? "" : ", ", name);
    }
  }
  out.allowed = true;
  out.headers.add("Access-Control-Allow-Origin", any_origin ? "*" : std::string(*origin));
  if (out.preflight) {
    out.headers.add("Access-Control-Allow-Methods", method);
    if (!asked_headers.empty()) out.headers.add("Access-Control-Allow-Headers", asked_headers);
    auto max_age = std::chrono::duration_cast<std::chrono::seconds>(c.cors_max_age).count();
    if (max_age > 0) out.headers.add("Access-Control-Max-Age", std::to_string(max_age));
  } else if (!c.cors_exposed_headers.empty()) {
    out.headers.add("Access-Control-Expose-Headers", fmt::format("{}", fmt::join(c.cors_exposed_headers, ", ")));
  }
  if (c.cors_allow_credentials) out.headers.add("Access-Control-Allow-Credentials", "true");
  return out;
}

const std::string kGet = "GET";

}  // namespace

RestApi::RestApi(asio::io_context& io, Peer& peer) : io_(io), peer_(peer) {}
RestApi::~RestApi() { stop(); }

Result<std::string> RestApi::start() {
  const RestApiConfig& c = peer_.config().restapi;
  auto endpoint = net::parse_http_listen_endpoint(c.http_listen_multiaddress);
  if (!endpoint) {
    return make_error(fmt::format("api.restapi.http_listen_multiaddress: {}", endpoint.error().message));
  }
  bool has_auth = c.basic_auth_credentials && !c.basic_auth_credentials->empty();
  if (!is_loopback(*endpoint) && !has_auth) {
    return make_error(fmt::format(
        "api.restapi.http_listen_multiaddress {} is reachable from other hosts, but "
        "api.restapi.basic_auth_credentials is not set: set credentials or listen on 127.0.0.1",
        c.http_listen_multiaddress));
  }
  loopback_names_only_ = endpoint->kind == net::HttpEndpoint::Kind::tcp && !has_auth;
  net::HttpServerOptions options;
  options.read_header_timeout = std::chrono::duration_cast<std::chrono::milliseconds>(c.read_header_timeout);
  options.read_timeout = std::chrono::duration_cast<std::chrono::milliseconds>(c.read_timeout);
  options.idle_timeout = std::chrono::duration_cast<std::chrono::milliseconds>(c.idle_timeout);
  options.limits.max_header_bytes = static_cast<std::size_t>(c.max_header_bytes) + 1024;
  for (const auto& [k, v] : c.headers) options.default_headers.add(k, v);
  server_ = std::make_unique<net::HttpServer>(io_, options,
      [this](net::HttpRequest request, Responder responder) { handle(std::move(request), std::move(responder)); });
  server_->set_head_check([this](const net::HttpRequest& head) { return check_head(head); });
  auto bound = server_->listen(*endpoint);
  if (!bound) return make_error(fmt::format("cannot listen on {}: {}", c.http_listen_multiaddress, bound.error().message));
  return bound->to_string();
}

void RestApi::stop() {
  if (server_) server_->stop();
  server_.reset();
}

namespace {

// The routes that read a request body (the unserved ones answer 501 whatever it holds).
bool takes_body(std::string_view method, std::string_view path) {
  while (path.size() > 1 && path.back() == '/') path.remove_suffix(1);
  return method == "POST" && (path == "/pins" || path == "/add" || path == "/peers");
}

}  // namespace

// Checked on the request's head, before its body is read: a client without credentials gets
// its 401 (and the connection closes) without making the peer hold a body of up to 64 MiB.
// CORS headers go with a refusal, so a browser can read it.
std::optional<net::HttpRefusal> RestApi::check_head(const net::HttpRequest& head) const {
  const RestApiConfig& c = peer_.config().restapi;
  // DNS rebinding: a web page whose own name an attacker makes resolve to 127.0.0.1 is, to the
  // browser, same-origin with this API, so CORS does not stop it from reading or writing. Its
  // requests carry the page's name as Host; programs on this machine send a loopback name (an
  // HTTP/1.0 client may send none).
  // One Host at most (RFC 9112 3.2): with two, this check and a proxy in front could each
  // read another.
  if (head.headers.get_all("Host").size() > 1) {
    return net::HttpRefusal{400, "more than one Host header field: a request names one host", {}};
  }
  if (loopback_names_only_) {
    auto host = head.headers.get("Host");
    if (host && !net::is_loopback_host(*host)) {
      return net::HttpRefusal{
          403,
          fmt::format("Host \"{}\" refused: this API listens on a loopback address without "
                      "credentials and answers requests addressed to localhost, 127.0.0.1 or "
                      "[::1] only (set api.restapi.basic_auth_credentials to accept other names)",
                      *host),
          {}};
    }
  }
  // A browser sends a cross-site POST (a "simple" request) without asking first, so CORS
  // alone would let any web page its user opens pin into the cluster through a loopback API
  // without credentials (IPFS Cluster executes it; Kubo's RPC refuses such requests too). A
  // request that changes something and names an Origin must be allowed by cors_allowed_origins
  // and cors_allowed_methods; programs (the CLI, ipfs-cluster-ctl, curl) send no Origin.
  if (head.headers.has("Origin") && head.method != "GET" && head.method != "HEAD" &&
      head.method != "OPTIONS") {
    Cors cors = cors_for(c, head);
    if (!cors.allowed) {
      return net::HttpRefusal{
          403,
          fmt::format("{} from origin {} refused: api.restapi.cors_allowed_origins and "
                      "cors_allowed_methods do not allow it",
                      head.method, head.headers.get("Origin").value_or("")),
          std::move(cors.headers)};
    }
  }
  // A body only where a route reads one: elsewhere it would be read and held for nothing (up
  // to 64 MiB a request, from the budget all requests share), and on the routes open without
  // credentials (OPTIONS, GET /health) by anyone. Go's client sends POSTs without a body as
  // Content-Length: 0, which is no body.
  const bool has_body = head.headers.has("Transfer-Encoding") ||
                        head.headers.get("Content-Length").value_or("0") != "0";
  if (has_body && !takes_body(head.method, head.path)) {
    return net::HttpRefusal{
        413,
        fmt::format("{} {} takes no request body; only POST /pins (a list of CIDs, one a line) "
                    "does (POST /add and POST /peers are not served)",
                    head.method, head.path),
        cors_for(c, head).headers};
  }
  const auto& creds = c.basic_auth_credentials;
  bool open_route = head.method == "OPTIONS" || (head.method == "GET" && head.path == "/health");
  if (!creds || creds->empty() || open_route) return std::nullopt;
  // As IPFS Cluster: Basic credentials, or a bearer token from POST /token. The challenge makes
  // clients that send credentials only when asked (browsers, wget) send them.
  constexpr std::string_view kRealm = "realm=\"Restricted IPFS Cluster API\"";
  net::HttpRefusal refusal{401, {}, cors_for(peer_.config().restapi, head).headers};
  std::string_view given = head.headers.get("Authorization").value_or("");
  if (net::parse_basic_auth(given)) {
    if (net::basic_auth_matches(head.headers, *creds)) return std::nullopt;
    refusal.headers.add("WWW-Authenticate", fmt::format("Basic {}", kRealm));
    refusal.message = "unauthorized: wrong user or password";
  } else if (net::is_bearer_auth(given)) {
    if (net::verify_bearer_token(given, *creds, unix_seconds_now())) return std::nullopt;
    refusal.headers.add("WWW-Authenticate", fmt::format("Bearer {}, error=\"invalid_token\"", kRealm));
    refusal.message = "unauthorized: invalid token (get one with POST /token)";
  } else {
    refusal.headers.add("WWW-Authenticate", fmt::format("Bearer {}", kRealm));
    refusal.headers.add("WWW-Authenticate", fmt::format("Basic {}", kRealm));
    refusal.message =
        "unauthorized: this API requires credentials (basic auth, or a bearer token from POST "
        "/token)";
  }
  return refusal;
}

void RestApi::handle(net::HttpRequest request, Responder r) {
  Cors cors = cors_for(peer_.config().restapi, request);
  r->add_headers(cors.headers);
  if (cors.preflight) return r->send(204);  // a browser sends no credentials with a preflight
  route(request, r);  // credentials and cross-origin writes were checked on the head (check_head)
}

// POST /token: a token for the user the request authenticated as (handle() checked it).
void RestApi::post_token(const net::HttpRequest& q, const Responder& r) {
  const auto& creds = peer_.config().restapi.basic_auth_credentials;
  if (!creds || creds->empty()) {
    return r->send_error(401, "unauthorized: tokens are signed with a password of "
                              "api.restapi.basic_auth_credentials, and none is configured");
  }
  std::string_view given = q.headers.get("Authorization").value_or("");
  std::optional<std::string> user;
  if (auto basic = net::parse_basic_auth(given)) user = basic->user;
  else user = net::verify_bearer_token(given, *creds, unix_seconds_now());
  auto known = user ? creds->find(*user) : creds->end();
  if (known == creds->end()) return r->send_error(401, "unauthorized");
  std::string body = "{\"token\":";
  append_json_string(body, net::issue_token(known->first, known->second));
  body += "}";
  r->send_json(200, body);
}

void RestApi::route(const net::HttpRequest& q, const Responder& r) {
  // Split before decoding: an encoded '/' (%2F) stays inside its segment, as in a metric name
  // "tag:a/b" (GET /monitor/metrics/tag%3Aa%2Fb). The parser refused malformed escapes already.
  auto segments = net::path_segments(q.raw_path);
  if (!segments) {
    return r->send_error(400, fmt::format("malformed path {}: a '%' must be followed by two hex "
                                          "digits", q.raw_path));
  }
  std::vector<std::string_view> parts(segments->begin(), segments->end());
  // HEAD is answered as GET without the body (the server drops it): `curl -I` and monitors
  // that probe with HEAD get the status and headers GET would.
  const std::string& m = q.method == "HEAD" ? kGet : q.method;
  if (q.raw_path.size() > 1 && q.raw_path.back() == '/') {
    // Each decoded segment encoded again, '/' included, so an escaped '/', '?', '#' or line
    // break stays part of its segment instead of splitting it, ending the path (or the header).
    std::string target;
    for (std::string_view part : parts) target += "/" + net::percent_encode(part);
    if (target.empty()) target = "/";
    if (!q.raw_query.empty()) target += "?" + q.raw_query;
    return r->send(307, {{"Location", target}});
  }
  if (parts.empty()) return r->send_error(404, "not found");
  std::string_view head = parts[0];
  if (head == "health" && parts.size() == 1 && m == "GET") return r->send(204);
  if (head == "token" && parts.size() == 1 && m == "POST") return post_token(q, r);
  if (head == "ipfs" && parts.size() == 2 && parts[1] == "gc" && m == "POST") {
    // IPFS Cluster's GlobalRepoGC: every member's repo/gc, or only this peer's with local=true.
    bool local = q.query_value("local").value_or("") == "true";
    peer_.repo_gc_everywhere(local, [r](std::map<std::string, std::string> by_peer) {
      std::string body = "{\"peer_map\":{";
      bool first = true;
      for (const auto& [id, json] : by_peer) {
        if (!first) body += ',';
        first = false;
        append_json_string(body, id);
        body += ':';
        body += json;
      }
      body += "}}";
      r->send_json(200, body);
    });
    return;
  }
  // IPFS Cluster routes clusterpin does not serve: said so, with what to use instead.
  struct Unserved {
    std::string_view method, path, instead;
  };
  static constexpr Unserved kUnserved[] = {
      {"POST", "/add", "add the content to an IPFS daemon (ipfs add), then pin its CID (POST /pins/{cid})"},
      {"GET", "/health/bandwidth", "the peers' links are in GET /health/graph"},
      {"POST", "/peers", "a new peer joins by starting with `clusterpin daemon --bootstrap <member address>`"}};
  for (const Unserved& u : kUnserved) {
    if (m == u.method && q.path == u.path) {
      return r->send_error(501, fmt::format("{} {} is not implemented in clusterpin: {}", m, q.path,
                                            u.instead));
    }
  }
  if (head == "version" && parts.size() == 1 && m == "GET") {
    return r->send_json(200, fmt::format("{{\"version\":\"{}\"}}", version()));
  }
  if (head == "id" && parts.size() == 1 && m == "GET") {
    peer_.info_now([r](PeerInfo info) { r->send_json(200, peer_info_to_json(info)); });
    return;
  }
  if (head == "peers") {
    if (parts.size() == 1 && m == "GET") return get_peers(r);
    if (parts.size() == 2 && m == "DELETE") {
      std::string id(parts[1]);
      if (!PeerId::parse(id)) return r->send_error(400, fmt::format("\"{}\" is not a peer id", id));
      peer_.remove_peer(id, [r](Status s) {
        if (!s) return r->send_error(500, s.error().message);
        r->send(204);
      });
      return;
    }
  }
  if (head == "allocations") {
    if (parts.size() == 1 && m == "GET") return get_allocations(q, r);
    if (parts.size() == 2 && m == "GET") {
      auto cid = Cid::parse(parts[1]);
      if (!cid) return r->send_error(400, cid.error().message);
      auto pin = peer_.get_pin(*cid);
      if (!pin) return r->send_error(500, pin.error().message);
      if (!*pin) return r->send_error(404, kNotInPinset);
      return r->send_json(200, pin_to_json(**pin));
    }
  }
  if (head == "pins") {
    if (parts.size() == 1 && m == "POST") return post_pins_batch(q, r);
    std::size_t cid_at = 1;
    if (parts.size() >= 3 && (parts[1] == "ipfs" || parts[1] == "ipld" || parts[1] == "ipns")) {
      // POST|DELETE /pins/{ipfs|ipns|ipld}/{path}: the CID the path names, through IPFS.
      if (m == "POST" || m == "DELETE") return pin_path(q, r);
      if (parts[1] != "ipfs" || parts.size() > 3) {
        return r->send_error(404, fmt::format("no route for {} {}: IPFS paths are pinned with POST "
                                              "and unpinned with DELETE; ask the status of the CID "
                                              "(/pins/<cid>)", m, q.path));
      }
      cid_at = 2;
    }
    bool local = q.query_value("local").value_or("") == "true";
    if (parts.size() == 1 && m == "GET") return get_statuses(q, r);
    if (parts.size() == 2 && (parts[1] == "recover" || parts[1] == "sync") && m == "POST") {
      return run_everywhere(std::string(parts[1] == "recover" ? "recover_all" : "sync"), local, r);
    }
    if (parts.size() == cid_at + 2 && (parts[cid_at + 1] == "recover" || parts[cid_at + 1] == "sync") &&
        m == "POST") {
      auto cid = Cid::parse(parts[cid_at]);
      if (!cid) return r->send_error(400, cid.error().message);
      return recover_or_sync_one(*cid, parts[cid_at + 1] == "recover", local, r);
    }
    if (parts.size() == cid_at + 1) {
      auto cid = Cid::parse(parts[cid_at]);
      if (!cid) return r->send_error(400, cid.error().message);
      if (m == "POST") return post_pin(*cid, q, r);
      if (m == "DELETE") return delete_pin(*cid, r);
      if (m == "GET") return get_status(*cid, local, r);
    }
    return r->send_error(404, fmt::format("no route for {} {}", m, q.path));
  }
  if ((head == "monitor" || head == "health") && m == "GET") return get_monitoring(parts, r);
  r->send_error(404, fmt::format("no route for {} {}", m, q.path));
}

// POST|DELETE /pins/{ipfs|ipns|ipld}/{path}: the path is checked here, resolved by the IPFS
// daemon beside this peer (a plain /ipfs/<cid> is not sent), then the CID is pinned or unpinned
// exactly as through /pins/{cid}. A path IPFS cannot resolve is the client's error (400).
void RestApi::pin_path(const net::HttpRequest& q, const Responder& r) {
  std::string text = q.path.substr(std::string_view("/pins").size());
  auto path = net::parse_ipfs_path(text);
  if (!path) return r->send_error(400, path.error().message);
  auto request = std::make_shared<net::HttpRequest>(q);
  std::weak_ptr<bool> alive = alive_;
  peer_.worker().connector().resolve(path->to_string(), [this, alive, request, r, shown = path->to_string()](Result<Cid> cid) {
    if (!alive.lock()) return;
    if (!cid) {
      const std::string& why = cid.error().message;
      int status = why.starts_with("IPFS error") || why.starts_with("IPFS resolve answered") ? 400 : 500;
      return r->send_error(status, fmt::format("cannot resolve {}: {}", shown, why));
    }
    if (request->method == "DELETE") return delete_pin(*cid, r);
    post_pin(*cid, *request, r);
  });
}

std::variant<Pin, RestApi::Refusal> RestApi::prepare_pin(const Cid& cid, PinOptions options, UnixNanos now) {
  const ClusterConfig& cc = peer_.config().cluster;
  Pin pin(cid);
  pin.options = std::move(options);
  const bool update = pin.options.pin_update && *pin.options.pin_update != cid;
  const bool expiry_given = pin.options.expire_at != kZeroTime;
  if (update) {
    // pin update: the new CID takes the old pin's options; name and expiry may be replaced.
    auto old = peer_.get_pin(*pin.options.pin_update);
    if (!old) return Refusal{500, old.error().message};
    if (!*old) {
      return Refusal{404, fmt::format("pin-update: {} is not part of the pinset",
                                      pin.options.pin_update->to_string())};
    }
    PinOptions updated = (*old)->options;
    updated.pin_update = pin.options.pin_update;
    if (!pin.options.name.empty()) updated.name = pin.options.name;
    if (pin.options.expire_at != kZeroTime) updated.expire_at = pin.options.expire_at;
    pin.options = std::move(updated);
    pin.allocations = (*old)->allocations;
  }
  // Factors of 0 are the cluster's defaults: the checks and the allocator read those. A new pin
  // stores them (IPFS Cluster's setupPin); an update stores the old pin's factors as they were
  // (its PinUpdate copies them), so 0 there still means the defaults.
  const ReplicationFactors factors =
      pin.options.factors_or({cc.replication_factor_min, cc.replication_factor_max});
  if (!update) {
    pin.options.replication_factor_min = factors.min;
    pin.options.replication_factor_max = factors.max;
  }
  if (pin.options.expire_at != kZeroTime && pin.options.expire_at <= now) {
    if (update && !expiry_given) {
      return Refusal{400, fmt::format("pin-update: {} expired at {} and the new pin would take that "
                                      "expiry; give it one with expire-at (pin update --expire-in)",
                                      pin.options.pin_update->to_string(),
                                      format_rfc3339(pin.options.expire_at))};
    }
    return Refusal{400, "expire-at is in the past"};
  }
  pin.max_depth = pin.options.mode == PinMode::direct ? 0 : -1;
  pin.timestamp = now;
  AllocationRequest request;
  request.rmin = factors.min;
  request.rmax = factors.max;
  request.user_allocations = pin.options.user_allocations;
  // A pin again keeps the allocations that are still valid, as IPFS Cluster does.
  auto existing = peer_.get_pin(cid);
  if (!existing) return Refusal{500, existing.error().message};
  if (*existing) {
    request.current = (*existing)->allocations;
    if ((*existing)->max_depth == -1 && pin.max_depth == 0) {
      return Refusal{400, "cannot change a recursive pin into a direct pin; unpin it first"};
    }
  }
  if (request.current.empty()) request.current = pin.allocations;
  if (auto s = check_replication(request.rmin, request.rmax); !s) return Refusal{400, s.error().message};
  if (update) {
    // A new CID gets the old pin's allocations as they are, as IPFS Cluster's PinUpdate
    // does: a peer that is not a candidate this minute (restarting, a late metric) still gets
    // it beside the old one, instead of a third peer fetching it; re-allocation, not the
    // update, moves pins off peers that are gone. A CID already in the pinset keeps its own
    // valid allocations (the rule of a pin again: its holders keep it), and an old pin without
    // allocations (everywhere, or imported without them) is allocated as a new pin is.
    if (!*existing && !pin.allocations.empty()) return pin;
  }
  // Too few peers to allocate is the cluster's state, not the request's fault: 500, as IPFS
  // Cluster answers, so clients that retry server errors retry it once peers are back.
  auto allocations = peer_.allocate_pin(cid, request);
  if (!allocations) return Refusal{500, allocations.error().message};
  pin.allocations = std::move(allocations).value();
  return pin;
}

void RestApi::post_pin(const Cid& cid, const net::HttpRequest& q, const Responder& r) {
  auto options = pin_options_from_query(q.query, peer_.now());
  if (!options) return r->send_error(400, options.error().message);
  auto prepared = prepare_pin(cid, std::move(options).value(), peer_.now());
  if (auto* refused = std::get_if<Refusal>(&prepared)) return r->send_error(refused->status, refused->message);
  Pin& pin = std::get<Pin>(prepared);
  std::string json = pin_to_json(pin);
  peer_.commit_ops({PinsetOp{PinsetOp::Kind::pin, std::move(pin)}}, [r, json](Status s) {
    if (!s) return r->send_error(500, s.error().message);
    r->send_json(200, json);
  });
}

// POST /pins with a body of CIDs, one a line (`pin add -`): each is pinned as POST /pins/{cid}
// would pin it with the same query (a pin again keeps its allocations, no recursive pin turns
// direct, no expiry in the past), and the first line refused refuses the whole request.
void RestApi::post_pins_batch(const net::HttpRequest& q, const Responder& r) {
  auto options = pin_options_from_query(q.query, peer_.now());
  if (!options) return r->send_error(400, options.error().message);
  if (options->pin_update) {
    return r->send_error(400, "pin-update: not accepted with a list of CIDs; update one pin a request "
                              "(POST /pins/{cid}?pin-update=<old cid>)");
  }
  std::vector<PinsetOp> ops;
  std::string_view body = q.body;
  std::size_t line_number = 0;
  UnixNanos now = peer_.now();
  while (!body.empty()) {
    auto nl = body.find('\n');
    std::string_view line = body.substr(0, nl);
    body = nl == std::string_view::npos ? std::string_view() : body.substr(nl + 1);
    ++line_number;
    while (!line.empty() && (line.back() == '\r' || line.back() == ' ')) line.remove_suffix(1);
    if (line.empty()) continue;
    // Each CID is prepared on the io thread, which also runs Raft and the peer links: a 64 MiB
    // body of a million CIDs would hold it for seconds (and cost the leader its heartbeats).
    if (ops.size() == kMaxPinsPerRequest) {
      return r->send_error(413, fmt::format("line {}: at most {} CIDs a request (what `clusterpin "
                                            "pin add -` sends in each); split the list",
                                            line_number, kMaxPinsPerRequest));
    }
    auto cid = Cid::parse(line);
    if (!cid) return r->send_error(400, fmt::format("line {}: {}", line_number, cid.error().message));
    auto prepared = prepare_pin(*cid, *options, now);
    if (auto* refused = std::get_if<Refusal>(&prepared)) {
      return r->send_error(refused->status, fmt::format("line {} ({}): {}", line_number, line, refused->message));
    }
    ops.push_back({PinsetOp::Kind::pin, std::move(std::get<Pin>(prepared))});
  }
  std::size_t count = ops.size();
  if (count == 0) return r->send_json(200, "{\"count\":0}");
  peer_.commit_ops(std::move(ops), [r, count](Status s) {
    if (!s) return r->send_error(500, s.error().message);
    r->send_json(200, fmt::format("{{\"count\":{}}}", count));
  });
}

void RestApi::delete_pin(const Cid& cid, const Responder& r) {
  auto existing = peer_.get_pin(cid);
  if (!existing) return r->send_error(500, existing.error().message);
  if (!*existing) return r->send_error(404, kNotInPinset);
  std::string json = pin_to_json(**existing);
  peer_.commit_ops({PinsetOp{PinsetOp::Kind::unpin, Pin(cid)}}, [r, json](Status s) {
    if (!s) return r->send_error(500, s.error().message);
    r->send_json(200, json);
  });
}

// A paged stream's page function holds itself (it schedules the next page); every end of the
// stream, including a client that went away, must drop it, or the stream and its SQLite read
// snapshot would never be freed.
static void next_page(const Responder& r, const std::shared_ptr<std::function<void(std::string)>>& page,
                      const std::string& after) {
  if (!*page) return;
  if (!r->connected()) {
    *page = nullptr;
    return;
  }
  (*page)(after);
}

void RestApi::get_allocations(const net::HttpRequest& q, const Responder& r) {
  // A comma list of pin types OR-ed, as IPFS Cluster reads it: "" and "all" are every type,
  // an unknown name adds nothing, and a filter of unknown names alone is refused. This cluster
  // holds data pins only ("pin"); "meta-pin", "clusterdag-pin" and "shard-pin" (sharding) match
  // none of them.
  bool want_data = false;
  bool known = false;
  std::string_view filter = q.query_value("filter").value_or("");
  while (true) {
    auto comma = filter.find(',');
    std::string_view type = filter.substr(0, comma);
    bool data = type.empty() || type == "all" || type == "pin";
    want_data |= data;
    known |= data || type == "meta-pin" || type == "clusterdag-pin" || type == "shard-pin";
    if (comma == std::string_view::npos) break;
    filter.remove_prefix(comma + 1);
  }
  if (!known) {
    return r->send_error(400, fmt::format("filter: \"{}\" names no pin type; accepted: a comma list of "
                                          "all, pin, meta-pin, clusterdag-pin, shard-pin",
                                          q.query_value("filter").value_or("")));
  }
  // clusterpin's extension: ?indent=N writes each pin as ipfs-cluster-ctl prints it (N spaces a
  // level, a newline after each object), so a client prints the stream as it comes; the header
  // X-Clusterpin-Indent says it was honoured (IPFS Cluster ignores the parameter).
  int indent = 0;
  if (auto v = q.query_value("indent")) {
    if (v->size() != 1 || (*v)[0] < '0' || (*v)[0] - '0' > kMaxPinJsonIndent) {
      return r->send_error(400, fmt::format("indent: \"{}\" is not an indent width; accepted: 0 to {} "
                                            "(spaces a level; 0: one compact object a line)",
                                            *v, kMaxPinJsonIndent));
    }
    indent = (*v)[0] - '0';
  }
  auto reader = peer_.state().open_reader();
  if (!reader) return r->send_error(500, reader.error().message);
  auto shared_reader = std::make_shared<store::StateReader>(std::move(reader).value());
  net::HttpHeaders headers{{"Content-Type", "application/json"}};
  if (indent > 0) headers.add("X-Clusterpin-Indent", std::to_string(indent));
  r->start_stream(200, std::move(headers));
  if (!want_data) return r->finish();
  // Pages of 1000 pins resumed after the last CID: memory stays flat for any pinset size.
  auto page = std::make_shared<std::function<void(std::string)>>();
  // Each page goes out as one chunk of NDJSON lines written in place, into one buffer kept for
  // the whole stream (a fresh ~400 KB buffer per page cost page faults on every page).
  auto chunk = std::make_shared<TextBuffer>();
  *page = [r, shared_reader, page, chunk, indent,
           listing = peer_.worker().listing_started()](std::string after) {
    std::string last;
    chunk->clear();
    int count = 0;
    Status s = shared_reader->for_each_pin([&](std::string_view cid, std::string_view bytes) {
      if (append_stored_pin_json(*chunk, bytes, indent)) chunk->append("\n");
      if (++count < 1000) return true;
      last.assign(cid);  // where the next page starts
      return false;
    }, after);
    if (!chunk->empty()) r->write_chunk(chunk->view());  // nothing written: 204 stays possible
    if (!s) {
      r->finish({{"X-Stream-Error", s.error().message}});
      *page = nullptr;
      return;
    }
    // A page of fewer than 1000 pins is the last one, whether or not its chunk filled the send
    // buffer: waiting for the buffer to drain there went on from an empty `last`, the first pin,
    // and streamed the pinset again and again (`pin ls` of 900 pins never ended).
    if (count < 1000) {
      r->finish();
      *page = nullptr;
      return;
    }
    r->on_drained([r, page, last] { next_page(r, page, last); });
  };
  (*page)("");
}

std::string RestApi::global_info_json(const Cid& cid, const std::map<std::string, std::string>& peer_map) {
  auto pin = peer_.get_pin(cid);
  std::optional<Pin> p = pin && *pin ? std::optional<Pin>(**pin) : std::nullopt;
  rapidjson::StringBuffer buffer;
  rapidjson::Writer<rapidjson::StringBuffer> w(buffer);
  auto str = [&](const std::string& v) { w.String(v.c_str(), static_cast<rapidjson::SizeType>(v.size())); };
  w.StartObject();
  w.Key("cid"); str(cid.to_string());
  w.Key("name"); str(p ? p->options.name : "");
  w.Key("allocations");
  w.StartArray();
  if (p) {
    for (const auto& a : p->allocations) str(a.to_string());
  }
  w.EndArray();
  w.Key("origins");
  w.StartArray();
  if (p) {
    for (const auto& o : p->options.origins) str(o);
  }
  w.EndArray();
  w.Key("created"); str(format_rfc3339(p ? p->timestamp : kZeroTime));
  w.Key("metadata");
  w.StartObject();
  if (p) {
    for (const auto& [k, v] : p->options.metadata) {
      str(k);
      str(v);
    }
  }
  w.EndObject();
  w.Key("peer_map");
  w.StartObject();
  for (const auto& [id, json] : peer_map) {
    str(id);
    w.RawValue(json.c_str(), json.size(), rapidjson::kObjectType);
  }
  w.EndObject();
  w.EndObject();
  return std::string(buffer.GetString(), buffer.GetSize());
}

void RestApi::get_status(const Cid& cid, bool local, const Responder& r,
                         std::map<std::string, std::string> errors) {
  auto scope = local ? Peer::StatusScope::local : Peer::StatusScope::allocated;
  peer_.gather_status({cid}, scope, [this, cid, r, errors](Peer::StatusMap statuses) {
    // A member whose recover failed shows it as cluster_error, as IPFS Cluster's RecoverCID does.
    for (const auto& [id, error] : errors) statuses[0][id] = peer_.status_error_json(id, error);
    r->send_json(200, global_info_json(cid, statuses[0]));
  });
}

namespace {
// A sync or recover that some peers could not do: said as partial, since the others did it.
std::string failed_on_some(std::string_view method, const std::vector<std::string>& errors,
                           std::size_t asked) {
  if (errors.size() >= asked) {
    return fmt::format("{} failed on every peer ({}): {}", method, asked, fmt::join(errors, "; "));
  }
  return fmt::format("{} failed on {} of {} peer(s), the others did it: {}", method, errors.size(),
                     asked, fmt::join(errors, "; "));
}
}  // namespace

void RestApi::recover_or_sync_one(const Cid& cid, bool recover, bool local, const Responder& r) {
  if (!recover) {
    // Sync is per peer and cheap only as a whole listing: sync everything, answer for this CID.
    peer_.run_everywhere("sync", local, [this, cid, local, r](std::vector<Cid>, std::vector<std::string> errors) {
      if (!errors.empty()) {
        return r->send_error(500, failed_on_some("sync", errors, local ? 1 : peer_.member_ids().size()));
      }
      get_status(cid, local, r);
    });
    return;
  }
  // As IPFS Cluster: with local=true this peer's failure is the answer (500); otherwise it is
  // this peer's cluster_error entry beside the members that did recover.
  peer_.recover_one(cid, local, [this, cid, local, r](std::map<std::string, std::string> errors) {
    if (auto here = errors.find(peer_.id_text()); local && here != errors.end()) {
      return r->send_error(500, here->second);
    }
    get_status(cid, local, r, std::move(errors));
  });
}

void RestApi::run_everywhere(const std::string& method, bool local, const Responder& r) {
  const std::size_t asked = local ? 1 : peer_.member_ids().size();
  peer_.run_everywhere(method, local, [this, method, local, r, asked](std::vector<Cid> touched, std::vector<std::string> errors) {
    if (method == "sync") {
      if (!errors.empty()) return r->send_error(500, failed_on_some(method, errors, asked));
      return r->send(204);
    }
    std::sort(touched.begin(), touched.end());
    touched.erase(std::unique(touched.begin(), touched.end()), touched.end());
    // What a peer could not do (or list) is said after the statuses, never dropped; a trailer
    // stays well inside what clients read of one (4 KiB for clusterpin's).
    std::string error;
    for (std::size_t i = 0; i < errors.size(); ++i) {
      if (!error.empty() && error.size() + errors[i].size() > 2048) {
        error += fmt::format("; and {} more", errors.size() - i);
        break;
      }
      error += (error.empty() ? "" : "; ") + errors[i];
    }
    if (!error.empty()) error = failed_on_some(method == "recover_all" ? "recover" : method, {error}, asked);
    if (touched.empty()) {
      r->start_stream(200, {{"Content-Type", "application/json"}});
      return stream_lines(r, std::make_shared<std::vector<std::string>>(), 0, error);
    }
    peer_.gather_status(touched, local ? Peer::StatusScope::local : Peer::StatusScope::every_member, [this, touched, r, error](Peer::StatusMap statuses) {
      auto lines = std::make_shared<std::vector<std::string>>();
      for (std::size_t i = 0; i < touched.size(); ++i) lines->push_back(global_info_json(touched[i], statuses[i]));
      r->start_stream(200, {{"Content-Type", "application/json"}});
      stream_lines(r, lines, 0, error);
    });
  });
}

namespace {
// Writes the entries of some CIDs' statuses that a GET /pins listing shows (see get_statuses).
using WriteStatuses = std::function<void(const std::vector<Cid>&, const Peer::StatusMap&)>;

// GET /pins after the pinset: the CIDs some member is still unpinning although they left the
// pinset (unpin_queued, unpinning, unpin_error), which IPFS Cluster's StatusAll lists too (each
// peer lists what its tracker holds). Rounds of at most Peer::kLeavingRound CIDs gathered from
// every member (Peer::gather_leaving), each round's statuses gathered from every member and
// written, the next round once the socket drained: what is held stays bounded however many
// there are. A CID back in the pinset meanwhile was (or will be) listed with the pinset and is
// skipped. A member that cannot be asked only leaves its own leaving CIDs out (see
// gather_leaving); the listing does not fail for it.
void stream_leaving(Peer& peer, const Responder& r, bool local, std::optional<Cid> after,
                    WriteStatuses write, std::shared_ptr<void> listing) {
  if (!r->connected()) return;
  peer.gather_leaving(after, local, [&peer, r, local, write, listing](Result<LeavingRound> round) {
    if (!r->connected()) return;
    if (!round) return r->finish({{"X-Stream-Error", round.error().message}});
    std::vector<Cid> cids;
    for (const Cid& cid : round->cids) {
      auto pin = peer.get_pin(cid);
      if (!pin) return r->finish({{"X-Stream-Error", pin.error().message}});
      if (!*pin) cids.push_back(cid);
    }
    auto go_on = [&peer, r, local, write, listing, next = round->next] {
      if (!next) return r->finish();
      r->on_drained([&peer, r, local, write, listing, next] {
        stream_leaving(peer, r, local, next, write, listing);
      });
    };
    if (cids.empty()) return go_on();
    auto scope = local ? Peer::StatusScope::local : Peer::StatusScope::every_member;
    peer.gather_status(cids, scope, [r, cids, write, go_on](Peer::StatusMap statuses) {
      if (!r->connected()) return;
      write(cids, statuses);
      go_on();
    });
  });
}
}  // namespace

// GET /pins: the shared pinset in pages of 500 CIDs, each page's statuses gathered from every
// peer (or only here with local=true), filtered, streamed with backpressure; then the CIDs that
// left the pinset and that a member is still unpinning (stream_leaving). ?cids= lists the
// CIDs named, in or out of the pinset.
void RestApi::get_statuses(const net::HttpRequest& q, const Responder& r) {
  bool local = q.query_value("local").value_or("") == "true";
  auto filter = parse_status_filter(q.query_value("filter").value_or(""));
  if (!filter) {
    std::string_view why = filter.error().message;
    if (why.starts_with("status filter: ")) why.remove_prefix(std::string_view("status filter: ").size());
    return r->send_error(400, fmt::format("filter: {}", why));
  }
  std::vector<Cid> wanted;
  if (auto cids = q.query_value("cids")) {
    std::string_view text = *cids;
    while (!text.empty()) {
      auto comma = text.find(',');
      auto cid = Cid::parse(text.substr(0, comma));
      if (!cid) return r->send_error(400, "cids: " + cid.error().message);
      wanted.push_back(std::move(cid).value());
      text = comma == std::string_view::npos ? std::string_view() : text.substr(comma + 1);
    }
  }
  auto reader = peer_.state().open_reader();
  if (!reader) return r->send_error(500, reader.error().message);
  auto shared_reader = std::make_shared<store::StateReader>(std::move(reader).value());
  r->start_stream(200, {{"Content-Type", "application/json"}});
  auto page = std::make_shared<std::function<void(std::string)>>();
  StatusFilter f = *filter;
  // As IPFS Cluster filters: each member's entries that match, and a CID only where some
  // member's does; a member that could not be asked (cluster_error) is added to the CIDs
  // listed, so a filter never hides that its answer is missing.
  WriteStatuses write = [this, r, f](const std::vector<Cid>& cids, const Peer::StatusMap& statuses) {
    for (std::size_t i = 0; i < cids.size() && r->connected(); ++i) {
      std::map<std::string, std::string> matching;
      std::vector<const std::pair<const std::string, std::string>*> unreachable;
      for (const auto& entry : statuses[i]) {
        rapidjson::Document d;
        d.Parse(entry.second.c_str());
        if (!d.IsObject() || !d.HasMember("status") || !d["status"].IsString()) continue;
        auto st = parse_status(d["status"].GetString());
        if (st && f.matches(*st)) matching.insert(entry);
        else if (st && *st == TrackerStatus::cluster_error) unreachable.push_back(&entry);
      }
      if (matching.empty()) continue;
      for (const auto* entry : unreachable) matching.insert(*entry);
      r->write_chunk(global_info_json(cids[i], matching) + "\n");
    }
  };
  bool explicit_cids = !wanted.empty();
  auto wanted_shared = std::make_shared<std::vector<Cid>>(std::move(wanted));
  *page = [this, r, shared_reader, page, write, local, explicit_cids, wanted_shared,
           listing = peer_.worker().listing_started()](std::string after) {
    std::vector<Cid> cids;
    std::string last;
    if (explicit_cids) {
      cids = std::move(*wanted_shared);
    } else {
      Status s = shared_reader->for_each_pin([&](std::string_view key, std::string_view) {
        last.assign(key);
        if (auto c = Cid::from_bytes(as_bytes(key))) cids.push_back(std::move(c).value());
        return cids.size() < 500;
      }, after);
      if (!s) {
        r->finish({{"X-Stream-Error", s.error().message}});
        *page = nullptr;
        return;
      }
    }
    bool final_page = explicit_cids || cids.size() < 500;
    // After the pinset's last page, the CIDs that left it and are still being unpinned.
    auto after_pinset = [this, r, page, write, local, explicit_cids, listing] {
      *page = nullptr;
      if (explicit_cids) return r->finish();
      r->on_drained([this, r, write, local, listing] {
        stream_leaving(peer_, r, local, std::nullopt, write, listing);
      });
    };
    if (cids.empty()) return after_pinset();
    peer_.gather_status(cids, local ? Peer::StatusScope::local : Peer::StatusScope::every_member,
                        [r, page, cids, write, last, final_page, after_pinset](Peer::StatusMap statuses) {
      if (!r->connected()) *page = nullptr;  // the client went away: end the stream's cycle
      if (!*page) return;
      write(cids, statuses);
      if (final_page) return after_pinset();
      r->on_drained([r, page, last] { next_page(r, page, last); });
    });
  };
  (*page)("");
}

void RestApi::get_peers(const Responder& r) {
  peer_.gather_peer_infos([r](std::vector<PeerInfo> infos) {
    auto lines = std::make_shared<std::vector<std::string>>();
    for (const auto& info : infos) lines->push_back(peer_info_to_json(info));
    r->start_stream(200, {{"Content-Type", "application/json"}});
    stream_lines(r, lines, 0);
  });
}

void RestApi::get_monitoring(const std::vector<std::string_view>& parts, const Responder& r) {
  const Monitor* monitor = peer_.monitor();
  auto json_array = [](const std::vector<std::string>& items) {
    std::string out = "[";
    for (std::size_t i = 0; i < items.size(); ++i) out += (i ? "," : "") + items[i];
    return out + "]";
  };
  std::string_view head = parts[0];
  bool metrics = head == "monitor" && parts.size() >= 2 && parts.size() <= 3 && parts[1] == "metrics";
  bool alerts = head == "health" && parts.size() == 2 && parts[1] == "alerts";
  bool graph = head == "health" && parts.size() == 2 && parts[1] == "graph";
  if (!metrics && !alerts && !graph) {
    return r->send_error(404, fmt::format("no route for GET /{}", fmt::join(parts, "/")));
  }
  if (graph) {
    peer_.gather_graph([r](std::string json) { r->send_json(200, json); });
    return;
  }
  // A peer still starting has collected nothing yet: empty lists, as IPFS Cluster answers.
  if (!monitor) return r->send_json(200, "[]");
  if (alerts) {
    std::vector<std::string> items;
    for (const Alert& a : monitor->alerts()) items.push_back(alert_to_json(a));
    return r->send_json(200, json_array(items));
  }
  if (parts.size() == 2) {
    std::vector<std::string> names;
    for (const auto& name : monitor->metrics().names()) {
      rapidjson::StringBuffer buffer;
      rapidjson::Writer<rapidjson::StringBuffer> w(buffer);
      w.String(name.c_str(), static_cast<rapidjson::SizeType>(name.size()));
      names.emplace_back(buffer.GetString(), buffer.GetSize());
    }
    return r->send_json(200, json_array(names));
  }
  // The latest valid metric of each member that has not expired (IPFS Cluster's LatestValid):
  // a peer that stopped publishing is not counted, e.g. in a sum of free space. Its alert says
  // it is gone.
  std::vector<std::string> items;
  auto members = peer_.member_ids();
  UnixNanos now = monitor->now();
  for (const Metric& metric : monitor->metrics().latest(parts[2])) {
    if (!metric.valid || metric.expired(now)) continue;
    if (std::find(members.begin(), members.end(), metric.peer) == members.end()) continue;
    items.push_back(metric_to_json(metric));
  }
  r->send_json(200, json_array(items));
}

}  // namespace clusterpin::node
