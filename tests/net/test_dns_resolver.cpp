// The stub resolver against a fake DNS server: a UDP (and, for truncated answers, TCP) server on
// 127.0.0.1 with an OS-chosen port, on its own io_context thread, answering through a handler
// that each test sets. Temporary resolv.conf and hosts files cover configuration loading and the
// hosts file. Query timeouts are 200ms so that the silent-server cases stay short.
#define DOCTEST_CONFIG_IMPLEMENT_WITH_MAIN
#include <doctest/doctest.h>

#include <array>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <functional>
#include <map>
#include <mutex>
#include <optional>
#include <random>
#include <set>
#include <thread>

#include <fmt/format.h>

#include "net/dns_resolver.hpp"

using namespace clusterpin;
using namespace clusterpin::net;
using namespace std::chrono_literals;
using std::chrono::milliseconds;
using Clock = std::chrono::steady_clock;

namespace {

constexpr uint16_t kA = 1;
constexpr uint16_t kCname = 5;
constexpr uint16_t kAaaa = 28;

// ---- DNS messages, written by hand so that tests can also write wrong ones ----

void put16(std::string& out, uint16_t v) {
  out += static_cast<char>(v >> 8);
  out += static_cast<char>(v & 0xff);
}

std::string wire_name(std::string_view name) {
  std::string out;
  size_t start = 0;
  while (start < name.size()) {
    size_t dot = name.find('.', start);
    if (dot == std::string_view::npos) dot = name.size();
    out += static_cast<char>(dot - start);
    out.append(name.substr(start, dot - start));
    start = dot + 1;
  }
  return out + '\0';
}

struct Query {
  uint16_t id = 0;
  uint16_t flags = 0;
  std::string name;  // dotted, as sent
  uint16_t type = 0;
  std::string question;  // the question section as sent
  bool tcp = false;
};

std::optional<Query> parse_query(std::string_view msg, bool tcp) {
  if (msg.size() < 12) return std::nullopt;
  auto u16 = [&](size_t at) {
    return static_cast<uint16_t>(static_cast<uint8_t>(msg[at]) << 8 |
                                 static_cast<uint8_t>(msg[at + 1]));
  };
  Query q;
  q.id = u16(0);
  q.flags = u16(2);
  q.tcp = tcp;
  size_t p = 12;
  while (p < msg.size() && msg[p] != 0) {
    size_t len = static_cast<uint8_t>(msg[p]);
    if (p + 1 + len > msg.size()) return std::nullopt;
    if (!q.name.empty()) q.name += '.';
    q.name.append(msg.substr(p + 1, len));
    p += 1 + len;
  }
  if (p + 5 > msg.size()) return std::nullopt;
  q.type = u16(p + 1);
  q.question = std::string(msg.substr(12, p + 5 - 12));
  return q;
}

struct Rr {
  std::string name;
  uint16_t type;
  std::string rdata;
};

Rr a_rr(std::string name, const char* address) {
  auto bytes = asio::ip::make_address_v4(address).to_bytes();
  return {std::move(name), kA, std::string(bytes.begin(), bytes.end())};
}
Rr aaaa_rr(std::string name, const char* address) {
  auto bytes = asio::ip::make_address_v6(address).to_bytes();
  return {std::move(name), kAaaa, std::string(bytes.begin(), bytes.end())};
}
Rr cname_rr(std::string name, std::string_view target) {
  return {std::move(name), kCname, wire_name(target)};
}

constexpr int kNxDomain = 3;
constexpr int kServFail = 2;

std::string response(const Query& q, const std::vector<Rr>& answers, int rcode = 0,
                     bool truncated = false) {
  std::string out;
  put16(out, q.id);
  put16(out, static_cast<uint16_t>(0x8180 | (truncated ? 0x0200 : 0) | rcode));
  put16(out, 1);
  put16(out, static_cast<uint16_t>(answers.size()));
  put16(out, 0);
  put16(out, 0);
  out += q.question;
  for (const auto& rr : answers) {
    out += wire_name(rr.name);
    put16(out, rr.type);
    put16(out, 1);
    put16(out, 0);
    put16(out, 60);
    put16(out, static_cast<uint16_t>(rr.rdata.size()));
    out += rr.rdata;
  }
  return out;
}

// The header and question of an answer to `q` claiming one answer record; the caller appends it.
std::string answer_head(const Query& q) {
  std::string out;
  put16(out, q.id);
  put16(out, 0x8180);
  put16(out, 1);
  put16(out, 1);
  put16(out, 0);
  put16(out, 0);
  return out + q.question;
}

// ---- the fake server ----

struct Reply {
  std::string bytes;
  bool from_other_port = false;  // sent from another socket: a spoofing attempt
};
using Handler = std::function<std::vector<Reply>(const Query&)>;

class FakeDns {
 public:
  explicit FakeDns(bool with_tcp = false) : udp_(io_), other_(io_) {
    auto loopback = asio::ip::make_address("127.0.0.1");
    for (int tries = 0;; ++tries) {
      udp_ = asio::ip::udp::socket(io_, asio::ip::udp::endpoint(loopback, 0));
      if (!with_tcp) break;
      asio::error_code ec;
      asio::ip::tcp::acceptor acceptor(io_);
      acceptor.open(asio::ip::tcp::v4());
      acceptor.bind(asio::ip::tcp::endpoint(loopback, udp_.local_endpoint().port()), ec);
      if (!ec) {
        acceptor.listen();
        tcp_.emplace(std::move(acceptor));
        break;
      }
      REQUIRE(tries < 50);
    }
    other_ = asio::ip::udp::socket(io_, asio::ip::udp::endpoint(loopback, 0));
    receive();
    if (tcp_) accept();
    thread_ = std::thread([this] { io_.run(); });
  }
  ~FakeDns() {
    io_.stop();
    thread_.join();
  }

