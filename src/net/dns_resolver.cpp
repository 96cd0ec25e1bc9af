// Stub resolver: one Resolution object per resolve_host call walks the candidate names (search
// domains), for each the query types (A, AAAA), for each the rounds over the nameservers. Every
// socket and timer runs on one strand; a generation counter makes a late completion of an
// abandoned attempt a no-op. Answers are parsed defensively: every read is bounds-checked,
// compression pointers must point backwards and are followed a bounded number of times.
#include "net/dns_resolver.hpp"

#include <sodium.h>

#include <algorithm>
#include <cstdint>
#include <fstream>
#include <memory>
#include <optional>
#include <sstream>

#include <fmt/format.h>
#include <fmt/ranges.h>

#include "core/sodium_init.hpp"
#include "net/address_text.hpp"
#include "net/http_message.hpp"  // equals_ignore_case

namespace clusterpin::net {

using std::chrono::milliseconds;

namespace {

constexpr uint16_t kTypeA = 1;
constexpr uint16_t kTypeCname = 5;
constexpr uint16_t kTypeAaaa = 28;
constexpr uint16_t kClassIn = 1;
constexpr int kRcodeNoError = 0;
constexpr int kRcodeFormErr = 1;
constexpr int kRcodeServFail = 2;
constexpr int kRcodeNxDomain = 3;
constexpr int kRcodeNotImp = 4;
constexpr int kRcodeRefused = 5;
constexpr size_t kMaxNameservers = 3;  // glibc's MAXNS
constexpr int kMaxCnameHops = 16;
constexpr int kMaxPointerHops = 128;  // a 255-byte name has at most 127 labels

char lower(char c) {
  return (c >= 'A' && c <= 'Z') ? static_cast<char>(c - 'A' + 'a') : c;
}

std::string to_lower(std::string_view text) {
  std::string out(text);
  for (char& c : out) c = lower(c);
  return out;
}

std::string format_duration(milliseconds d) {
  if (d.count() % 1000 == 0) return fmt::format("{}s", d.count() / 1000);
  return fmt::format("{}ms", d.count());
}


// A name as given by a user, quoted with anything unprintable escaped, for error messages.
std::string quoted(std::string_view text) {
  std::string out = "\"";
  for (unsigned char c : text) {
    if (c < 0x20 || c >= 0x7f || c == '"' || c == '\\')
      out += fmt::format("\\x{:02x}", c);
    else
      out += static_cast<char>(c);
  }
  return out + "\"";
}

bool is_host_char(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' ||
         c == '_';
}

std::string_view strip_final_dot(std::string_view name) {
  if (!name.empty() && name.back() == '.') name.remove_suffix(1);
  return name;
}

// Splits a line into whitespace-separated words, ending it at the first '#' or ';'.
std::vector<std::string> words_of(const std::string& line, bool semicolon_comments) {
  std::string text = line;
  size_t cut = semicolon_comments ? text.find_first_of("#;") : text.find('#');
  if (cut != std::string::npos) text.resize(cut);
  std::vector<std::string> out;
  std::istringstream in(text);
  std::string word;
  while (in >> word) out.push_back(word);
  return out;
}

std::optional<int> parse_small_int(std::string_view text) {
  if (text.empty() || text.size() > 6) return std::nullopt;
  int value = 0;
  for (char c : text) {
    if (c < '0' || c > '9') return std::nullopt;
    value = value * 10 + (c - '0');
  }
  return value;
}

bool is_localhost(std::string_view name) {
  name = strip_final_dot(name);
  constexpr std::string_view kLocal = "localhost";
  if (equals_ignore_case(name, kLocal)) return true;
  return name.size() > kLocal.size() + 1 &&
         equals_ignore_case(name.substr(name.size() - kLocal.size() - 1), ".localhost");
}

void append_unique(std::vector<asio::ip::address>& out, const asio::ip::address& a) {
  if (std::find(out.begin(), out.end(), a) == out.end()) out.push_back(a);
}

bool family_accepts(AddressFamily family, const asio::ip::address& a) {
  return family == AddressFamily::any || (family == AddressFamily::v4 && a.is_v4()) ||
         (family == AddressFamily::v6 && a.is_v6());
}

// v4 addresses first, each group in its original order.
std::vector<asio::ip::address> v4_first(const std::vector<asio::ip::address>& in) {
  std::vector<asio::ip::address> out;
  for (const auto& a : in)
    if (a.is_v4()) out.push_back(a);
  for (const auto& a : in)
    if (!a.is_v4()) out.push_back(a);
  return out;
}

// Every address of the hosts file's lines that name `name`; an unreadable file gives none.
std::vector<asio::ip::address> hosts_lookup(const std::string& path, std::string_view name,
                                            AddressFamily family) {
  std::vector<asio::ip::address> out;
  std::ifstream in(path);
  if (!in) return out;
  name = strip_final_dot(name);
  std::string line;
  while (std::getline(in, line)) {
    auto words = words_of(line, false);
    if (words.size() < 2) continue;
    asio::error_code ec;
    auto address = asio::ip::make_address(words[0], ec);
    if (ec || !family_accepts(family, address)) continue;
    for (size_t i = 1; i < words.size(); ++i) {
      if (equals_ignore_case(strip_final_dot(words[i]), name)) {
        append_unique(out, address);
        break;
      }
    }
  }
  return v4_first(out);
}

const char* family_words(AddressFamily family) {
  switch (family) {
    case AddressFamily::v4:
      return "IPv4";
    case AddressFamily::v6:
      return "IPv6";
    case AddressFamily::any:
      break;
  }
  return "IPv4 or IPv6";
}

// ---- wire format ----

void put16(std::string& out, uint16_t v) {
  out += static_cast<char>(v >> 8);
  out += static_cast<char>(v & 0xff);
}

// A query for `name` (validated, no final dot) of `type`, class IN, recursion desired.
std::string encode_query(uint16_t id, std::string_view name, uint16_t type) {
  std::string out;
  put16(out, id);
  put16(out, 0x0100);  // RD
  put16(out, 1);       // QDCOUNT
  put16(out, 0);
  put16(out, 0);
  put16(out, 0);
  size_t start = 0;
  while (start <= name.size() && !name.empty()) {
    size_t dot = name.find('.', start);
    if (dot == std::string_view::npos) dot = name.size();
    out += static_cast<char>(dot - start);
    out.append(name.substr(start, dot - start));
    start = dot + 1;
  }
  out += '\0';
  put16(out, type);
  put16(out, kClassIn);
  return out;
}

// Bounds-checked reads over one DNS message. The first failure is kept in `error`; later reads
// fail too, so that a parser can check once at the end of a step.
class Reader {
 public:
  explicit Reader(std::string_view msg) : msg_(msg) {}

