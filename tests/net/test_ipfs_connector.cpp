// IpfsConnector against a fake Kubo RPC server (HttpServer on its own thread) that answers the way
// Kubo documents (streamed progress, NDJSON, base32) or the way js-ipfs does (one body, base58btc,
// numbers as strings, no pin/update). Each test drives the connector on its own io_context until
// the callback has run, and checks both the outcome and what the server was asked.
#define DOCTEST_CONFIG_IMPLEMENT_WITH_MAIN
#include <doctest/doctest.h>

#include <atomic>
#include <chrono>
#include <filesystem>
#include <map>
#include <mutex>
#include <optional>
#include <thread>

#include <fmt/format.h>

#include "core/cid.hpp"
#include "net/http_server.hpp"
#include "net/ipfs_connector.hpp"

using namespace clusterpin;
using namespace clusterpin::net;
using namespace std::chrono_literals;
using std::chrono::milliseconds;
using Clock = std::chrono::steady_clock;

namespace {

using Route =
    std::function<void(const HttpRequest&, std::shared_ptr<HttpResponder>, asio::io_context&)>;

// A Kubo stand-in: one route per /api/v0 command; unknown commands get Kubo's 404.
class FakeKubo {
 public:
  explicit FakeKubo(std::string unix_path = {})
      : server_(io_, {}, [this](HttpRequest r, std::shared_ptr<HttpResponder> w) {
          handle(std::move(r), std::move(w));
        }) {
    auto bound = unix_path.empty()
                     ? server_.listen(HttpEndpoint::tcp(asio::ip::address_v4::loopback(), 0))
                     : server_.listen(HttpEndpoint::unix_socket(unix_path));
    REQUIRE(bound.ok());
    port_ = bound->port;
    thread_ = std::thread([this] { io_.run(); });
  }
  ~FakeKubo() {
    asio::post(io_, [this] {
      server_.stop();
      io_.stop();
    });
    thread_.join();
  }

  void route(const std::string& command, Route r) {
    std::lock_guard<std::mutex> lock(mutex_);
    routes_["/api/v0/" + command] = std::move(r);
  }
  // "pin/add?arg=...&recursive=true" for every request, in order.
  std::vector<std::string> requests() {
    std::lock_guard<std::mutex> lock(mutex_);
    return requests_;
  }
  size_t count(std::string_view command) {
    size_t n = 0;
    for (const auto& r : requests()) {
      if (r.substr(0, r.find('?')) == command) ++n;
    }
    return n;
  }
  std::string maddr() const { return fmt::format("/ip4/127.0.0.1/tcp/{}", port_); }

 private:
  void handle(HttpRequest r, std::shared_ptr<HttpResponder> w) {
    Route route;
    {
      std::lock_guard<std::mutex> lock(mutex_);
      requests_.push_back(r.path.substr(std::string("/api/v0/").size()) +
                          (r.raw_query.empty() ? "" : "?" + r.raw_query));
      auto it = routes_.find(r.path);
      if (it != routes_.end()) route = it->second;
    }
    if (r.method != "POST")
      return w->send_json(405, R"({"Message":"method not allowed","Code":0,"Type":"error"})");
    if (!route) return w->send_json(404, R"({"Message":"Not Found","Code":3,"Type":"error"})");
    route(r, std::move(w), io_);
  }

  asio::io_context io_;
  HttpServer server_;
  uint16_t port_ = 0;
  std::thread thread_;
  std::mutex mutex_;
  std::map<std::string, Route> routes_;
  std::vector<std::string> requests_;
};

Route json(int status, std::string body) {
  return [status, body](const HttpRequest&, std::shared_ptr<HttpResponder> w, asio::io_context&) {
    w->send_json(status, body);
  };
}

// A chunked NDJSON answer with the given lines.
Route ndjson(std::vector<std::string> lines, std::string stream_error = {}) {
  return [lines, stream_error](const HttpRequest&, std::shared_ptr<HttpResponder> w,
                               asio::io_context&) {
    w->start_stream(200, {{"Content-Type", "application/json"}, {"X-Chunked-Output", "1"}});
    for (const auto& line : lines) w->write_chunk(line + "\n");
    HttpHeaders trailers;
    if (!stream_error.empty()) trailers.add("X-Stream-Error", stream_error);
    w->finish(trailers);
  };
}

const std::string kNotPinned =
    R"({"Message":"path '/ipfs/x' is not pinned","Code":0,"Type":"error"})";

Cid content_cid(std::string_view text) {
  return Cid::from_content(Codec::raw, as_bytes(text));
}
std::string base58(const Cid& cid) {
  return cid.to_string(Multibase::base58btc).value();
}

IpfsConnectorOptions options_for(const std::string& maddr) {
  IpfsConnectorOptions o;
  o.node_multiaddress = maddr;
  o.request_timeout = 5s;
  o.pin_timeout = 5s;
  o.unpin_timeout = 5s;
  return o;
}

// Runs the io_context until `result` is set (or 20s pass, which fails the test).
template <class T>
T wait_for(asio::io_context& io, std::optional<T>& result) {
  auto end = Clock::now() + 20s;
  while (!result && Clock::now() < end) {
    io.restart();
    io.run_for(50ms);
  }
  REQUIRE(result.has_value());
  return std::move(*result);
}

struct Harness {
  explicit Harness(FakeKubo& kubo) : connector(io, options_for(kubo.maddr())) {}
  explicit Harness(IpfsConnectorOptions o) : connector(io, std::move(o)) {}