  asio::ip::udp::endpoint endpoint() const { return udp_.local_endpoint(); }
  std::string name() const { return fmt::format("127.0.0.1:{}", endpoint().port()); }

  void set_handler(Handler handler) {
    std::lock_guard lock(mutex_);
    handler_ = std::move(handler);
  }
  std::vector<Query> queries() const {
    std::lock_guard lock(mutex_);
    return queries_;
  }
  // "A peer.example", "AAAA x", "TCP A x": what was asked, in order.
  std::vector<std::string> asked() const {
    std::vector<std::string> out;
    for (const auto& q : queries()) {
      out.push_back(fmt::format("{}{} {}", q.tcp ? "TCP " : "",
                                q.type == kA      ? "A"
                                : q.type == kAaaa ? "AAAA"
                                                  : "?",
                                q.name));
    }
    return out;
  }

 private:
  std::vector<Reply> handle(const Query& q) {
    Handler handler;
    {
      std::lock_guard lock(mutex_);
      queries_.push_back(q);
      handler = handler_;
    }
    if (!handler) return {};
    return handler(q);
  }

  void receive() {
    udp_.async_receive_from(asio::buffer(buffer_), sender_, [this](asio::error_code ec, size_t n) {
      if (ec) return;
      if (auto q = parse_query(std::string_view(buffer_.data(), n), false)) {
        for (const auto& reply : handle(*q)) {
          asio::error_code ignored;
          (reply.from_other_port ? other_ : udp_)
              .send_to(asio::buffer(reply.bytes), sender_, 0, ignored);
        }
      }
      receive();
    });
  }

  // One query per connection, read and answered synchronously on the server thread.
  void accept() {
    tcp_->async_accept([this](asio::error_code ec, asio::ip::tcp::socket socket) {
      if (ec) return;
      asio::error_code rec;
      std::array<char, 2> length{};
      asio::read(socket, asio::buffer(length), rec);
      if (!rec) {
        std::string msg(static_cast<uint8_t>(length[0]) << 8 | static_cast<uint8_t>(length[1]),
                        '\0');
        asio::read(socket, asio::buffer(msg), rec);
        if (!rec) {
          if (auto q = parse_query(msg, true)) {
            for (const auto& reply : handle(*q)) {
              std::string framed;
              put16(framed, static_cast<uint16_t>(reply.bytes.size()));
              framed += reply.bytes;
              asio::write(socket, asio::buffer(framed), rec);
            }
          }
        }
      }
      accept();
    });
  }

  asio::io_context io_;
  asio::ip::udp::socket udp_;
  asio::ip::udp::socket other_;
  std::optional<asio::ip::tcp::acceptor> tcp_;
  std::array<char, 65536> buffer_{};
  asio::ip::udp::endpoint sender_;
  mutable std::mutex mutex_;
  Handler handler_;
  std::vector<Query> queries_;
  std::thread thread_;
};

// A fresh directory under the system's temporary directory, removed at the end.
struct TempDir {
  std::filesystem::path path;
  TempDir() {
    std::random_device rd;
    path = std::filesystem::temp_directory_path() / fmt::format("dns-resolver-test-{:x}", rd());
    std::filesystem::create_directories(path);
  }
  ~TempDir() {
    std::error_code ec;
    std::filesystem::remove_all(path, ec);
  }
  std::string write(const std::string& name, const std::string& text) const {
    auto p = path / name;
    std::ofstream(p) << text;
    return p.string();
  }
};

ResolverConfig config_for(const std::vector<const FakeDns*>& servers, const TempDir& dir) {
  ResolverConfig config;
  for (const auto* s : servers) config.nameservers.push_back(s->endpoint());
  config.timeout = 200ms;
  config.attempts = 2;
  config.hosts_file = (dir.path / "no-hosts-file").string();
  return config;
}

using Addresses = std::vector<asio::ip::address>;

// Runs one resolve_host on a fresh io_context and checks that `done` runs once, after the call.
Result<Addresses> resolve(const ResolverConfig& config, std::string name,
                          AddressFamily family = AddressFamily::any) {
  asio::io_context io;
  std::vector<Result<Addresses>> out;
  bool returned = false;
  bool inside_call = false;
  resolve_host(io, config, std::move(name), family, [&](Result<Addresses> result) {
    if (!returned) inside_call = true;
    out.push_back(std::move(result));
  });
  returned = true;
  io.run();
  CHECK_FALSE(inside_call);
  REQUIRE(out.size() == 1);
  return std::move(out.front());
}

std::vector<std::string> texts(const Result<Addresses>& result) {
  std::vector<std::string> out;
  if (!result) {
    out.push_back("error: " + result.error().message);
    return out;
  }
  for (const auto& a : *result) out.push_back(a.to_string());
  return out;
}

std::string error_of(const Result<Addresses>& result) {
  REQUIRE_FALSE(result.ok());
  return result.error().message;
}

using Strings = std::vector<std::string>;

// A server that knows a few names: A/AAAA records by name, NXDOMAIN for anything else.
Handler zone(std::map<std::string, std::vector<Rr>> records) {
  return [records = std::move(records)](const Query& q) -> std::vector<Reply> {
    auto it = records.find(q.name);
    if (it == records.end()) return {{response(q, {}, kNxDomain)}};
    std::vector<Rr> answers;
    for (const auto& rr : it->second)
      if (rr.type == q.type || rr.type == kCname) answers.push_back(rr);
    return {{response(q, answers)}};
  };
}

}  // namespace