  size_t pos() const { return pos_; }
  void seek(size_t pos) { pos_ = pos; }
  bool ok() const { return error_.empty(); }
  const std::string& error() const { return error_; }

  bool fail(std::string why) {
    if (error_.empty()) error_ = std::move(why);
    return false;
  }

  uint8_t byte_at(size_t at) const { return static_cast<uint8_t>(msg_[at]); }

  std::optional<uint16_t> u16(const char* what) {
    if (!ok()) return std::nullopt;
    if (msg_.size() < 2 || pos_ > msg_.size() - 2) {
      fail(fmt::format("the message ends inside {}", what));
      return std::nullopt;
    }
    uint16_t v = static_cast<uint16_t>(byte_at(pos_) << 8 | byte_at(pos_ + 1));
    pos_ += 2;
    return v;
  }

  bool skip(size_t n, const char* what) {
    if (!ok()) return false;
    if (n > msg_.size() - pos_) return fail(fmt::format("the message ends inside {}", what));
    pos_ += n;
    return true;
  }

  std::string_view bytes(size_t at, size_t n) const { return msg_.substr(at, n); }

  // A possibly compressed name at the current position, lower-cased, labels joined by '.'
  // ('.' and '\' inside a label escaped as \DDD); the root is "". The position moves past the
  // name as it is written here (up to and including the first pointer).
  std::optional<std::string> name(const char* what) {
    if (!ok()) return std::nullopt;
    std::string out;
    size_t p = pos_;
    size_t end_here = 0;
    bool jumped = false;
    int hops = 0;
    size_t wire_length = 1;
    for (;;) {
      if (p >= msg_.size()) {
        fail(fmt::format("{} runs past the end of the message", what));
        return std::nullopt;
      }
      uint8_t len = byte_at(p);
      if ((len & 0xC0) == 0xC0) {
        if (p + 1 >= msg_.size()) {
          fail(fmt::format("a compression pointer in {} runs past the end", what));
          return std::nullopt;
        }
        size_t target = static_cast<size_t>(len & 0x3F) << 8 | byte_at(p + 1);
        if (target >= p) {
          fail(fmt::format("a compression pointer in {} does not point backwards", what));
          return std::nullopt;
        }
        if (++hops > kMaxPointerHops) {
          fail(fmt::format("compression pointers in {} loop", what));
          return std::nullopt;
        }
        if (!jumped) end_here = p + 2;
        jumped = true;
        p = target;
        continue;
      }
      if ((len & 0xC0) != 0) {
        fail(fmt::format("{} uses an unsupported label type", what));
        return std::nullopt;
      }
      if (len == 0) {
        if (!jumped) end_here = p + 1;
        break;
      }
      if (len > msg_.size() - p - 1) {
        fail(fmt::format("a label of {} runs past the end of the message", what));
        return std::nullopt;
      }
      wire_length += 1 + len;
      if (wire_length > 255) {
        fail(fmt::format("{} is longer than 255 bytes", what));
        return std::nullopt;
      }
      if (!out.empty()) out += '.';
      for (size_t i = 0; i < len; ++i) {
        char c = static_cast<char>(byte_at(p + 1 + i));
        if (c == '.' || c == '\\')
          out += fmt::format("\\{:03d}", static_cast<unsigned char>(c));
        else
          out += lower(c);
      }
      p += 1 + len;
    }
    pos_ = end_here;
    return out;
  }