  Status pin_add(const Cid& cid, PinMode mode = PinMode::recursive, bool check_first = true) {
    std::optional<Status> r;
    connector.pin_add(cid, mode, [&](Status s) { r = std::move(s); }, check_first);
    return wait_for(io, r);
  }
  Status pin_add_many(std::vector<Cid> cids) {
    std::optional<Status> r;
    connector.pin_add_many(std::move(cids), [&](Status s) { r = std::move(s); });
    return wait_for(io, r);
  }
  Status pin_update(const Cid& from, const Cid& to) {
    std::optional<Status> r;
    connector.pin_update(from, to, [&](Status s) { r = std::move(s); });
    return wait_for(io, r);
  }
  Status pin_rm(const Cid& cid) {
    std::optional<Status> r;
    connector.pin_rm(cid, [&](Status s) { r = std::move(s); });
    return wait_for(io, r);
  }
  Result<bool> pin_ls_one(const Cid& cid) {
    std::optional<Result<bool>> r;
    connector.pin_ls_one(cid, [&](Result<bool> s) { r = std::move(s); });
    return wait_for(io, r);
  }
  Status pin_ls(std::string_view type, PinVisitor visit, ReadPace pace = {}) {
    std::optional<Status> r;
    connector.pin_ls(type, std::move(visit), [&](Status s) { r = std::move(s); }, std::move(pace));
    return wait_for(io, r);
  }
  Result<IpfsId> id() {
    std::optional<Result<IpfsId>> r;
    connector.id([&](Result<IpfsId> s) { r = std::move(s); });
    return wait_for(io, r);
  }

  asio::io_context io;
  IpfsConnector connector;
};

std::string message_of(const Status& s) {
  return s.ok() ? "ok" : s.error().message;
}

}  // namespace

TEST_CASE("pin_add skips pin/add when pin/ls shows the CID, even in another base (base58btc)") {
  FakeKubo kubo;
  Cid cid = content_cid("already pinned");
  kubo.route("pin/ls", ndjson({fmt::format(R"({{"Type":"recursive","Cid":"{}"}})", base58(cid))}));
  kubo.route("pin/add", json(500, R"({"Message":"must not be called","Code":0})"));
  Harness h(kubo);
  Status s = h.pin_add(cid);
  CHECK_MESSAGE(s.ok(), message_of(s));
  CHECK(kubo.count("pin/add") == 0);
  REQUIRE(kubo.count("pin/ls") == 1);
  std::string ls = kubo.requests().at(0);
  CHECK(ls.find("arg=" + cid.to_string()) != std::string::npos);
  CHECK(ls.find("type=recursive") != std::string::npos);
}

TEST_CASE("pin_add of a new recursive pin goes straight to pin/add; a direct one still asks") {
  FakeKubo kubo;
  Cid cid = content_cid("new here");
  kubo.route("pin/ls", json(500, R"({"Message":"not pinned","Code":0})"));
  kubo.route("pin/add", json(200, fmt::format(R"({{"Pins":["{}"]}})", cid.to_string())));
  Harness h(kubo);
  Status s = h.pin_add(cid, PinMode::recursive, false);
  CHECK_MESSAGE(s.ok(), message_of(s));
  CHECK(kubo.count("pin/ls") == 0);
  CHECK(kubo.count("pin/add") == 1);
  (void)h.pin_add(cid, PinMode::direct, false);
  CHECK(kubo.count("pin/ls") == 1);
}

TEST_CASE("pin_add reads Kubo's streamed progress lines and then the Pins line") {
  FakeKubo kubo;
  Cid cid = content_cid("kubo streams");
  kubo.route("pin/ls", json(500, kNotPinned));
  kubo.route("pin/add", ndjson({R"({"Progress":1})", R"({"Progress":5})",
                                fmt::format(R"({{"Pins":["{}"]}})", cid.to_string())}));
  Harness h(kubo);
  Status s = h.pin_add(cid);
  CHECK_MESSAGE(s.ok(), message_of(s));
  auto requests = kubo.requests();
  REQUIRE(requests.size() == 2);
  CHECK(requests[1] == fmt::format("pin/add?arg={}&recursive=true&progress=true", cid.to_string()));
}