TEST_CASE("A, AAAA and any: v4 first, A asked before AAAA") {
  FakeDns dns;
  TempDir dir;
  auto config = config_for({&dns}, dir);
  dns.set_handler(zone({{"peer.example",
                         {aaaa_rr("peer.example", "fd00::1"), a_rr("peer.example", "10.0.0.1"),
                          a_rr("peer.example", "10.0.0.2")}},
                        {"six.example", {aaaa_rr("six.example", "fd00::6")}}}));

  CHECK(texts(resolve(config, "peer.example", AddressFamily::v4)) ==
        Strings{"10.0.0.1", "10.0.0.2"});
  CHECK(dns.asked() == Strings{"A peer.example"});
  auto query = dns.queries().front();
  CHECK((query.flags & 0x0100) != 0);  // recursion desired

  CHECK(texts(resolve(config, "peer.example", AddressFamily::v6)) == Strings{"fd00::1"});
  CHECK(dns.asked().back() == "AAAA peer.example");

  CHECK(texts(resolve(config, "peer.example")) == Strings{"10.0.0.1", "10.0.0.2", "fd00::1"});
  auto asked = dns.asked();
  CHECK(Strings(asked.end() - 2, asked.end()) == Strings{"A peer.example", "AAAA peer.example"});

  // any: a name with only an AAAA record still resolves.
  CHECK(texts(resolve(config, "six.example")) == Strings{"fd00::6"});
  // v4 asked of it: the name exists, without an IPv4 address.
  CHECK(error_of(resolve(config, "six.example", AddressFamily::v4)) ==
        "cannot resolve six.example: the name has no IPv4 address");
  CHECK(error_of(resolve(config, "six.example.", AddressFamily::v4)) ==
        "cannot resolve six.example.: the name has no IPv4 address");

  // Query ids differ between queries (random, 16 bits: a repeat over 8 queries is unlikely).
  std::set<uint16_t> ids;
  for (const auto& q : dns.queries()) ids.insert(q.id);
  CHECK(ids.size() >= dns.queries().size() - 1);
}

TEST_CASE("CNAME chains inside one answer are followed; a CNAME loop ends") {
  FakeDns dns;
  TempDir dir;
  auto config = config_for({&dns}, dir);
  dns.set_handler([](const Query& q) -> std::vector<Reply> {
    if (q.name == "www.example") {
      // Out of order on purpose, with an unrelated A record that must not be taken.
      return {
          {response(q, {a_rr("b.example", "10.0.0.7"), cname_rr("a.example", "b.example"),
                        a_rr("other.example", "10.6.6.6"), cname_rr("www.example", "a.example")})}};
    }
    if (q.name == "loop.example") {
      return {{response(
          q, {cname_rr("loop.example", "x.example"), cname_rr("x.example", "loop.example")})}};
    }
    return {{response(q, {}, kNxDomain)}};
  });
  CHECK(texts(resolve(config, "www.example", AddressFamily::v4)) == Strings{"10.0.0.7"});
  CHECK(texts(resolve(config, "WWW.Example", AddressFamily::v4)) == Strings{"10.0.0.7"});
  CHECK(error_of(resolve(config, "loop.example", AddressFamily::v4)) ==
        "cannot resolve loop.example: the name has no IPv4 address");
}

TEST_CASE("NXDOMAIN: named with the server that said so; AAAA not asked after it") {
  FakeDns dns;
  TempDir dir;
  auto config = config_for({&dns}, dir);
  dns.set_handler(zone({}));
  CHECK(error_of(resolve(config, "ipfs0")) ==
        fmt::format("cannot resolve ipfs0: no such name (NXDOMAIN from {})", dns.name()));
  CHECK(dns.asked() == Strings{"A ipfs0"});
}