 private:
  std::string_view msg_;
  size_t pos_ = 0;
  std::string error_;
};

struct Header {
  uint16_t id = 0;
  uint16_t flags = 0;
  uint16_t qdcount = 0;
  uint16_t ancount = 0;
  bool response() const { return (flags & 0x8000) != 0; }
  int opcode() const { return (flags >> 11) & 0xF; }
  bool truncated() const { return (flags & 0x0200) != 0; }
  int rcode() const { return flags & 0xF; }
};

std::optional<Header> read_header(Reader& r) {
  Header h;
  auto id = r.u16("the header");
  auto flags = r.u16("the header");
  auto qd = r.u16("the header");
  auto an = r.u16("the header");
  r.skip(4, "the header");
  if (!r.ok()) return std::nullopt;
  h.id = *id;
  h.flags = *flags;
  h.qdcount = *qd;
  h.ancount = *an;
  return h;
}

// Whether `msg` is the answer to our query: same id, a response, and one question that is ours.
// Anything else is not for us (late, spoofed or garbage) and is ignored.
bool answers_query(std::string_view msg, uint16_t id, const std::string& qname, uint16_t qtype) {
  Reader r(msg);
  auto h = read_header(r);
  if (!h || h->id != id || !h->response() || h->opcode() != 0 || h->qdcount != 1) return false;
  auto name = r.name("the question");
  auto type = r.u16("the question");
  auto klass = r.u16("the question");
  return r.ok() && *name == qname && *type == qtype && *klass == kClassIn;
}

struct Answer {
  int rcode = 0;
  std::vector<asio::ip::address> addresses;
};

// The addresses of type `qtype` for `qname`, following CNAMEs among the answer records. The
// message has passed answers_query already.
Result<Answer> parse_answer(std::string_view msg, const std::string& qname, uint16_t qtype) {
  Reader r(msg);
  auto h = read_header(r);
  (void)r.name("the question");
  r.skip(4, "the question");
  if (!h || !r.ok()) return make_error(r.error());
  Answer answer;
  answer.rcode = h->rcode();
  struct Record {
    std::string owner;
    uint16_t type;
    std::string target;  // CNAME
    asio::ip::address address;
  };
  std::vector<Record> records;
  for (int i = 0; i < h->ancount; ++i) {
    auto owner = r.name("an answer record's name");
    auto type = r.u16("an answer record");
    auto klass = r.u16("an answer record");
    r.skip(4, "an answer record");  // TTL: not cached
    auto rdlength = r.u16("an answer record");
    if (!r.ok()) break;
    size_t rdata = r.pos();
    if (!r.skip(*rdlength, "an answer record's data")) break;
    if (*klass != kClassIn) continue;
    Record rec{*owner, *type, {}, {}};
    if (*type == kTypeA) {
      if (*rdlength != 4) {
        r.fail(fmt::format("an A record holds {} bytes instead of 4", *rdlength));
        break;
      }
      asio::ip::address_v4::bytes_type b;
      for (size_t k = 0; k < 4; ++k) b[k] = r.byte_at(rdata + k);
      rec.address = asio::ip::address_v4(b);
    } else if (*type == kTypeAaaa) {
      if (*rdlength != 16) {
        r.fail(fmt::format("an AAAA record holds {} bytes instead of 16", *rdlength));
        break;
      }
      asio::ip::address_v6::bytes_type b;
      for (size_t k = 0; k < 16; ++k) b[k] = r.byte_at(rdata + k);
      rec.address = asio::ip::address_v6(b);
    } else if (*type == kTypeCname) {
      size_t after = r.pos();
      r.seek(rdata);
      auto target = r.name("a CNAME target");
      if (!r.ok()) break;
      if (r.pos() != after) {
        r.fail("a CNAME target does not fill its record");
        break;
      }
      rec.target = *target;
    } else {
      continue;
    }
    records.push_back(std::move(rec));
  }
  if (!r.ok()) return make_error(r.error());
  std::string current = qname;
  for (int hop = 0; hop <= kMaxCnameHops; ++hop) {
    for (const auto& rec : records)
      if (rec.type == qtype && rec.owner == current) append_unique(answer.addresses, rec.address);
    if (!answer.addresses.empty()) break;
    auto next = std::find_if(records.begin(), records.end(), [&](const Record& rec) {
      return rec.type == kTypeCname && rec.owner == current;
    });
    if (next == records.end()) break;
    current = next->target;
  }
  return answer;
}

const char* rcode_text(int rcode) {
  switch (rcode) {
    case kRcodeFormErr:
      return "the query was refused as malformed (FORMERR)";
    case kRcodeServFail:
      return "server failure (SERVFAIL)";
    case kRcodeNotImp:
      return "not implemented (NOTIMP)";
    case kRcodeRefused:
      return "query refused (REFUSED)";
    default:
      return nullptr;
  }
}

// ---- the resolution ----

using Done = std::function<void(Result<std::vector<asio::ip::address>>)>;

// What one query (one name, one type) came to.
struct QueryOutcome {
  enum class Kind { answer, nxdomain, failure } kind = Kind::failure;
  std::vector<asio::ip::address> addresses;  // answer; empty: the name has none of this type
  std::string server;                        // nxdomain: who said so
  std::string why;                           // failure
  bool all_silent = false;                   // failure: no server answered at all
};

class Resolution : public std::enable_shared_from_this<Resolution> {
 public:
  Resolution(asio::io_context& io, ResolverConfig config, std::string name, AddressFamily family,
             Done done)
      : strand_(asio::make_strand(io)),
        config_(std::move(config)),
        name_(std::move(name)),
        family_(family),
        done_(std::move(done)),
        timer_(strand_),
        deadline_(strand_),
        buffer_(65536) {
    if (config_.nameservers.empty())
      config_.nameservers.emplace_back(asio::ip::make_address("127.0.0.1"), 53);
    config_.attempts = std::max(config_.attempts, 1);
    if (config_.timeout.count() < 1) config_.timeout = milliseconds(1);
  }