TEST_CASE(
    "pin_add accepts js-ipfs's single body naming the CID in base58btc; direct mode asks "
    "recursive=false") {
  FakeKubo kubo;
  Cid cid = content_cid("js-ipfs answers once");
  kubo.route("pin/ls", json(500, kNotPinned));
  kubo.route("pin/add", json(200, fmt::format(R"({{"Pins":["{}"]}})", base58(cid))));
  Harness h(kubo);
  Status s = h.pin_add(cid, PinMode::direct);
  CHECK_MESSAGE(s.ok(), message_of(s));
  auto requests = kubo.requests();
  REQUIRE(requests.size() == 2);
  CHECK(requests[0].find("type=direct") != std::string::npos);
  CHECK(requests[1].find("recursive=false") != std::string::npos);
}

TEST_CASE("pin_add_many asks one pin/add with every CID as an arg, without asking pin/ls") {
  FakeKubo kubo;
  Cid a = content_cid("batch a"), b = content_cid("batch b"), c = content_cid("batch c");
  // Kubo streams progress, then names the pins; js-ipfs's base58btc is read as the same CID.
  kubo.route("pin/add", ndjson({R"({"Progress":3})", fmt::format(R"({{"Pins":["{}","{}","{}"]}})",
                                                                  a.to_string(), base58(b),
                                                                  c.to_string())}));
  Harness h(kubo);
  Status s = h.pin_add_many({a, b, c});
  CHECK_MESSAGE(s.ok(), message_of(s));
  auto requests = kubo.requests();
  REQUIRE(requests.size() == 1);
  CHECK(requests[0] == fmt::format("pin/add?arg={}&arg={}&arg={}&recursive=true&progress=true",
                                   a.to_string(), b.to_string(), c.to_string()));
}

TEST_CASE("pin_add_many fails, naming the CID, when IPFS's Pins leave one out; an error fails all") {
  FakeKubo kubo;
  Cid a = content_cid("listed"), b = content_cid("left out");
  kubo.route("pin/add", json(200, fmt::format(R"({{"Pins":["{}"]}})", a.to_string())));
  Harness h(kubo);
  Status s = h.pin_add_many({a, b});
  REQUIRE_FALSE(s.ok());
  CHECK_MESSAGE(s.error().message.find("without " + b.to_string()) != std::string::npos,
                s.error().message);
  CHECK(s.error().message.find("2 CIDs") != std::string::npos);
  kubo.route("pin/add", json(500, R"({"Message":"Failed to add pin: request timed out","Code":0})"));
  s = h.pin_add_many({a, b});
  REQUIRE_FALSE(s.ok());
  CHECK(s.error().message == "IPFS error (pin/add): Failed to add pin: request timed out");
}

TEST_CASE("pin_add fails when the Pins answer names another CID") {
  FakeKubo kubo;
  Cid cid = content_cid("mine");
  kubo.route("pin/ls", json(500, kNotPinned));
  kubo.route("pin/add",
             json(200, fmt::format(R"({{"Pins":["{}"]}})", content_cid("other").to_string())));
  Harness h(kubo);
  Status s = h.pin_add(cid);
  REQUIRE_FALSE(s.ok());
  CHECK(s.error().message.find("without it") != std::string::npos);
}

TEST_CASE("an IPFS error body becomes an error that quotes IPFS's message") {
  FakeKubo kubo;
  kubo.route("pin/ls", json(500, kNotPinned));
  kubo.route(
      "pin/add",
      json(500, R"({"Message":"Failed to add pin: request timed out","Code":0,"Type":"error"})"));
  Harness h(kubo);
  Status s = h.pin_add(content_cid("slow"));
  REQUIRE_FALSE(s.ok());
  CHECK(s.error().message == "IPFS error (pin/add): Failed to add pin: request timed out");
}

TEST_CASE("a direct pin of a CID IPFS already pins recursively counts as pinned") {
  FakeKubo kubo;
  Cid cid = content_cid("recursive already");
  kubo.route("pin/ls", json(500, kNotPinned));
  kubo.route("pin/add",
             json(500, fmt::format(R"({{"Message":"pin: {} already pinned recursively","Code":0}})",
                                   cid.to_string())));
  Harness h(kubo);
  CHECK(h.pin_add(cid, PinMode::direct).ok());
  CHECK_FALSE(h.pin_add(cid, PinMode::recursive).ok());
  // The same refusal after a progress line (a slower answer): as an error line of the stream,
  // or as its X-Stream-Error trailer.
  std::string refusal = fmt::format("pin: {} already pinned recursively", cid.to_string());
  kubo.route("pin/add", ndjson({"{}", fmt::format(R"({{"Message":"{}","Code":0}})", refusal)}));
  CHECK(h.pin_add(cid, PinMode::direct).ok());
  CHECK_FALSE(h.pin_add(cid, PinMode::recursive).ok());
  kubo.route("pin/add", ndjson({"{}"}, refusal));
  CHECK(h.pin_add(cid, PinMode::direct).ok());
  CHECK_FALSE(h.pin_add(cid, PinMode::recursive).ok());
}