TEST_CASE("search domains and ndots, as glibc applies them") {
  FakeDns dns;
  TempDir dir;
  auto config = config_for({&dns}, dir);
  config.search = {"svc.local", "example.org."};
  dns.set_handler(zone({{"ipfs0.example.org", {a_rr("ipfs0.example.org", "10.0.1.1")}},
                        {"a.b", {a_rr("a.b", "10.0.2.2")}},
                        {"a.b.svc.local", {a_rr("a.b.svc.local", "10.0.3.3")}}}));

  SUBCASE("fewer dots than ndots: search domains first, in order") {
    CHECK(texts(resolve(config, "ipfs0", AddressFamily::v4)) == Strings{"10.0.1.1"});
    CHECK(dns.asked() == Strings{"A ipfs0.svc.local", "A ipfs0.example.org"});
  }
  SUBCASE("enough dots: the name itself first") {
    CHECK(texts(resolve(config, "a.b", AddressFamily::v4)) == Strings{"10.0.2.2"});
    CHECK(dns.asked() == Strings{"A a.b"});
  }
  SUBCASE("ndots:2 makes a.b go through the search list first") {
    config.ndots = 2;
    CHECK(texts(resolve(config, "a.b", AddressFamily::v4)) == Strings{"10.0.3.3"});
    CHECK(dns.asked() == Strings{"A a.b.svc.local"});
  }
  SUBCASE("nothing found: every name tried, the name itself last") {
    auto error = error_of(resolve(config, "nope", AddressFamily::v4));
    CHECK(error == fmt::format("cannot resolve nope: no such name (NXDOMAIN from {}); names "
                               "tried: nope.svc.local, nope.example.org, nope",
                               dns.name()));
    CHECK(dns.asked() == Strings{"A nope.svc.local", "A nope.example.org", "A nope"});
  }
  SUBCASE("a name ending in a dot is absolute: no search domain") {
    CHECK(error_of(resolve(config, "ipfs0.", AddressFamily::v4)) ==
          fmt::format("cannot resolve ipfs0.: no such name (NXDOMAIN from {})", dns.name()));
    CHECK(dns.asked() == Strings{"A ipfs0"});
  }
  SUBCASE("silence stops the search; the error names the name asked") {
    dns.set_handler(nullptr);
    config.attempts = 1;
    CHECK(error_of(resolve(config, "ipfs0", AddressFamily::v4)) ==
          fmt::format("cannot resolve ipfs0: no answer from {} within 200ms (1 attempt) (asking "
                      "for ipfs0.svc.local)",
                      dns.name()));
    CHECK(dns.asked() == Strings{"A ipfs0.svc.local"});
  }
  SUBCASE("a search name that exists without an address does not stop the search") {
    dns.set_handler([](const Query& q) -> std::vector<Reply> {
      if (q.name == "ipfs0.svc.local") return {{response(q, {})}};
      if (q.name == "ipfs0") return {{response(q, {a_rr("ipfs0", "10.0.4.4")})}};
      return {{response(q, {}, kNxDomain)}};
    });
    CHECK(texts(resolve(config, "ipfs0", AddressFamily::v4)) == Strings{"10.0.4.4"});
    CHECK(dns.asked() == Strings{"A ipfs0.svc.local", "A ipfs0.example.org", "A ipfs0"});
  }
}

TEST_CASE("hosts file: before DNS, every matching line, aliases, case, comments") {
  FakeDns dns;
  TempDir dir;
  auto config = config_for({&dns}, dir);
  config.hosts_file = dir.write("hosts",
                                "# a comment line naming peer1\n"
                                "127.0.0.1\tlocalhost\n"
                                "fd00::1 peer1\n"
                                "10.1.1.1   Peer1.Example  peer1 alias-one # trailing comment\n"
                                "  10.1.1.2 PEER1\n"
                                "10.1.1.1 peer1\n"
                                "not-an-address peer9\n"
                                "10.9.9.9 # only-a-comment\n"
                                "#10.8.8.8 commented\n");
  dns.set_handler(
      zone({{"peer1", {a_rr("peer1", "10.6.6.6")}}, {"peer9", {a_rr("peer9", "10.0.9.9")}}}));

  CHECK(texts(resolve(config, "peer1")) == Strings{"10.1.1.1", "10.1.1.2", "fd00::1"});
  CHECK(texts(resolve(config, "Peer1.", AddressFamily::v4)) == Strings{"10.1.1.1", "10.1.1.2"});
  CHECK(texts(resolve(config, "peer1", AddressFamily::v6)) == Strings{"fd00::1"});
  CHECK(texts(resolve(config, "ALIAS-ONE")) == Strings{"10.1.1.1"});
  CHECK(texts(resolve(config, "peer1.example")) == Strings{"10.1.1.1"});
  CHECK(dns.queries().empty());

  // Names in comments or on lines with a bad address are not entries: DNS is asked.
  CHECK(texts(resolve(config, "peer9", AddressFamily::v4)) == Strings{"10.0.9.9"});
  CHECK(error_of(resolve(config, "only-a-comment", AddressFamily::v4)).find("NXDOMAIN") !=
        std::string::npos);
  CHECK(error_of(resolve(config, "commented", AddressFamily::v4)).find("NXDOMAIN") !=
        std::string::npos);
  // alias-one has no IPv6 line: AAAA goes to DNS.
  CHECK(error_of(resolve(config, "alias-one", AddressFamily::v6)).find("NXDOMAIN") !=
        std::string::npos);
  CHECK(dns.asked() == Strings{"A peer9", "A only-a-comment", "A commented", "AAAA alias-one"});
}