  void start() {
    asio::post(strand_, [self = shared_from_this()] {
      // A bound on the whole resolution, whatever the servers do (one that truncates every UDP
      // answer and then never answers over TCP would otherwise cost every candidate, type,
      // server and round two timeouts), so that a caller that gave up holds nothing for long.
      auto bound = self->config_.timeout * 2 * self->config_.attempts *
                   static_cast<int>(self->config_.nameservers.size());
      self->deadline_.expires_after(bound);
      self->deadline_.async_wait([self, bound](asio::error_code ec) {
        if (!ec) self->fail(fmt::format("no result within {}", format_duration(bound)));
      });
      self->run();
    });
  }

 private:
  void run() {
    asio::error_code ec;
    auto literal = asio::ip::make_address(name_, ec);
    if (!ec) {
      if (!family_accepts(family_, literal)) {
        return fail(fmt::format("it is an {} address and an {} address was asked for",
                                literal.is_v4() ? "IPv4" : "IPv6", family_words(family_)));
      }
      return succeed({literal});
    }
    if (auto valid = validate_host_name(name_); !valid) return finish(valid.error());
    if (is_localhost(name_)) {
      std::vector<asio::ip::address> out;
      if (family_ != AddressFamily::v6) out.push_back(asio::ip::address_v4::loopback());
      if (family_ != AddressFamily::v4) out.push_back(asio::ip::address_v6::loopback());
      return succeed(std::move(out));
    }
    if (!config_.hosts_file.empty()) {
      auto from_hosts = hosts_lookup(config_.hosts_file, name_, family_);
      if (!from_hosts.empty()) return succeed(std::move(from_hosts));
    }
    build_candidates();
    if (candidates_.empty()) return fail("the name is too long with every search domain");
    next_candidate();
  }