// A pin/add route that writes `line` every 40ms for as long as the client listens.
static Route progress_forever(std::string line) {
  return [line](const HttpRequest&, std::shared_ptr<HttpResponder> w, asio::io_context& io) {
    w->start_stream(200);
    auto timer = std::make_shared<asio::steady_timer>(io);
    auto tick = std::make_shared<std::function<void()>>();
    // Only the pending wait owns the tick, so nothing is left when the server stops.
    *tick = [w, timer, line, weak = std::weak_ptr<std::function<void()>>(tick)] {
      if (!w->connected()) return;
      w->write_chunk(line);
      timer->expires_after(40ms);
      timer->async_wait([self = weak.lock()](asio::error_code ec) {
        if (!ec && self) (*self)();
      });
    };
    (*tick)();
  };
}

// Bytes flow, but nothing new is fetched: {"Progress":3} again and again, or {} (Kubo omits
// zero fields, so that is its line while no block of an unavailable DAG arrives).
static void check_cancelled_without_growth(const std::string& line) {
  FakeKubo kubo;
  kubo.route("pin/ls", json(500, kNotPinned));
  kubo.route("pin/add", progress_forever(line));
  auto o = options_for(kubo.maddr());
  o.pin_timeout = 300ms;
  Harness h(o);
  auto start = Clock::now();
  Status s = h.pin_add(content_cid("stuck"));
  auto took = Clock::now() - start;
  REQUIRE_FALSE(s.ok());
  CHECK(s.error().message.find("no progress for 300ms (pin_timeout)") != std::string::npos);
  CHECK(took >= 300ms);
}

TEST_CASE("pin_add is cancelled when Kubo's Progress stops growing for pin_timeout") {
  check_cancelled_without_growth("{\"Progress\":3}\n");
}

TEST_CASE("pin_add is cancelled when Kubo's progress lines stay empty ({}) for pin_timeout") {
  check_cancelled_without_growth("{}\n");
}

TEST_CASE(
    "pin_add is cancelled when no byte at all arrives for pin_timeout (js-ipfs is silent until "
    "done)") {
  FakeKubo kubo;
  kubo.route("pin/ls", json(500, kNotPinned));
  kubo.route("pin/add",
             [](const HttpRequest&, std::shared_ptr<HttpResponder> w, asio::io_context& io) {
               auto timer = std::make_shared<asio::steady_timer>(io, 10s);
               timer->async_wait([timer, w](asio::error_code) { w->send_json(200, "{}"); });
             });
  auto o = options_for(kubo.maddr());
  o.pin_timeout = 300ms;
  Harness h(o);
  auto start = Clock::now();
  Status s = h.pin_add(content_cid("silent"));
  REQUIRE_FALSE(s.ok());
  CHECK(s.error().message ==
        fmt::format("IPFS pin/add of {} at {}: no progress for 300ms (pin_timeout)",
                    content_cid("silent").to_string(), kubo.maddr()));
  CHECK(Clock::now() - start < 3s);
}

TEST_CASE("pin_update asks pin/update from -> to with unpin=false") {
  FakeKubo kubo;
  Cid from = content_cid("v1 of a dataset"), to = content_cid("v2 of a dataset");
  kubo.route("pin/ls", json(500, kNotPinned));
  kubo.route("pin/update",
             json(200, fmt::format(R"({{"Pins":["{}","{}"]}})", from.to_string(), to.to_string())));
  Harness h(kubo);
  Status s = h.pin_update(from, to);
  CHECK_MESSAGE(s.ok(), message_of(s));
  CHECK(kubo.count("pin/add") == 0);
  auto requests = kubo.requests();
  REQUIRE(requests.size() == 2);
  CHECK(requests[1] ==
        fmt::format("pin/update?arg={}&arg={}&unpin=false", from.to_string(), to.to_string()));
}

TEST_CASE("pin_update falls back to pin/add of the new CID when IPFS has no pin/update (404)") {
  FakeKubo kubo;
  Cid from = content_cid("old"), to = content_cid("new");
  kubo.route("pin/ls", json(500, kNotPinned));
  // no pin/update route: the fake answers 404 {"Message":"Not Found","Code":3}, as js-ipfs does
  kubo.route("pin/add", json(200, fmt::format(R"({{"Pins":["{}"]}})", base58(to))));
  Harness h(kubo);
  Status s = h.pin_update(from, to);
  CHECK_MESSAGE(s.ok(), message_of(s));
  CHECK(kubo.count("pin/update") == 1);
  REQUIRE(kubo.count("pin/add") == 1);
  CHECK(kubo.requests().back().find("arg=" + to.to_string()) != std::string::npos);
}