TEST_CASE("localhost and names under it are loopback, without asking anyone") {
  FakeDns dns;
  TempDir dir;
  auto config = config_for({&dns}, dir);
  config.hosts_file = dir.write("hosts", "10.5.5.5 localhost\n");  // not used for localhost
  dns.set_handler(zone({}));
  CHECK(texts(resolve(config, "localhost")) == Strings{"127.0.0.1", "::1"});
  CHECK(texts(resolve(config, "LocalHost.")) == Strings{"127.0.0.1", "::1"});
  CHECK(texts(resolve(config, "ipfs.localhost", AddressFamily::v4)) == Strings{"127.0.0.1"});
  CHECK(texts(resolve(config, "a.b.localhost", AddressFamily::v6)) == Strings{"::1"});
  // Only "localhost" as a whole label counts.
  CHECK(!resolve(config, "notlocalhost", AddressFamily::v4).ok());
  CHECK(dns.asked() == Strings{"A notlocalhost"});
}

TEST_CASE("IP literals are returned as they are") {
  FakeDns dns;
  TempDir dir;
  auto config = config_for({&dns}, dir);
  CHECK(texts(resolve(config, "10.1.2.3")) == Strings{"10.1.2.3"});
  CHECK(texts(resolve(config, "10.1.2.3", AddressFamily::v4)) == Strings{"10.1.2.3"});
  CHECK(texts(resolve(config, "fd00::42")) == Strings{"fd00::42"});
  CHECK(texts(resolve(config, "::1", AddressFamily::v6)) == Strings{"::1"});
  CHECK(error_of(resolve(config, "::1", AddressFamily::v4)) ==
        "cannot resolve ::1: it is an IPv6 address and an IPv4 address was asked for");
  CHECK(error_of(resolve(config, "10.1.2.3", AddressFamily::v6)) ==
        "cannot resolve 10.1.2.3: it is an IPv4 address and an IPv6 address was asked for");
  CHECK(dns.queries().empty());
}

TEST_CASE("invalid names are refused before anything is sent") {
  FakeDns dns;
  TempDir dir;
  auto config = config_for({&dns}, dir);
  dns.set_handler(zone({}));
  std::string label63(63, 'a');
  std::string longest = label63 + "." + label63 + "." + label63 + "." + std::string(61, 'b');
  REQUIRE(longest.size() == 253);
  CHECK(validate_host_name(longest).ok());
  CHECK(validate_host_name(longest + ".").ok());
  CHECK(validate_host_name("under_score-and-hyphen.x").ok());

  struct Bad {
    std::string name;
    std::string why;
  };
  std::vector<Bad> bad = {
      {"", "it is empty"},
      {".", "it is empty"},
      {"a..b", "it has an empty label"},
      {".a", "it has an empty label"},
      {"a.b..", "it has an empty label"},
      {"bad name", "it contains \" \""},
      {"a/b", "it contains \"/\""},
      {"caf\xc3\xa9", "it contains \"\\xc3\""},
      {std::string("nul\0x", 5), "it contains \"\\x00\""},
      {label63 + "a.example", "a label is 64 bytes long"},
      {longest + "b", "it is 254 bytes long"},
  };
  for (const auto& b : bad) {
    CAPTURE(b.name);
    auto error = error_of(resolve(config, b.name));
    CHECK(error.find("not a valid host name: " + b.why) != std::string::npos);
    CHECK(error.rfind("cannot resolve \"", 0) == 0);
    CHECK(validate_host_name(b.name).ok() == false);
  }
  CHECK(dns.queries().empty());
}

TEST_CASE("a silent first nameserver: the second answers after one timeout") {
  FakeDns silent;
  FakeDns dns;
  TempDir dir;
  auto config = config_for({&silent, &dns}, dir);
  dns.set_handler(zone({{"peer.example", {a_rr("peer.example", "10.0.0.1")}}}));
  auto start = Clock::now();
  CHECK(texts(resolve(config, "peer.example", AddressFamily::v4)) == Strings{"10.0.0.1"});
  auto took = Clock::now() - start;
  CHECK(took >= 190ms);
  CHECK(took < 2s);
  CHECK(silent.asked() == Strings{"A peer.example"});
  CHECK(dns.asked() == Strings{"A peer.example"});
}