  // The names to ask for, in order, as glibc's res_search orders them.
  void build_candidates() {
    std::string_view name = name_;
    bool absolute = !name.empty() && name.back() == '.';
    name = strip_final_dot(name);
    auto dots = std::count(name.begin(), name.end(), '.');
    auto add = [&](std::string candidate) {
      if (!validate_host_name(candidate)) return;
      if (std::find(candidates_.begin(), candidates_.end(), candidate) == candidates_.end())
        candidates_.push_back(std::move(candidate));
    };
    if (absolute || dots >= config_.ndots) add(std::string(name));
    if (!absolute) {
      for (const auto& domain : config_.search) {
        auto d = strip_final_dot(domain);
        if (!d.empty()) add(fmt::format("{}.{}", name, d));
      }
      if (dots < config_.ndots) add(std::string(name));
    }
  }

  void next_candidate() {
    if (candidate_ >= candidates_.size()) return give_up();
    types_.clear();
    if (family_ != AddressFamily::v6) types_.push_back(kTypeA);
    if (family_ != AddressFamily::v4) types_.push_back(kTypeAaaa);
    type_ = 0;
    found_.clear();
    start_query();
  }

  void start_query() {
    qname_ = to_lower(candidates_[candidate_]);
    round_ = 0;
    server_ = 0;
    failures_.assign(config_.nameservers.size(), ServerFailure{});
    attempt();
  }

  // ---- one query over the nameservers ----

  struct ServerFailure {
    bool happened = false;
    bool silent = false;
    std::string why;
  };

  const asio::ip::udp::endpoint& server() const { return config_.nameservers[server_]; }

  void attempt() {
    if (round_ >= config_.attempts) return query_failed();
    ++generation_;
    close_sockets();
    unsigned char id_bytes[2];
    randombytes_buf(id_bytes, sizeof id_bytes);
    id_ = static_cast<uint16_t>(id_bytes[0] << 8 | id_bytes[1]);
    query_ = encode_query(id_, qname_, types_[type_]);

    // A connected socket: the kernel drops datagrams from other sources and reports an ICMP
    // "port unreachable" as connection_refused. The source is checked again on receipt.
    udp_ = std::make_unique<asio::ip::udp::socket>(strand_);
    asio::error_code ec;
    udp_->open(server().protocol(), ec);
    if (!ec) udp_->connect(server(), ec);
    if (ec)
      return server_failed(
          false, fmt::format("cannot send to {}: {}", address_text(server()), ec.message()));
    arm_timer(false);
    udp_->async_send(asio::buffer(query_),
                     [self = shared_from_this(), gen = generation_](asio::error_code ec, size_t) {
                       if (gen != self->generation_ || !ec) return;
                       self->server_failed(false, self->network_error(ec));
                     });
    receive();
  }

  void arm_timer(bool tcp) {
    timer_.expires_after(config_.timeout);
    timer_.async_wait([self = shared_from_this(), gen = generation_, tcp](asio::error_code ec) {
      if (ec || gen != self->generation_) return;
      if (tcp) {
        // Silent too: a server that never answers over TCP must not keep the search going.
        self->server_failed(true, fmt::format("no answer over TCP from {} within {}",
                                              address_text(self->server()),
                                              format_duration(self->config_.timeout)));
      } else {
        self->server_failed(true, "");
      }
    });
  }