TEST_CASE("pin_update that says nothing for pin_timeout goes on as a pin/add with progress") {
  // Kubo's pin/update answers only when done: a large new DAG is silent for longer than
  // pin_timeout. The update is given up and the new CID pinned with pin/add, whose progress
  // lines keep it going.
  FakeKubo kubo;
  Cid from = content_cid("big v1"), to = content_cid("big v2");
  kubo.route("pin/ls", json(500, kNotPinned));
  kubo.route("pin/update",
             [](const HttpRequest&, std::shared_ptr<HttpResponder> w, asio::io_context& io) {
               auto timer = std::make_shared<asio::steady_timer>(io, 10s);
               timer->async_wait([timer, w](asio::error_code) { w->send_json(200, "{}"); });
             });
  kubo.route("pin/add", json(200, fmt::format(R"({{"Pins":["{}"]}})", to.to_string())));
  auto o = options_for(kubo.maddr());
  o.pin_timeout = 300ms;
  Harness h(o);
  Status s = h.pin_update(from, to);
  CHECK_MESSAGE(s.ok(), message_of(s));
  CHECK(kubo.count("pin/update") == 1);
  CHECK(kubo.count("pin/add") == 1);
}

TEST_CASE("pin_rm counts IPFS's \"not pinned\" as success and quotes any other error") {
  FakeKubo kubo;
  Cid cid = content_cid("to remove");
  kubo.route("pin/rm", json(500, kNotPinned));
  Harness h(kubo);
  CHECK(h.pin_rm(cid).ok());
  kubo.route("pin/rm",
             json(500, R"({"Message":"datastore is read-only","Code":0,"Type":"error"})"));
  Status s = h.pin_rm(cid);
  REQUIRE_FALSE(s.ok());
  CHECK(s.error().message == "IPFS error (pin/rm): datastore is read-only");
  kubo.route("pin/rm", json(200, fmt::format(R"({{"Pins":["{}"]}})", cid.to_string())));
  CHECK(h.pin_rm(cid).ok());
  CHECK(kubo.requests().back() == "pin/rm?arg=" + cid.to_string());
}

TEST_CASE("repo_stat reads numbers given as strings (js-ipfs) and as numbers (Kubo)") {
  FakeKubo kubo;
  Harness h(kubo);
  auto stat = [&] {
    std::optional<Result<RepoStat>> r;
    h.connector.repo_stat([&](Result<RepoStat> s) { r = std::move(s); });
    return wait_for(h.io, r);
  };
  kubo.route(
      "repo/stat",
      json(200, R"({"NumObjects":"18","RepoSize":"11543","StorageMax":"9007199254740991"})"));
  auto a = stat();
  REQUIRE(a.ok());
  CHECK(a->repo_size == 11543);
  CHECK(a->storage_max == 9007199254740991ull);
  kubo.route("repo/stat", json(200, R"({"RepoSize":42,"StorageMax":10000000000})"));
  auto b = stat();
  REQUIRE(b.ok());
  CHECK(b->repo_size == 42);
  CHECK(b->storage_max == 10000000000ull);
  kubo.route("repo/stat", json(200, R"({"RepoSize":"lots"})"));
  CHECK_FALSE(stat().ok());
  CHECK(kubo.requests().front() == "repo/stat?size-only=true");
}

TEST_CASE(
    "pin_ls streams 100k NDJSON lines to the visitor while the server is still writing them, "
    "its reads spaced by the pace it is given") {
  FakeKubo kubo;
  constexpr size_t kLines = 100000;
  std::vector<std::string> texts;
  texts.reserve(kLines);
  for (size_t i = 0; i < kLines; ++i) texts.push_back(content_cid(std::to_string(i)).to_string());
  auto written = std::make_shared<std::atomic<size_t>>(0);
  struct Writer : std::enable_shared_from_this<Writer> {
    std::shared_ptr<HttpResponder> w;
    const std::vector<std::string>* texts = nullptr;
    std::shared_ptr<std::atomic<size_t>> written;
    size_t next = 0;
    void pump() {
      while (next < texts->size()) {
        if (!w->connected()) return;
        bool more = w->write_chunk(
            fmt::format(R"({{"Cid":"{}","Name":"","Type":"recursive"}})", (*texts)[next]) + "\n");
        written->store(++next);
        if (!more) return w->on_drained([self = shared_from_this()] { self->pump(); });
      }
      w->finish();
    }
  };
  kubo.route("pin/ls", [&texts, written](const HttpRequest& r, std::shared_ptr<HttpResponder> w,
                                         asio::io_context&) {
    if (r.query_value("type") != "recursive") {
      w->start_stream(200);
      return w->finish();  // no direct pins
    }
    w->start_stream(200);
    auto writer = std::make_shared<Writer>();
    writer->w = w;
    writer->texts = &texts;
    writer->written = written;
    writer->pump();
  });
  Harness h(kubo);
  size_t visited = 0;
  size_t written_at_first_visit = 0;
  bool in_order = true;
  size_t paces = 0;
  Status s = h.pin_ls(
      "all",
      [&](const Cid& cid, std::string_view type) {
        if (visited == 0) written_at_first_visit = written->load();
        if (type != "recursive" || cid.to_string() != texts[visited]) in_order = false;
        ++visited;
        return true;
      },
      [&](std::chrono::steady_clock::duration) -> std::chrono::steady_clock::duration {
        ++paces;
        return paces <= 10 ? std::chrono::milliseconds(1) : std::chrono::steady_clock::duration{};
      });
  CHECK_MESSAGE(s.ok(), message_of(s));
  CHECK(visited == kLines);
  CHECK(in_order);
  CHECK(paces > 10);
  // The first pin was handed over long before the last line was written: nothing was collected.
  CHECK(written_at_first_visit < kLines / 2);
  auto requests = kubo.requests();
  REQUIRE(requests.size() == 2);
  CHECK(requests[0] == "pin/ls?type=recursive&stream=true");
  CHECK(requests[1] == "pin/ls?type=direct&stream=true");
}