TEST_CASE("every nameserver silent: a timeout error naming them, attempts rounds over them") {
  FakeDns one;
  FakeDns two;
  TempDir dir;
  auto config = config_for({&one, &two}, dir);
  auto start = Clock::now();
  auto error = error_of(resolve(config, "ipfs0"));
  auto took = Clock::now() - start;
  CHECK(error ==
        fmt::format("cannot resolve ipfs0: no answer from {}, {} within 200ms (2 attempts)",
                    one.name(), two.name()));
  CHECK(took >= 750ms);
  CHECK(took < 3s);
  // A silent server stops the resolution: AAAA is not asked after A went unanswered.
  CHECK(one.asked() == Strings{"A ipfs0", "A ipfs0"});
  CHECK(two.asked() == Strings{"A ipfs0", "A ipfs0"});

  config.nameservers = {one.endpoint()};
  config.attempts = 1;
  config.timeout = 1000ms;
  start = Clock::now();
  CHECK(error_of(resolve(config, "ipfs0", AddressFamily::v6)) ==
        fmt::format("cannot resolve ipfs0: no answer from {} within 1s (1 attempt)", one.name()));
  CHECK(Clock::now() - start >= 950ms);
}

TEST_CASE("answers with a wrong id, question or source are ignored; the right one is taken") {
  FakeDns dns;
  TempDir dir;
  auto config = config_for({&dns}, dir);
  dns.set_handler([](const Query& q) -> std::vector<Reply> {
    auto wrong_id = q;
    wrong_id.id ^= 0x5a5a;
    auto wrong_name = q;
    wrong_name.question = wire_name("evil.example") + q.question.substr(q.question.size() - 4);
    auto wrong_type = q;
    wrong_type.question[wrong_type.question.size() - 3] = static_cast<char>(kAaaa);
    std::string query_echo = response(q, {});
    query_echo[2] = static_cast<char>(query_echo[2] & 0x7f);  // QR clear: not a response
    query_echo += a_rr("x", "10.6.6.6").rdata;
    return {
        {response(wrong_id, {a_rr("peer.example", "10.6.6.1")})},
        {response(wrong_name, {a_rr("peer.example", "10.6.6.2")})},
        {response(wrong_type, {a_rr("peer.example", "10.6.6.3")})},
        {response(q, {a_rr("peer.example", "10.6.6.4")}), true},
        {query_echo},
        {"garbage"},
        {response(q, {a_rr("peer.example", "10.0.0.1")})},
    };
  });
  auto start = Clock::now();
  CHECK(texts(resolve(config, "peer.example", AddressFamily::v4)) == Strings{"10.0.0.1"});
  CHECK(Clock::now() - start < 190ms);  // taken when it came, not after a timeout
  CHECK(dns.asked() == Strings{"A peer.example"});
}

TEST_CASE("malformed answers are errors for that server, never a crash") {
  FakeDns dns;
  TempDir dir;
  auto config = config_for({&dns}, dir);
  config.attempts = 1;
  auto expect_malformed = [&](std::function<std::string(const Query&)> make, const char* why) {
    dns.set_handler([make](const Query& q) -> std::vector<Reply> { return {{make(q)}}; });
    auto error = error_of(resolve(config, "peer.example", AddressFamily::v4));
    CAPTURE(error);
    CHECK(error.rfind(
              fmt::format("cannot resolve peer.example: malformed answer from {}: ", dns.name()),
              0) == 0);
    CHECK(error.find(why) != std::string::npos);
  };

  SUBCASE("a compression pointer to itself") {
    expect_malformed(
        [](const Query& q) {
          std::string m = answer_head(q);
          size_t at = m.size();
          m += static_cast<char>(0xC0 | (at >> 8));
          m += static_cast<char>(at & 0xff);
          return m + std::string("\x00\x01\x00\x01\x00\x00\x00\x3c\x00\x04\x0a\x00\x00\x01", 14);
        },
        "does not point backwards");
  }
  SUBCASE("compression pointers that loop backwards") {
    expect_malformed(
        [](const Query& q) {
          std::string m = answer_head(q);
          size_t at = m.size();
          m += "\x01x";
          m += static_cast<char>(0xC0 | (at >> 8));
          m += static_cast<char>(at & 0xff);
          return m + std::string("\x00\x01\x00\x01\x00\x00\x00\x3c\x00\x04\x0a\x00\x00\x01", 14);
        },
        "longer than 255 bytes");
  }
  SUBCASE("a record cut short") {
    expect_malformed(
        [](const Query& q) {
          std::string m = response(q, {a_rr("peer.example", "10.0.0.1")});
          m.resize(m.size() - 2);
          return m;
        },
        "ends inside an answer record's data");
  }
  SUBCASE("a record header cut short") {
    expect_malformed(
        [](const Query& q) {
          return answer_head(q) + wire_name("peer.example") + std::string("\x00\x01", 2);
        },
        "ends inside an answer record");
  }
  SUBCASE("an A record of 5 bytes") {
    expect_malformed(
        [](const Query& q) {
          return response(q, {Rr{"peer.example", kA, std::string("\x0a\x00\x00\x01\x02", 5)}});
        },
        "an A record holds 5 bytes instead of 4");
  }
  SUBCASE("a label running past the end") {
    expect_malformed([](const Query& q) { return answer_head(q) + "\x3fpeer"; },
                     "runs past the end");
  }
  SUBCASE("an unknown label type") {
    expect_malformed([](const Query& q) { return answer_head(q) + "\x41" + "abc"; },
                     "unsupported label type");
  }
  SUBCASE("a CNAME target that overruns its record") {
    expect_malformed(
        [](const Query& q) {
          std::string target = wire_name("a.example");
          return response(q, {Rr{"peer.example", kCname, target.substr(0, 3)}});
        },
        "CNAME target");
  }
}