  std::string network_error(const asio::error_code& ec) const {
    if (ec == asio::error::connection_refused)
      return fmt::format("connection refused by {}", address_text(server()));
    return fmt::format("cannot reach {}: {}", address_text(server()), ec.message());
  }

  void receive() {
    udp_->async_receive_from(
        asio::buffer(buffer_), sender_,
        [self = shared_from_this(), gen = generation_](asio::error_code ec, size_t n) {
          if (gen != self->generation_) return;
          if (ec) return self->server_failed(false, self->network_error(ec));
          std::string_view msg(self->buffer_.data(), n);
          if (self->sender_ != self->server() ||
              !answers_query(msg, self->id_, self->qname_, self->types_[self->type_])) {
            return self->receive();  // not ours: keep waiting until the timer
          }
          self->handle_answer(msg, false);
        });
  }

  void handle_answer(std::string_view msg, bool over_tcp) {
    // A truncated UDP answer goes to TCP before its records are read: a forwarder may cut one
    // in the middle of a record and leave the counts as they were (answers_query checked the
    // header is there).
    Reader header_reader(msg);
    auto header = read_header(header_reader);
    if (header && header->truncated() && !over_tcp && header->rcode() == kRcodeNoError)
      return start_tcp();
    auto parsed = parse_answer(msg, qname_, types_[type_]);
    if (!parsed) {
      return server_failed(false,
                           fmt::format("malformed answer from {}{}: {}", address_text(server()),
                                       over_tcp ? " over TCP" : "", parsed.error().message));
    }
    if (parsed->rcode == kRcodeNxDomain) {
      QueryOutcome out;
      out.kind = QueryOutcome::Kind::nxdomain;
      out.server = address_text(server());
      return query_done(std::move(out));
    }
    if (parsed->rcode != kRcodeNoError) {
      const char* text = rcode_text(parsed->rcode);
      std::string why =
          text ? fmt::format("{} from {}", text, address_text(server()))
               : fmt::format("error code {} from {}", parsed->rcode, address_text(server()));
      return server_failed(false, std::move(why));
    }
    QueryOutcome out;
    out.kind = QueryOutcome::Kind::answer;
    out.addresses = std::move(parsed->addresses);
    out.server = address_text(server());
    query_done(std::move(out));
  }

  // ---- TCP, after a truncated answer ----

  void start_tcp() {
    ++generation_;
    close_sockets();
    tcp_ = std::make_unique<asio::ip::tcp::socket>(strand_);
    tcp_query_.clear();
    put16(tcp_query_, static_cast<uint16_t>(query_.size()));
    tcp_query_ += query_;
    arm_timer(true);
    asio::ip::tcp::endpoint ep(server().address(), server().port());
    tcp_->async_connect(ep, [self = shared_from_this(), gen = generation_](asio::error_code ec) {
      if (gen != self->generation_) return;
      if (ec) return self->server_failed(false, self->network_error(ec) + " (TCP)");
      asio::async_write(*self->tcp_, asio::buffer(self->tcp_query_),
                        [self, gen](asio::error_code ec, size_t) {
                          if (gen != self->generation_) return;
                          if (ec) return self->server_failed(false, self->network_error(ec));
                          self->read_tcp_length();
                        });
    });
  }

  void read_tcp_length() {
    asio::async_read(
        *tcp_, asio::buffer(buffer_.data(), 2),
        [self = shared_from_this(), gen = generation_](asio::error_code ec, size_t) {
          if (gen != self->generation_) return;
          if (ec) return self->tcp_read_failed(ec);
          size_t length =
              static_cast<uint8_t>(self->buffer_[0]) << 8 | static_cast<uint8_t>(self->buffer_[1]);
          asio::async_read(
              *self->tcp_, asio::buffer(self->buffer_.data(), length),
              [self, gen](asio::error_code ec, size_t n) {
                if (gen != self->generation_) return;
                if (ec) return self->tcp_read_failed(ec);
                std::string_view msg(self->buffer_.data(), n);
                if (!answers_query(msg, self->id_, self->qname_, self->types_[self->type_])) {
                  return self->server_failed(false,
                                             fmt::format("the answer over TCP from {} does not "
                                                         "match the query",
                                                         address_text(self->server())));
                }
                self->handle_answer(msg, true);
              });
        });
  }