TEST_CASE(
    "pin_ls reads the non-stream {\"Keys\":{...}} form and stops early with success when asked") {
  FakeKubo kubo;
  Cid a = content_cid("a"), b = content_cid("b");
  kubo.route(
      "pin/ls",
      json(200,
           fmt::format(R"({{"Keys":{{"{}":{{"Type":"recursive"}},"{}":{{"Type":"recursive"}}}}}})",
                       base58(a), base58(b))));
  Harness h(kubo);
  std::vector<Cid> seen;
  Status s = h.pin_ls("recursive", [&](const Cid& cid, std::string_view) {
    seen.push_back(cid);
    return true;
  });
  CHECK_MESSAGE(s.ok(), message_of(s));
  REQUIRE(seen.size() == 2);
  CHECK(seen[0] == a);
  CHECK(seen[1] == b);
  size_t calls = 0;
  Status stopped = h.pin_ls("all", [&](const Cid&, std::string_view) { return ++calls < 1; });
  CHECK(stopped.ok());
  CHECK(calls == 1);
  CHECK(kubo.count("pin/ls") == 2);  // "all" stopped before asking for direct pins
  CHECK_FALSE(h.pin_ls("indirect", [](const Cid&, std::string_view) { return true; }).ok());
}

TEST_CASE("pin_ls reports an X-Stream-Error trailer and a line that is not a CID") {
  FakeKubo kubo;
  kubo.route(
      "pin/ls",
      ndjson(
          {R"({"Cid":"bafkreigh2akiscaildcqabsyg3dfr6chu3fgpregiymsck7e7aqa4s52zy","Type":"recursive"})"},
          "context canceled"));
  Harness h(kubo);
  Status s = h.pin_ls("recursive", [](const Cid&, std::string_view) { return true; });
  REQUIRE_FALSE(s.ok());
  CHECK(s.error().message == "IPFS error (pin/ls): context canceled");
  kubo.route("pin/ls", ndjson({R"({"Cid":"not-a-cid","Type":"recursive"})"}));
  Status bad = h.pin_ls("recursive", [](const Cid&, std::string_view) { return true; });
  REQUIRE_FALSE(bad.ok());
  CHECK(bad.error().message.find("\"not-a-cid\", which is not a CID") != std::string::npos);
}

TEST_CASE("pin_ls reads each line shape IPFS writes: any key order, extra keys, spaces, escapes, links") {
  FakeKubo kubo;
  Cid a = content_cid("kubo"), b = content_cid("js-ipfs"), c = content_cid("spaced"),
      d = content_cid("escaped"), e = content_cid("link"), f = content_cid("repeated");
  std::string d_text = d.to_string();
  // "b" of the base32 prefix written as \u0062: a document's reading, not the in-place one.
  std::string d_escaped = "\\u0062" + d_text.substr(1);
  kubo.route(
      "pin/ls",
      ndjson({fmt::format(R"({{"Cid":"{}","Type":"recursive","Name":"a name"}})", a.to_string()),
              fmt::format(R"({{"Type":"direct","Cid":"{}"}})", base58(b)),
              fmt::format(" {{ \"Cid\" : \"{}\" ,\t\"Type\" : \"recursive\" }} \r", c.to_string()),
              fmt::format(R"({{"Cid":"{}","Type":"recursive"}})", d_escaped),
              fmt::format(R"({{"Cid":{{"/":"{}"}},"Type":"recursive"}})", e.to_string()),
              fmt::format(R"({{"Cid":"{}","Type":"recursive","Cid":"not-a-cid","Type":"x"}})",
                          f.to_string())}));
  Harness h(kubo);
  std::vector<std::pair<Cid, std::string>> seen;
  Status s = h.pin_ls("recursive", [&](const Cid& cid, std::string_view type) {
    seen.emplace_back(cid, std::string(type));
    return true;
  });
  CHECK_MESSAGE(s.ok(), message_of(s));
  REQUIRE(seen.size() == 6);
  CHECK(seen[0] == std::pair(a, std::string("recursive")));
  CHECK(seen[1] == std::pair(b, std::string("direct")));
  CHECK(seen[2] == std::pair(c, std::string("recursive")));
  CHECK(seen[3] == std::pair(d, std::string("recursive")));
  CHECK(seen[4] == std::pair(e, std::string("recursive")));
  CHECK(seen[5] == std::pair(f, std::string("recursive")));

  // Lines that are not a pin still fail with what is wrong, whichever reading met them.
  for (const char* line : {R"({"Cid":"bafy","Type":"recursive"})", R"({"Type":"recursive"})",
                           R"({"Cid":"bafy" "Type":"recursive"})", R"({"Message":"repo locked"})"}) {
    kubo.route("pin/ls", ndjson({line}));
    Status bad = h.pin_ls("recursive", [](const Cid&, std::string_view) { return true; });
    REQUIRE_FALSE(bad.ok());
    CAPTURE(line);
    CHECK_FALSE(bad.error().message.empty());
    CHECK(bad.error().message.find("pin/ls") != std::string::npos);
  }
}