TEST_CASE("malformed answer from the first server: the second is asked") {
  FakeDns bad;
  FakeDns good;
  TempDir dir;
  auto config = config_for({&bad, &good}, dir);
  bad.set_handler(
      [](const Query& q) -> std::vector<Reply> { return {{answer_head(q) + "\xc0\xff"}}; });
  good.set_handler(zone({{"peer.example", {a_rr("peer.example", "10.0.0.1")}}}));
  auto start = Clock::now();
  CHECK(texts(resolve(config, "peer.example", AddressFamily::v4)) == Strings{"10.0.0.1"});
  CHECK(Clock::now() - start < 190ms);  // moved on at once, no timeout
}

TEST_CASE("SERVFAIL and REFUSED move on to the next server; all failing is named") {
  FakeDns failing;
  FakeDns refusing;
  TempDir dir;
  auto config = config_for({&failing, &refusing}, dir);
  config.attempts = 1;
  failing.set_handler(
      [](const Query& q) -> std::vector<Reply> { return {{response(q, {}, kServFail)}}; });
  refusing.set_handler([](const Query& q) -> std::vector<Reply> { return {{response(q, {}, 5)}}; });
  CHECK(error_of(resolve(config, "peer.example", AddressFamily::v4)) ==
        fmt::format("cannot resolve peer.example: server failure (SERVFAIL) from {}; query "
                    "refused (REFUSED) from {}",
                    failing.name(), refusing.name()));
  refusing.set_handler(zone({{"peer.example", {a_rr("peer.example", "10.0.0.1")}}}));
  CHECK(texts(resolve(config, "peer.example", AddressFamily::v4)) == Strings{"10.0.0.1"});
}

TEST_CASE("a nameserver port with nobody behind it fails at once") {
  TempDir dir;
  asio::io_context io;
  asio::ip::udp::socket closed(io, asio::ip::udp::endpoint(asio::ip::make_address("127.0.0.1"), 0));
  auto endpoint = closed.local_endpoint();
  closed.close();
  FakeDns dns;
  auto config = config_for({&dns}, dir);
  config.nameservers = {endpoint};
  config.attempts = 1;
  config.timeout = 2000ms;
  auto start = Clock::now();
  auto error = error_of(resolve(config, "peer.example", AddressFamily::v4));
  CHECK(error == fmt::format("cannot resolve peer.example: connection refused by 127.0.0.1:{}",
                             endpoint.port()));
  CHECK(Clock::now() - start < 1500ms);
}

TEST_CASE("a truncated answer is asked again over TCP of the same server") {
  FakeDns dns(true);
  TempDir dir;
  auto config = config_for({&dns}, dir);
  std::vector<Rr> many;
  for (int i = 1; i <= 40; ++i)
    many.push_back(a_rr("big.example", fmt::format("10.0.0.{}", i).c_str()));
  dns.set_handler([many](const Query& q) -> std::vector<Reply> {
    if (!q.tcp) return {{response(q, {many[0]}, 0, true)}};
    return {{response(q, many)}};
  });
  auto result = resolve(config, "big.example", AddressFamily::v4);
  REQUIRE(result.ok());
  CHECK(result->size() == 40);
  CHECK(result->back().to_string() == "10.0.0.40");
  CHECK(dns.asked() == Strings{"A big.example", "TCP A big.example"});

  SUBCASE("a truncated answer cut in the middle of a record still goes to TCP") {
    dns.set_handler([many](const Query& q) -> std::vector<Reply> {
      if (!q.tcp) {
        std::string cut = response(q, many, 0, true);
        return {{cut.substr(0, cut.size() - 7)}};  // 40 records counted, the last one cut
      }
      return {{response(q, many)}};
    });
    auto again = resolve(config, "big.example", AddressFamily::v4);
    REQUIRE_MESSAGE(again.ok(), (again.ok() ? "" : again.error().message));
    CHECK(again->size() == 40);
  }

  SUBCASE("a server that never answers over TCP stops the search like a silent one") {
    config.search = {"one.example", "two.example"};
    config.ndots = 2;
    config.attempts = 1;
    dns.set_handler([](const Query& q) -> std::vector<Reply> {
      if (!q.tcp) return {{response(q, {}, 0, true)}};
      std::this_thread::sleep_for(300ms);  // longer than the resolver's 200 ms: no answer
      return {};
    });
    const auto earlier = dns.asked().size();
    auto error = error_of(resolve(config, "big.example", AddressFamily::v4));
    CHECK(error.find("no answer from " + dns.name()) != std::string::npos);
    // Only the first candidate was asked: the other search domains would only wait again.
    auto asked = dns.asked();
    asked.erase(asked.begin(), asked.begin() + static_cast<std::ptrdiff_t>(earlier));
    CHECK(asked == Strings{"A big.example.one.example", "TCP A big.example.one.example"});
  }

  SUBCASE("a TCP answer that is not ours is an error for that server") {
    dns.set_handler([](const Query& q) -> std::vector<Reply> {
      if (!q.tcp) return {{response(q, {}, 0, true)}};
      auto other = q;
      other.id ^= 1;
      return {{response(other, {a_rr("big.example", "10.6.6.6")})}};
    });
    config.attempts = 1;
    CHECK(error_of(resolve(config, "big.example", AddressFamily::v4)) ==
          fmt::format("cannot resolve big.example: the answer over TCP from {} does not match "
                      "the query",
                      dns.name()));
  }
}