  void tcp_read_failed(const asio::error_code& ec) {
    if (ec == asio::error::eof)
      return server_failed(false, fmt::format("{} closed the TCP connection without an answer",
                                              address_text(server())));
    server_failed(false, network_error(ec) + " (TCP)");
  }

  // ---- outcomes ----

  // This server gave nothing usable in this attempt: note why and ask the next one.
  void server_failed(bool silent, std::string why) {
    ++generation_;
    close_sockets();
    // Silent only if silent in every round: one that answered SERVFAIL once was heard.
    const ServerFailure& before = failures_[server_];
    failures_[server_] =
        ServerFailure{true, silent && (!before.happened || before.silent), std::move(why)};
    if (++server_ == config_.nameservers.size()) {
      server_ = 0;
      ++round_;
    }
    attempt();
  }

  void query_failed() {
    QueryOutcome out;
    out.kind = QueryOutcome::Kind::failure;
    std::vector<std::string> silent;
    std::vector<std::string> parts;
    for (size_t i = 0; i < failures_.size(); ++i) {
      const auto& f = failures_[i];
      if (!f.happened) continue;
      if (f.silent)
        silent.push_back(address_text(config_.nameservers[i]));
      else
        parts.push_back(f.why);
    }
    if (!silent.empty()) {
      parts.insert(parts.begin(),
                   fmt::format("no answer from {} within {} ({} attempt{})",
                               fmt::join(silent, ", "), format_duration(config_.timeout),
                               config_.attempts, config_.attempts == 1 ? "" : "s"));
    }
    out.why = fmt::format("{}", fmt::join(parts, "; "));
    out.all_silent = silent.size() == config_.nameservers.size();
    query_done(std::move(out));
  }

  void query_done(QueryOutcome out) {
    ++generation_;
    close_sockets();
    using Kind = QueryOutcome::Kind;
    if (out.kind == Kind::answer) {
      for (const auto& a : out.addresses) append_unique(found_, a);
      got_answer_ = true;
    } else if (out.kind == Kind::nxdomain) {
      // The name does not exist, whatever the type: on to the next candidate name.
      nxdomain_from_ = out.server;
      return candidate_done();
    } else {
      last_failure_ = out.why;
      // Silence stops the search, as in glibc: asking other names would only wait again.
      if (out.all_silent && found_.empty()) {
        stop_on_failure_ = true;
        return candidate_done();
      }
    }
    if (++type_ < types_.size()) return start_query();
    candidate_done();
  }

  void candidate_done() {
    if (!found_.empty()) return succeed(v4_first(found_));
    if (stop_on_failure_) {
      const auto& asked = candidates_[candidate_];
      if (asked == strip_final_dot(name_)) return fail(last_failure_);
      return fail(fmt::format("{} (asking for {})", last_failure_, asked));
    }
    if (got_answer_) got_nodata_ = true;
    got_answer_ = false;
    ++candidate_;
    next_candidate();
  }

  void give_up() {
    std::string tried;
    if (candidates_.size() > 1)
      tried = fmt::format("; names tried: {}", fmt::join(candidates_, ", "));
    if (got_nodata_)
      return fail(fmt::format("the name has no {} address{}", family_words(family_), tried));
    if (!last_failure_.empty()) return fail(last_failure_ + tried);
    fail(fmt::format("no such name (NXDOMAIN from {}){}", nxdomain_from_, tried));
  }

  void succeed(std::vector<asio::ip::address> addresses) { finish(std::move(addresses)); }

  void fail(const std::string& why) {
    finish(make_error(fmt::format("cannot resolve {}: {}", name_, why)));
  }

  void finish(Result<std::vector<asio::ip::address>> result) {
    ++generation_;
    close_sockets();
    timer_.cancel();
    deadline_.cancel();
    if (!done_) return;
    auto done = std::move(done_);
    done_ = nullptr;
    done(std::move(result));
  }

  void close_sockets() {
    asio::error_code ignored;
    if (udp_) udp_->close(ignored);
    if (tcp_) tcp_->close(ignored);
  }

  asio::strand<asio::io_context::executor_type> strand_;
  ResolverConfig config_;
  std::string name_;
  AddressFamily family_;
  Done done_;
  asio::steady_timer timer_;
  asio::steady_timer deadline_;  // the whole resolution's (see start)
  std::vector<char> buffer_;