TEST_CASE("pin_ls_one: recursive or direct is pinned, indirect or \"not pinned\" is not") {
  FakeKubo kubo;
  Cid cid = content_cid("one");
  Harness h(kubo);
  kubo.route("pin/ls", ndjson({fmt::format(R"({{"Cid":"{}","Type":"direct"}})", base58(cid))}));
  auto direct = h.pin_ls_one(cid);
  REQUIRE(direct.ok());
  CHECK(*direct);
  kubo.route(
      "pin/ls",
      ndjson({fmt::format(R"({{"Cid":"{}","Type":"indirect through QmX"}})", cid.to_string())}));
  auto indirect = h.pin_ls_one(cid);
  REQUIRE(indirect.ok());
  CHECK_FALSE(*indirect);
  kubo.route("pin/ls", json(500, kNotPinned));
  auto missing = h.pin_ls_one(cid);
  REQUIRE(missing.ok());
  CHECK_FALSE(*missing);
  kubo.route("pin/ls", json(500, R"({"Message":"repo is closed","Code":0})"));
  auto broken = h.pin_ls_one(cid);
  REQUIRE_FALSE(broken.ok());
  CHECK(broken.error().message == "IPFS error (pin/ls): repo is closed");
  CHECK(kubo.requests().back() ==
        fmt::format("pin/ls?arg={}&type=all&stream=true", cid.to_string()));
}

TEST_CASE("id, swarm_connect and repo_gc read what IPFS answers") {
  FakeKubo kubo;
  Harness h(kubo);
  kubo.route(
      "id",
      json(
          200,
          R"({"ID":"12D3KooWabc","Addresses":["/ip4/127.0.0.1/tcp/4001/p2p/12D3KooWabc"],"AgentVersion":"kubo"})"));
  auto id = h.id();
  REQUIRE(id.ok());
  CHECK(id->id == "12D3KooWabc");
  REQUIRE(id->addresses.size() == 1);
  CHECK(id->addresses[0] == "/ip4/127.0.0.1/tcp/4001/p2p/12D3KooWabc");

  kubo.route("swarm/connect", json(200, R"({"Strings":["connect 12D3KooWxyz success"]})"));
  std::optional<Status> connected;
  h.connector.swarm_connect("/ip4/127.0.0.1/tcp/4002/p2p/12D3KooWxyz",
                            [&](Status s) { connected = std::move(s); });
  CHECK(wait_for(h.io, connected).ok());
  CHECK(kubo.requests().back() ==
        "swarm/connect?arg=%2Fip4%2F127.0.0.1%2Ftcp%2F4002%2Fp2p%2F12D3KooWxyz");

  Cid a = content_cid("gc a"), b = content_cid("gc b");
  kubo.route("repo/gc", ndjson({fmt::format(R"({{"Key":{{"/":"{}"}}}})", base58(a)),
                                fmt::format(R"({{"Key":{{"/":"{}"}}}})", b.to_string())}));
  std::optional<Result<std::vector<Cid>>> gc;
  h.connector.repo_gc([&](Result<std::vector<Cid>> r) { gc = std::move(r); });
  auto removed = wait_for(h.io, gc);
  REQUIRE(removed.ok());
  REQUIRE(removed->size() == 2);
  CHECK((*removed)[0] == a);
  CHECK((*removed)[1] == b);

  kubo.route("repo/gc", ndjson({R"({"Error":"could not remove block: disk on fire"})"}));
  std::optional<Result<std::vector<Cid>>> failed;
  h.connector.repo_gc([&](Result<std::vector<Cid>> r) { failed = std::move(r); });
  auto f = wait_for(h.io, failed);
  REQUIRE_FALSE(f.ok());
  CHECK(f.error().message == "IPFS error (repo/gc): could not remove block: disk on fire");
}

// Answers with `route` after `delay` of silence, as Kubo's repo/gc while it waits for its lock.
static Route after_silence(milliseconds delay, Route route) {
  return [delay, route](const HttpRequest& q, std::shared_ptr<HttpResponder> w,
                        asio::io_context& io) {
    auto timer = std::make_shared<asio::steady_timer>(io, delay);
    timer->async_wait([timer, route, q, w, &io](asio::error_code ec) {
      if (!ec) route(q, w, io);
    });
  };
}