TEST_CASE("random damage after the question never crashes the parser") {
  FakeDns dns;
  TempDir dir;
  auto config = config_for({&dns}, dir);
  config.attempts = 1;
  std::mutex mutex;
  std::mt19937 rng(12345);
  dns.set_handler([&](const Query& q) -> std::vector<Reply> {
    std::string m = response(q, {cname_rr("peer.example", "a.example"),
                                 a_rr("a.example", "10.0.0.1"), aaaa_rr("a.example", "fd00::1")});
    std::lock_guard lock(mutex);
    size_t fixed = 12 + q.question.size();
    int changes = 1 + static_cast<int>(rng() % 4);
    for (int i = 0; i < changes; ++i) {
      size_t at = fixed + rng() % (m.size() - fixed);
      switch (rng() % 3) {
        case 0:
          m[at] = static_cast<char>(rng());
          break;
        case 1:
          m.resize(at);
          break;
        default:
          m[at] = static_cast<char>(0xC0 | (rng() % 2));
          break;
      }
      if (m.size() <= fixed) break;
    }
    return {{m}};
  });
  int ok = 0;
  int errors = 0;
  for (int i = 0; i < 300; ++i) {
    auto result = resolve(config, "peer.example", i % 2 ? AddressFamily::v4 : AddressFamily::any);
    if (result.ok())
      ++ok;
    else
      ++errors;
  }
  CHECK(ok + errors == 300);
  CHECK(errors > 0);
}

TEST_CASE("resolv.conf: nameservers, search, domain, options, comments") {
  TempDir dir;
  auto path = dir.write("resolv.conf",
                        "# generated\n"
                        "; also a comment\n"
                        "nameserver 10.0.0.53\n"
                        "nameserver   2001:db8::53  # the v6 one\n"
                        "nameserver not-an-address\n"
                        "nameserver 10.0.0.54\n"
                        "nameserver 10.0.0.55\n"  // a fourth: glibc keeps three
                        "unknown-keyword value\n"
                        "search a.example b.example. \n"
                        "options ndots:3 timeout:1 rotate attempts:4 edns0\n");
  auto config = load_resolver_config(path, "hosts-somewhere");
  REQUIRE(config.nameservers.size() == 3);
  CHECK(config.nameservers[0] == asio::ip::udp::endpoint(asio::ip::make_address("10.0.0.53"), 53));
  CHECK(config.nameservers[1] ==
        asio::ip::udp::endpoint(asio::ip::make_address("2001:db8::53"), 53));
  CHECK(config.nameservers[2] == asio::ip::udp::endpoint(asio::ip::make_address("10.0.0.54"), 53));
  CHECK(config.search == Strings{"a.example", "b.example"});
  CHECK(config.ndots == 3);
  CHECK(config.timeout == 1000ms);
  CHECK(config.attempts == 4);
  CHECK(config.hosts_file == "hosts-somewhere");

  SUBCASE("the last of search and domain wins; domain is one name") {
    auto p = dir.write("resolv2.conf",
                       "search a.example b.example\n"
                       "domain corp.example other.example\n");
    auto c = load_resolver_config(p);
    CHECK(c.search == Strings{"corp.example"});
    p = dir.write("resolv3.conf", "domain corp.example\nsearch x.example y.example\n");
    CHECK(load_resolver_config(p).search == Strings{"x.example", "y.example"});
  }
  SUBCASE("options are clamped as glibc clamps them; bad values are skipped") {
    auto p = dir.write("resolv4.conf",
                       "options ndots:40 timeout:99 attempts:9\n"
                       "options ndots:x timeout: attempts:-1\n");
    auto c = load_resolver_config(p);
    CHECK(c.ndots == 15);
    CHECK(c.timeout == 30000ms);
    CHECK(c.attempts == 5);
  }
  SUBCASE("no nameserver line: 127.0.0.1:53") {
    auto p = dir.write("resolv5.conf", "search only.example\n");
    auto c = load_resolver_config(p);
    CHECK(c.nameservers ==
          std::vector{asio::ip::udp::endpoint(asio::ip::make_address("127.0.0.1"), 53)});
  }
}

TEST_CASE("a missing resolv.conf gives the defaults") {
  TempDir dir;
  auto config = load_resolver_config((dir.path / "missing.conf").string());
  CHECK(config.nameservers ==
        std::vector{asio::ip::udp::endpoint(asio::ip::make_address("127.0.0.1"), 53)});
  CHECK(config.search.empty());
  CHECK(config.ndots == 1);
  CHECK(config.timeout == 2000ms);
  CHECK(config.attempts == 2);
  CHECK(config.hosts_file == "/etc/hosts");
}