  std::vector<std::string> candidates_;
  size_t candidate_ = 0;
  std::vector<uint16_t> types_;
  size_t type_ = 0;
  std::vector<asio::ip::address> found_;  // this candidate's addresses so far
  bool got_answer_ = false;               // this candidate had a NOERROR answer
  bool got_nodata_ = false;               // some candidate exists but has no address
  bool stop_on_failure_ = false;
  std::string last_failure_;
  std::string nxdomain_from_;

  std::string qname_;
  uint16_t id_ = 0;
  std::string query_;
  std::string tcp_query_;
  int round_ = 0;
  size_t server_ = 0;
  std::vector<ServerFailure> failures_;
  uint64_t generation_ = 0;
  std::unique_ptr<asio::ip::udp::socket> udp_;
  std::unique_ptr<asio::ip::tcp::socket> tcp_;
  asio::ip::udp::endpoint sender_;
};

}  // namespace

ResolverConfig load_resolver_config(const std::string& resolv_conf, std::string hosts_file) {
  ResolverConfig config;
  config.hosts_file = std::move(hosts_file);
  std::ifstream in(resolv_conf);
  std::string line;
  while (in && std::getline(in, line)) {
    auto words = words_of(line, true);
    if (words.empty()) continue;
    const auto& key = words[0];
    if (key == "nameserver" && words.size() >= 2) {
      asio::error_code ec;
      auto address = asio::ip::make_address(words[1], ec);
      if (!ec && config.nameservers.size() < kMaxNameservers)
        config.nameservers.emplace_back(address, 53);
    } else if (key == "search" || key == "domain") {
      config.search.clear();
      for (size_t i = 1; i < words.size(); ++i) {
        auto d = strip_final_dot(words[i]);
        if (!d.empty()) config.search.emplace_back(d);
      }
      if (key == "domain" && config.search.size() > 1) config.search.resize(1);
    } else if (key == "options") {
      for (size_t i = 1; i < words.size(); ++i) {
        std::string_view option = words[i];
        auto value_of = [&](std::string_view prefix) -> std::optional<int> {
          if (option.substr(0, prefix.size()) != prefix) return std::nullopt;
          return parse_small_int(option.substr(prefix.size()));
        };
        if (auto v = value_of("ndots:")) {
          config.ndots = std::min(*v, 15);
        } else if (auto v = value_of("timeout:")) {
          config.timeout = std::chrono::seconds(std::clamp(*v, 1, 30));
        } else if (auto v = value_of("attempts:")) {
          config.attempts = std::clamp(*v, 1, 5);
        }
      }
    }
  }
  if (config.nameservers.empty())
    config.nameservers.emplace_back(asio::ip::make_address("127.0.0.1"), 53);
  return config;
}

Status validate_host_name(std::string_view name) {
  auto refuse = [&](std::string why) -> Status {
    return make_error(
        fmt::format("cannot resolve {}: not a valid host name: {} (labels of 1 to "
                    "63 letters, digits, '-' or '_' separated by dots, at most 253 "
                    "bytes)",
                    quoted(name), why));
  };
  std::string_view body = strip_final_dot(name);
  if (body.empty()) return refuse("it is empty");
  if (body.size() > 253) return refuse(fmt::format("it is {} bytes long", body.size()));
  size_t start = 0;
  while (start <= body.size()) {
    size_t dot = body.find('.', start);
    if (dot == std::string_view::npos) dot = body.size();
    size_t length = dot - start;
    if (length == 0) return refuse("it has an empty label");
    if (length > 63) return refuse(fmt::format("a label is {} bytes long", length));
    for (size_t i = start; i < dot; ++i) {
      if (!is_host_char(body[i]))
        return refuse(fmt::format("it contains {}", quoted(body.substr(i, 1))));
    }
    start = dot + 1;
  }
  return Status::ok_status();
}

void resolve_host(asio::io_context& io, const ResolverConfig& config, std::string name,
                  AddressFamily family, Done done) {
  initialize_sodium();
  auto resolution =
      std::make_shared<Resolution>(io, config, std::move(name), family, std::move(done));
  resolution->start();
}

}  // namespace clusterpin::net