TEST_CASE("repo/gc waits for IPFS up to repogc_timeout, not ipfs_request_timeout") {
  FakeKubo kubo;
  Cid a = content_cid("gc after a long silence");
  kubo.route("repo/gc", after_silence(800ms, ndjson({fmt::format(R"({{"Key":{{"/":"{}"}}}})",
                                                                 a.to_string())})));
  IpfsConnectorOptions o = options_for(kubo.maddr());
  o.request_timeout = 200ms;  // silence four times longer than this is fine for a GC
  o.repogc_timeout = 10s;
  Harness h(o);
  std::optional<Result<std::vector<Cid>>> gc;
  h.connector.repo_gc([&](Result<std::vector<Cid>> r) { gc = std::move(r); });
  auto removed = wait_for(h.io, gc);
  REQUIRE_MESSAGE(removed.ok(), (removed.ok() ? "" : removed.error().message));
  CHECK(*removed == std::vector<Cid>{a});

  // repogc_timeout bounds the whole collection, and the error names it.
  IpfsConnectorOptions short_gc = options_for(kubo.maddr());
  short_gc.repogc_timeout = 300ms;
  Harness h2(short_gc);
  std::optional<Result<std::vector<Cid>>> cut;
  h2.connector.repo_gc([&](Result<std::vector<Cid>> r) { cut = std::move(r); });
  auto c = wait_for(h2.io, cut);
  REQUIRE_FALSE(c.ok());
  CHECK(c.error().message.find("no answer within 300ms (repogc_timeout)") != std::string::npos);
}

TEST_CASE("the connector speaks to a daemon on a unix socket") {
  auto path =
      std::filesystem::temp_directory_path() / fmt::format("clusterpin-ipfs-{}.sock", ::getpid());
  FakeKubo kubo(path.string());
  kubo.route("id", json(200, R"({"ID":"12D3KooWunix","Addresses":null})"));
  Harness h(options_for("/unix" + path.string()));
  auto id = h.id();
  REQUIRE_MESSAGE(id.ok(), id.error().message);
  CHECK(id->id == "12D3KooWunix");
  CHECK(id->addresses.empty());
  std::filesystem::remove(path);
}

TEST_CASE(
    "a daemon that is down gives \"IPFS daemon unreachable at <maddr>: connection refused\"; "
    "past the failure limit, requests are paced") {
  // A port that was just free: bind, read it, close.
  asio::io_context probe;
  asio::ip::tcp::acceptor acceptor(probe, {asio::ip::address_v4::loopback(), 0});
  uint16_t port = acceptor.local_endpoint().port();
  acceptor.close();
  std::string maddr = fmt::format("/ip4/127.0.0.1/tcp/{}", port);
  auto o = options_for(maddr);
  o.failures_before_limit = 2;
  o.limited_interval = 200ms;
  Harness h(o);
  Status s = h.pin_add(content_cid("nobody home"));
  REQUIRE_FALSE(s.ok());
  CHECK(s.error().message ==
        fmt::format("IPFS daemon unreachable at {}: connection refused", maddr));
  CHECK(h.pin_rm(content_cid("x")).error().message == s.error().message);
  CHECK(h.pin_rm(content_cid("y")).error().message == s.error().message);
  CHECK(h.connector.consecutive_failures() == 3);
  // Over the limit: three requests issued together start 200ms apart.
  auto start = Clock::now();
  std::optional<Status> r1, r2, r3;
  h.connector.pin_rm(content_cid("1"), [&](Status x) { r1 = std::move(x); });
  h.connector.pin_rm(content_cid("2"), [&](Status x) { r2 = std::move(x); });
  h.connector.pin_rm(content_cid("3"), [&](Status x) { r3 = std::move(x); });
  (void)wait_for(h.io, r1);
  (void)wait_for(h.io, r2);
  (void)wait_for(h.io, r3);
  CHECK(Clock::now() - start >= 350ms);
  CHECK(h.connector.consecutive_failures() == 6);
}

TEST_CASE("an invalid node_multiaddress is reported by every call, naming the setting") {
  Harness h(options_for("/ip4/127.0.0.1/udp/5001"));
  auto id = h.id();
  REQUIRE_FALSE(id.ok());
  CHECK(id.error().message.find("ipfs_connector.ipfshttp.node_multiaddress: ") == 0);
}

TEST_CASE("destroying the connector abandons requests in flight without running their callbacks") {
  FakeKubo kubo;
  kubo.route("id", [](const HttpRequest&, std::shared_ptr<HttpResponder> w, asio::io_context& io) {
    auto timer = std::make_shared<asio::steady_timer>(io, 200ms);
    timer->async_wait([timer, w](asio::error_code) { w->send_json(200, R"({"ID":"late"})"); });
  });
  asio::io_context io;
  bool called = false;
  {
    IpfsConnector connector(io, options_for(kubo.maddr()));
    connector.id([&](Result<IpfsId>) { called = true; });
    io.run_for(50ms);
  }
  io.restart();
  io.run_for(500ms);
  CHECK_FALSE(called);
}
