// The Kubo RPC client (see ipfs_connector.hpp). Each call is one POST through one of four HTTP
// clients that differ only in their time limits; a State shared with the callbacks (weakly, so
// destroying the connector abandons them) carries the rate limiter. Answers that may be long or
// streamed are read line by line and each line is parsed on its own, so memory does not grow
// with the size of a listing.
#include "net/ipfs_connector.hpp"

#include <algorithm>
#include <cassert>
#include <charconv>
#include <deque>
#include <optional>
#include <utility>

#include <fmt/format.h>
#include <rapidjson/document.h>

#include "core/duration.hpp"
#include "net/http_client.hpp"
#include "net/http_endpoint.hpp"
#include "net/http_message.hpp"
#include "net/http_url.hpp"

namespace clusterpin::net {

using Clock = std::chrono::steady_clock;
using std::chrono::milliseconds;

namespace {

// Which time limit an exchange runs under (see IpfsConnectorOptions).
enum class Budget { request, stream, pin, unpin, repogc };

// An error answer is quoted, so only its beginning is kept.
constexpr size_t kMaxErrorBody = 64 * 1024;

// Kubo answers 200; an empty stream may come as 204 No Content (ipfs-cluster's rule).
bool is_success(int status) {
  return status == 200 || status == 204;
}

bool contains(std::string_view text, std::string_view part) {
  return text.find(part) != std::string_view::npos;
}

// Trimmed and cut to `max` characters, for quoting a body in a message.
std::string shorten(std::string_view text, size_t max = 300) {
  while (!text.empty() && (text.front() == ' ' || text.front() == '\n' || text.front() == '\r'))
    text.remove_prefix(1);
  while (!text.empty() && (text.back() == ' ' || text.back() == '\n' || text.back() == '\r'))
    text.remove_suffix(1);
  if (text.size() <= max) return std::string(text);
  return std::string(text.substr(0, max)) + "...";
}

// Same content address: equal bytes, or a CIDv0 and the CIDv1 (dag-pb) of one multihash.
bool same_content(const Cid& a, const Cid& b) {
  return a == b || a.to_v1() == b.to_v1();
}

const rapidjson::Value* member(const rapidjson::Value& object, const char* name) {
  if (!object.IsObject()) return nullptr;
  auto it = object.FindMember(name);
  return it == object.MemberEnd() ? nullptr : &it->value;
}

std::string_view string_of(const rapidjson::Value* value) {
  if (value == nullptr || !value->IsString()) return {};
  return {value->GetString(), value->GetStringLength()};
}

// A count as Kubo writes it (a JSON number) or as js-ipfs does (a string of digits).
std::optional<std::uint64_t> count_of(const rapidjson::Value* value) {
  if (value == nullptr) return std::nullopt;
  if (value->IsUint64()) return value->GetUint64();
  if (value->IsDouble() && value->GetDouble() >= 0 && value->GetDouble() < 1.8e19)
    return static_cast<std::uint64_t>(value->GetDouble());
  if (value->IsString()) {
    std::string_view text = string_of(value);
    std::uint64_t n = 0;
    auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), n);
    if (ec == std::errc() && end == text.data() + text.size() && !text.empty()) return n;
  }
  return std::nullopt;
}

// A CID's text as IPFS writes it ("Qm...", "bafy...", "zb2r...").
Result<Cid> cid_from_text(std::string_view command, std::string_view text) {
  auto cid = Cid::parse(text);
  if (!cid) {
    return make_error(fmt::format("IPFS {} answered \"{}\", which is not a CID: {}", command,
                                  shorten(text, 120), cid.error().message));
  }
  return cid;
}

// A CID as IPFS writes it: text, or the DAG-JSON link {"/":"..."}.
Result<Cid> cid_of(std::string_view command, const rapidjson::Value* value) {
  std::string_view text = string_of(value);
  if (value != nullptr && value->IsObject()) text = string_of(member(*value, "/"));
  return cid_from_text(command, text);
}

// IPFS's own words from an error answer: Kubo's {"Message":...}, else the body itself.
std::string ipfs_message(int status, std::string_view body) {
  rapidjson::Document doc;
  doc.Parse(body.data(), body.size());
  if (!doc.HasParseError()) {
    std::string_view message = string_of(member(doc, "Message"));
    if (!message.empty()) return std::string(message);
  }
  std::string text = shorten(body);
  if (text.empty()) return fmt::format("HTTP {} {}", status, status_reason(status));
  return fmt::format("HTTP {} {}: {}", status, status_reason(status), text);
}

std::string ipfs_error(std::string_view command, std::string_view message) {
  return fmt::format("IPFS error ({}): {}", command, message);
}

// One POST: the command ("pin/add"), its query, its time limit, and how messages name it.
struct Call {
  std::string command;
  QueryPairs query;
  Budget budget = Budget::request;
  std::string subject;  // "pin/add of bafy...": what timed out or failed
  std::shared_ptr<HttpCancel> cancel;  // the caller may end it (a superseded pin)
};

Call make_call(std::string command, QueryPairs query, Budget budget, std::string_view cid = {}) {
  std::string subject = cid.empty() ? command : fmt::format("{} of {}", command, cid);
  return Call{std::move(command), std::move(query), budget, std::move(subject), nullptr};
}

// Reads an answer line by line: a 200's lines go to the call's reader, any other status's body
// is kept (its beginning) for the error message.
struct LineAnswer {
  int status = 0;
  std::string error_body;
};

HttpBodySink line_sink(std::shared_ptr<LineAnswer> answer,
                       std::function<bool(std::string_view)> on_line) {
  HttpBodySink sink;
  sink.on_head = [answer](const HttpResponseHead& head) { answer->status = head.status; };
  sink.on_line = [answer, on_line = std::move(on_line)](std::string_view line) {
    if (is_success(answer->status)) return on_line(line);
    if (answer->error_body.size() < kMaxErrorBody) {
      answer->error_body.append(line.substr(0, kMaxErrorBody - answer->error_body.size()));
      answer->error_body += '\n';
    }
    return true;
  };
  return sink;
}

// The error of an answer that is not a success (a status other than 200, or a stream that ended
// with X-Stream-Error), quoting IPFS; nothing for a success.
std::optional<std::string> answer_error(const Call& call, const HttpClientResponse& response,
                                        std::string_view body) {
  if (!is_success(response.status))
    return ipfs_error(call.command, ipfs_message(response.status, body));
  if (std::string e = response.stream_error(); !e.empty()) return ipfs_error(call.command, e);
  return std::nullopt;
}

// The members Cid and Type of a streamed pin/ls line when the line is a flat object of plain
// strings, as every IPFS writes it (Kubo {"Cid":"..","Type":"..","Name":".."}, js-ipfs
// {"Type":"..","Cid":".."}), read in place; nullopt for any other line (an escape, a nested
// value, no Cid, not JSON), which the caller parses in full. A listing of 10M pins is 10M
// lines: a document per line was most of what a peer spent reading it.
struct FlatPinLine {
  std::string_view cid;
  std::string_view type;
};
std::optional<FlatPinLine> read_flat_pin_line(std::string_view line) {
  std::size_t i = 0;
  auto skip_ws = [&] {
    while (i < line.size() && (line[i] == ' ' || line[i] == '\t' || line[i] == '\r' || line[i] == '\n'))
      ++i;
  };
  auto take = [&](char c) {
    skip_ws();
    if (i >= line.size() || line[i] != c) return false;
    ++i;
    return true;
  };
  auto plain_string = [&](std::string_view& out) {
    if (!take('"')) return false;
    std::size_t start = i;
    while (i < line.size()) {
      const auto c = static_cast<unsigned char>(line[i]);
      if (c == '"') {
        out = line.substr(start, i - start);
        ++i;
        return true;
      }
      if (c == '\\' || c < 0x20) return false;
      ++i;
    }
    return false;
  };
  FlatPinLine found;
  bool has_cid = false, has_type = false;
  if (!take('{')) return std::nullopt;
  do {
    std::string_view key, value;
    if (!plain_string(key) || !take(':') || !plain_string(value)) return std::nullopt;
    // The first of repeated keys counts, as in a parsed document.
    if (key == "Cid" && !std::exchange(has_cid, true)) found.cid = value;
    if (key == "Type" && !std::exchange(has_type, true)) found.type = value;
  } while (take(','));
  if (!take('}')) return std::nullopt;
  skip_ws();
  if (i != line.size() || !has_cid) return std::nullopt;
  return found;
}

// One line of a pin/ls answer: the stream form {"Cid":...,"Type":...} (Kubo and js-ipfs), or the
// whole non-stream form {"Keys":{"<cid>":{"Type":...}}}. Returns whether to go on.
Result<bool> read_pin_ls_line(std::string_view line, const PinVisitor& visit) {
  if (auto flat = read_flat_pin_line(line)) {
    auto cid = cid_from_text("pin/ls", flat->cid);
    if (!cid) return cid.error();
    return visit(*cid, flat->type);
  }
  rapidjson::Document doc;
  doc.Parse(line.data(), line.size());
  if (doc.HasParseError() || !doc.IsObject()) {
    return make_error(fmt::format("IPFS pin/ls answered a line that is not a JSON object: {}",
                                  shorten(line, 120)));
  }
  if (const auto* keys = member(doc, "Keys")) {
    if (!keys->IsObject()) return true;  // {"Keys":null}: nothing pinned
    for (const auto& key : keys->GetObject()) {
      auto cid = cid_of("pin/ls", &key.name);
      if (!cid) return cid.error();
      if (!visit(*cid, string_of(member(key.value, "Type")))) return false;
    }
    return true;
  }
  const auto* cid_value = member(doc, "Cid");
  if (cid_value == nullptr) {
    std::string_view message = string_of(member(doc, "Message"));
    if (!message.empty()) return make_error(ipfs_error("pin/ls", message));
    return make_error(
        fmt::format("IPFS pin/ls answered a line without a Cid: {}", shorten(line, 120)));
  }
  auto cid = cid_of("pin/ls", cid_value);
  if (!cid) return cid.error();
  return visit(*cid, string_of(member(doc, "Type")));
}

HttpClientOptions client_options(Budget budget, const IpfsConnectorOptions& o) {
  HttpClientOptions options;
  options.connect_timeout = o.connect_timeout;
  // Enough idle connections for every concurrent pin (concurrent_pins, 10 by default) to reuse
  // one instead of connecting per call.
  options.max_idle_per_endpoint = 64;
  switch (budget) {
    case Budget::request:
      options.timeout = o.request_timeout;
      break;
    case Budget::stream:
      options.stall_timeout = o.request_timeout;
      break;
    case Budget::pin:
      options.stall_timeout = o.pin_timeout;
      break;
    case Budget::unpin:
      options.timeout = o.unpin_timeout;
      break;
    case Budget::repogc:
      // The whole collection; Kubo may be silent for long while it walks the pinset.
      options.timeout = o.repogc_timeout;
      break;
  }
  return options;
}

std::string no_progress_message(std::string_view subject, std::string_view maddr,
                                milliseconds pin_timeout) {
  return fmt::format("IPFS {} at {}: no progress for {} (pin_timeout)", subject, maddr,
                     format_go_duration(pin_timeout));
}

}  // namespace

struct IpfsConnector::State : std::enable_shared_from_this<IpfsConnector::State> {
  State(asio::io_context& io_context, IpfsConnectorOptions o)
      : io(io_context),
        options(std::move(o)),
        endpoint(parse_http_endpoint(options.node_multiaddress)),
        request_client(io, client_options(Budget::request, options)),
        stream_client(io, client_options(Budget::stream, options)),
        pin_client(io, client_options(Budget::pin, options)),
        unpin_client(io, client_options(Budget::unpin, options)),
        repogc_client(io, client_options(Budget::repogc, options)),
        limiter(io) {}

  asio::io_context& io;
  IpfsConnectorOptions options;
  Result<HttpEndpoint> endpoint;
  HttpClient request_client;
  HttpClient stream_client;
  HttpClient pin_client;
  HttpClient unpin_client;
  HttpClient repogc_client;

  int consecutive_failures = 0;
  Clock::time_point next_slot{};
  std::deque<std::function<void()>> waiting;  // requests held back by the rate limiter
  asio::steady_timer limiter;
  bool limiter_armed = false;

  HttpClient& client(Budget budget) {
    switch (budget) {
      case Budget::request:
        return request_client;
      case Budget::stream:
        return stream_client;
      case Budget::pin:
        return pin_client;
      case Budget::unpin:
        return unpin_client;
      case Budget::repogc:
        return repogc_client;
    }
    return request_client;
  }

  // Starts a request now, or once the rate limiter lets it.
  void admit(std::function<void()> start) {
    if (consecutive_failures <= options.failures_before_limit) {
      start();
      return;
    }
    waiting.push_back(std::move(start));
    arm_limiter();
  }

  void arm_limiter() {
    if (limiter_armed || waiting.empty()) return;
    limiter_armed = true;
    limiter.expires_at(std::max(next_slot, Clock::now()));
    limiter.async_wait([weak = weak_from_this()](asio::error_code ec) {
      auto self = weak.lock();
      if (!self || ec) return;
      self->limiter_armed = false;
      if (self->waiting.empty()) return;
      auto start = std::move(self->waiting.front());
      self->waiting.pop_front();
      self->next_slot = Clock::now() + self->options.limited_interval;
      start();
      self->arm_limiter();
    });
  }

  // The daemon answered (whatever the status): the limiter lets everything through again.
  void answered() {
    consecutive_failures = 0;
    auto ready = std::move(waiting);
    waiting.clear();
    for (auto& start : ready) start();
  }

  // Turns the HTTP client's reason for having no answer into a sentence about the daemon;
  // `unreachable` says whether the daemon could not be reached at all (what the limiter counts).
  std::string describe_failure(const Call& call, std::string_view reason, bool& unreachable) const {
    const std::string key = endpoint->to_string();
    const std::string& maddr = options.node_multiaddress;
    auto down = [&](std::string_view why) {
      unreachable = true;
      return fmt::format("IPFS daemon unreachable at {}: {}", maddr, why);
    };
    unreachable = false;
    // The HTTP client's sentences: see http_client.cpp (connect, timers).
    if (reason.starts_with("connection refused")) return down("connection refused");
    if (reason.starts_with("no unix socket")) return down("no such unix socket");
    if (reason.starts_with("cannot resolve ")) return down(reason);
    if (std::string prefix = fmt::format("cannot connect to {}: ", key);
        reason.starts_with(prefix)) {
      return down(reason.substr(prefix.size()));
    }
    if (reason.starts_with("timed out") && contains(reason, " connecting to ")) {
      return down(
          fmt::format("no connection within {}", format_go_duration(options.connect_timeout)));
    }
    if (contains(reason, "(request timeout)")) {
      auto [limit, setting] =
          call.budget == Budget::unpin    ? std::pair(options.unpin_timeout, "unpin_timeout")
          : call.budget == Budget::repogc ? std::pair(options.repogc_timeout, "repogc_timeout")
                                          : std::pair(options.request_timeout, "ipfs_request_timeout");
      return fmt::format("IPFS {} at {}: no answer within {} ({})", call.subject, maddr,
                         format_go_duration(limit), setting);
    }
    if (contains(reason, "(stall timeout)")) {
      if (call.budget == Budget::pin) {
        return no_progress_message(call.subject, maddr, options.pin_timeout);
      }
      return fmt::format("IPFS {} at {}: nothing received for {} (ipfs_request_timeout)",
                         call.subject, maddr, format_go_duration(options.request_timeout));
    }
    return fmt::format("IPFS {} at {} failed: {}", call.subject, maddr, reason);
  }
};

namespace {

using State = IpfsConnector::State;
using Answer = Result<HttpClientResponse>;

// Sends `call` (after the rate limiter) and hands `done` the answer, whatever its status, or a
// sentence saying why there is none. Nothing runs once the connector is gone.
void send(const std::shared_ptr<State>& state, Call call, HttpBodySink sink,
          std::function<void(Answer)> done) {
  std::weak_ptr<State> weak = state;
  if (!state->endpoint) {
    std::string message = fmt::format("ipfs_connector.ipfshttp.node_multiaddress: {}",
                                      state->endpoint.error().message);
    asio::post(state->io, [weak, message, done = std::move(done)] {
      if (weak.lock()) done(make_error(message));
    });
    return;
  }
  auto start = [weak, call = std::move(call), sink = std::move(sink),
                done = std::move(done)]() mutable {
    auto self = weak.lock();
    if (!self) return;
    HttpClientRequest request;
    request.method = "POST";
    request.target = make_target("/api/v0/" + call.command, call.query);
    request.cancel = call.cancel;
    auto& client = self->client(call.budget);
    client.request(
        *self->endpoint, std::move(request),
        [weak, call, done = std::move(done)](Answer answer) {
          auto self = weak.lock();
          if (!self) return;
          if (answer) {
            self->answered();
            return done(std::move(answer));
          }
          // Ended by its caller: not a failure of IPFS.
          if (call.cancel && call.cancel->cancelled()) return done(make_error(call.cancel->why()));
          bool unreachable = false;
          std::string message = self->describe_failure(call, answer.error().message, unreachable);
          if (unreachable) ++self->consecutive_failures;
          done(make_error(std::move(message)));
        },
        std::move(sink));
  };
  state->admit(std::move(start));
}

// Whether pin/ls shows `cid` pinned as `type` ("recursive", "direct" or "all"); an indirect pin
// does not count. IPFS's "not pinned" error means no.
void find_pin(const std::shared_ptr<State>& state, const Cid& cid, std::string type,
              std::function<void(Result<bool>)> done, std::shared_ptr<HttpCancel> cancel = {}) {
  std::string text = cid.to_string();
  Call call = make_call("pin/ls", {{"arg", text}, {"type", std::move(type)}, {"stream", "true"}},
                        Budget::request, text);
  call.cancel = std::move(cancel);
  auto answer = std::make_shared<LineAnswer>();
  auto found = std::make_shared<bool>(false);
  auto bad = std::make_shared<std::string>();
  auto on_line = [cid, found, bad](std::string_view line) {
    auto more = read_pin_ls_line(line, [&](const Cid& listed, std::string_view listed_type) {
      if (same_content(listed, cid) && !listed_type.starts_with("indirect")) *found = true;
      return true;
    });
    if (!more) *bad = more.error().message;
    return more.ok();
  };
  Call sent = call;
  send(state, std::move(sent), line_sink(answer, on_line),
       [call, answer, found, bad, done = std::move(done)](Answer a) {
         if (!bad->empty()) return done(make_error(*bad));
         if (!a) return done(a.error());
         if (!is_success(a->status)) {
           std::string message = ipfs_message(a->status, answer->error_body);
           if (contains(message, "not pinned")) return done(false);
           return done(make_error(ipfs_error(call.command, message)));
         }
         if (std::string e = a->stream_error(); !e.empty()) {
           if (contains(e, "not pinned")) return done(false);
           return done(make_error(ipfs_error(call.command, e)));
         }
         done(*found);
       });
}

// What a pin/add answer has said so far.
struct PinAddProgress {
  std::uint64_t progress = 0;  // Progress (nodes fetched) + Bytes, as last grown
  Clock::time_point last_growth = Clock::now();
  bool stalled = false;
  bool saw_pins = false;
  std::vector<bool> answered;  // per asked CID: named in Pins
  std::string bad;
  std::string ipfs_message;  // IPFS's own error, when `bad` is one
};

// pin/add with progress of one or more CIDs (IPFS pins them one after another): Kubo streams
// {"Progress":N,"Bytes":B} lines (zero fields omitted: {} before the first block), then
// {"Pins":[...]}; js-ipfs answers {"Pins":[...]} alone. No byte for pin_timeout (the HTTP
// client's stall timer) or progress lines that have not grown for pin_timeout (checked on each
// line) cancel it. Success needs every asked CID in Pins.
void add_pins(const std::shared_ptr<State>& state, std::vector<Cid> cids, PinMode mode,
              std::function<void(Status)> done, std::shared_ptr<HttpCancel> cancel = {}) {
  QueryPairs query;
  query.reserve(cids.size() + 2);
  for (const Cid& cid : cids) query.emplace_back("arg", cid.to_string());
  std::string text = cids.size() == 1 ? query.front().second
                                      : fmt::format("{} CIDs ({} first)", cids.size(),
                                                    query.front().second);
  query.emplace_back("recursive", mode == PinMode::recursive ? "true" : "false");
  query.emplace_back("progress", "true");
  Call call = make_call("pin/add", std::move(query), Budget::pin, text);
  call.cancel = std::move(cancel);
  auto answer = std::make_shared<LineAnswer>();
  auto seen = std::make_shared<PinAddProgress>();
  seen->answered.assign(cids.size(), false);
  // Compared as CIDv1: IPFS may answer a CIDv0 for a dag-pb CIDv1 (and the other way round).
  auto wanted = std::make_shared<std::vector<Cid>>();
  wanted->reserve(cids.size());
  for (const Cid& cid : cids) wanted->push_back(cid.to_v1());
  milliseconds pin_timeout = state->options.pin_timeout;
  auto on_line = [wanted, seen, pin_timeout](std::string_view line) {
    rapidjson::Document doc;
    doc.Parse(line.data(), line.size());
    if (doc.HasParseError() || !doc.IsObject()) {
      seen->bad = fmt::format("IPFS pin/add answered a line that is not a JSON object: {}",
                              shorten(line, 120));
      return false;
    }
    if (std::string_view message = string_of(member(doc, "Message")); !message.empty()) {
      seen->bad = ipfs_error("pin/add", message);
      seen->ipfs_message = message;
      return false;
    }
    const auto* pins = member(doc, "Pins");
    if (pins == nullptr || !pins->IsArray()) {
      // A progress line, every 500 ms. Kubo omits zero fields, so while no block of the DAG has
      // arrived (content nobody provides) the line is {}: that is no growth as well.
      auto now = Clock::now();
      std::uint64_t progress = count_of(member(doc, "Progress")).value_or(0) +
                               count_of(member(doc, "Bytes")).value_or(0);
      if (progress > seen->progress) {
        seen->progress = progress;
        seen->last_growth = now;
      } else if (pin_timeout.count() > 0 && now - seen->last_growth >= pin_timeout) {
        seen->stalled = true;
        return false;
      }
    } else {
      seen->saw_pins = true;
      for (const auto& pin : pins->GetArray()) {
        auto pinned = cid_of("pin/add", &pin);
        if (!pinned) {
          seen->bad = pinned.error().message;
          return false;
        }
        Cid v1 = pinned->to_v1();
        for (std::size_t i = 0; i < wanted->size(); ++i) {
          if ((*wanted)[i] == v1) seen->answered[i] = true;
        }
      }
    }
    return true;
  };
  std::string maddr = state->options.node_multiaddress;
  Call sent = call;
  send(
      state, std::move(sent), line_sink(answer, on_line),
      [call, maddr, pin_timeout, text, mode, answer, seen, cids = std::move(cids),
       done = std::move(done)](Answer a) {
        // Kubo refuses a direct pin over a recursive one: the content is pinned either way.
        // The refusal comes as the status of the answer, or, once a progress line went out
        // (an answer slower than 500 ms), as an error line or the X-Stream-Error trailer.
        auto pinned_anyway = [&](std::string_view message) {
          return mode == PinMode::direct && cids.size() == 1 &&
                 contains(message, "already pinned recursively");
        };
        if (seen->stalled)
          return done(make_error(no_progress_message(call.subject, maddr, pin_timeout)));
        if (!seen->bad.empty())
          return pinned_anyway(seen->ipfs_message) ? done({}) : done(make_error(seen->bad));
        if (!a) return done(a.error());
        if (!is_success(a->status)) {
          std::string message = ipfs_message(a->status, answer->error_body);
          if (pinned_anyway(message)) return done({});
          return done(make_error(ipfs_error(call.command, message)));
        }
        if (std::string e = a->stream_error(); !e.empty()) {
          if (pinned_anyway(e)) return done({});
          return done(make_error(ipfs_error(call.command, e)));
        }
        if (!seen->saw_pins) {
          return done(
              make_error(fmt::format("IPFS pin/add of {} answered without a Pins list", text)));
        }
        for (std::size_t i = 0; i < cids.size(); ++i) {
          if (seen->answered[i]) continue;
          if (cids.size() == 1)
            return done(make_error(fmt::format("IPFS pin/add of {} answered Pins without it", text)));
          return done(make_error(fmt::format("IPFS pin/add of {} answered Pins without {}", text,
                                             cids[i].to_string())));
        }
        done({});
      });
}

void add_pin(const std::shared_ptr<State>& state, const Cid& cid, PinMode mode,
             std::function<void(Status)> done, std::shared_ptr<HttpCancel> cancel = {}) {
  add_pins(state, std::vector<Cid>{cid}, mode, std::move(done), std::move(cancel));
}

// Lists the pins of types[index], then of the following types.
void list_pins(const std::shared_ptr<State>& state, std::vector<std::string> types, size_t index,
               std::shared_ptr<PinVisitor> visit, ReadPace pace,
               std::function<void(Status)> done) {
  if (index == types.size()) return done({});
  Call call = make_call("pin/ls", {{"type", types[index]}, {"stream", "true"}}, Budget::stream);
  auto answer = std::make_shared<LineAnswer>();
  auto stopped = std::make_shared<bool>(false);
  auto bad = std::make_shared<std::string>();
  auto on_line = [visit, stopped, bad](std::string_view line) {
    auto more = read_pin_ls_line(line, *visit);
    if (!more) {
      *bad = more.error().message;
      return false;
    }
    if (!*more) *stopped = true;
    return *more;
  };
  std::weak_ptr<State> weak = state;
  Call sent = call;
  HttpBodySink sink = line_sink(answer, on_line);
  sink.pace = pace;
  send(state, std::move(sent), std::move(sink),
       [weak, call, types = std::move(types), index, visit, pace, answer, stopped, bad,
        done = std::move(done)](Answer a) mutable {
         if (*stopped) return done({});
         if (!bad->empty()) return done(make_error(*bad));
         if (!a) return done(a.error());
         if (auto e = answer_error(call, *a, answer->error_body)) return done(make_error(*e));
         auto self = weak.lock();
         if (!self) return;
         list_pins(self, std::move(types), index + 1, std::move(visit), std::move(pace),
                   std::move(done));
       });
}

// Parses a whole JSON body, or says what IPFS answered instead.
Result<rapidjson::Document> parse_body(std::string_view command, std::string_view body) {
  rapidjson::Document doc;
  doc.Parse(body.data(), body.size());
  if (doc.HasParseError() || !doc.IsObject()) {
    return make_error(fmt::format("IPFS {} answered something that is not a JSON object: {}",
                                  command, shorten(body, 120)));
  }
  return doc;
}

// Every short call answered in one body (id, repo/stat, swarm/connect, swarm/peers, resolve):
// sends it; a transport failure or an error answer (quoting IPFS) goes to `done` as is, and the
// body of a success goes through `read`, whose result goes to `done`.
template <typename T>
void call_whole(const std::shared_ptr<State>& state, Call call,
                std::function<Result<T>(std::string_view body)> read,
                std::function<void(Result<T>)> done) {
  Call sent = call;
  send(state, std::move(sent), {},
       [call = std::move(call), read = std::move(read), done = std::move(done)](Answer a) {
         if (!a) return done(a.error());
         if (auto e = answer_error(call, *a, a->body)) return done(make_error(*e));
         done(read(a->body));
       });
}

// call_whole for an answer that is one JSON object: `read` gets it parsed.
template <typename T>
void call_json(const std::shared_ptr<State>& state, Call call,
               std::function<Result<T>(const rapidjson::Document& doc, std::string_view body)> read,
               std::function<void(Result<T>)> done) {
  std::string command = call.command;
  call_whole<T>(
      state, std::move(call),
      [command, read = std::move(read)](std::string_view body) -> Result<T> {
        auto doc = parse_body(command, body);
        if (!doc) return doc.error();
        return read(*doc, body);
      },
      std::move(done));
}

// The CID that ends a resolved path "/ipfs/<cid>". js-ipfs writes a CIDv0 there with a
// base58btc multibase prefix ("zQm..."), which is read as the CIDv0 it stands for.
Result<Cid> resolved_cid(std::string_view path, std::string_view body) {
  std::string_view text = path;
  if (!text.starts_with("/ipfs/")) {
    return make_error(fmt::format("IPFS resolve answered a Path that does not start with /ipfs/: {}",
                                  shorten(body, 200)));
  }
  text.remove_prefix(6);
  if (text.find('/') != std::string_view::npos) {
    return make_error(fmt::format(
        "IPFS resolve answered {}, a path inside a block rather than a CID: pin a path that "
        "ends at a block",
        shorten(path, 200)));
  }
  auto cid = Cid::parse(text);
  if (!cid && text.size() == 47 && text.starts_with("zQm")) {
    if (auto v0 = Cid::parse(text.substr(1)); v0) return v0;
  }
  if (!cid) {
    return make_error(fmt::format("IPFS resolve answered \"{}\", which is not a CID: {}",
                                  shorten(text, 120), cid.error().message));
  }
  return cid;
}

}  // namespace

std::string IpfsPath::to_string() const {
  return fmt::format("/{}/{}{}", ns, root, rest);
}

Result<IpfsPath> parse_ipfs_path(std::string_view text) {
  constexpr const char* kAccepted = "accepted: /ipfs/<cid>[/path], /ipns/<name>[/path], /ipld/<cid>[/path]";
  std::vector<std::string_view> segments;
  for (std::string_view rest = text; !rest.empty();) {
    auto slash = rest.find('/');
    std::string_view segment = rest.substr(0, slash);
    if (!segment.empty()) segments.push_back(segment);
    rest = slash == std::string_view::npos ? std::string_view() : rest.substr(slash + 1);
  }
  if (!text.starts_with("/") || segments.empty() ||
      (segments[0] != "ipfs" && segments[0] != "ipns" && segments[0] != "ipld")) {
    return make_error(fmt::format("\"{}\" is not an IPFS path; {}", shorten(text, 200), kAccepted));
  }
  if (segments.size() < 2) {
    return make_error(fmt::format("\"{}\" is not an IPFS path: nothing after /{}/; {}",
                                  shorten(text, 200), segments[0], kAccepted));
  }
  IpfsPath path;
  path.ns = std::string(segments[0]);
  path.root = std::string(segments[1]);
  for (size_t i = 2; i < segments.size(); ++i) {
    path.rest += '/';
    path.rest += segments[i];
  }
  auto cid = Cid::parse(path.root);
  if (cid) {
    path.cid = std::move(cid).value();
  } else if (path.ns != "ipns") {
    return make_error(fmt::format("IPFS path \"{}\": {}", shorten(text, 200), cid.error().message));
  }
  return path;
}

IpfsConnector::IpfsConnector(asio::io_context& io, IpfsConnectorOptions options)
    : state_(std::make_shared<State>(io, std::move(options))) {}

IpfsConnector::~IpfsConnector() = default;

const std::string& IpfsConnector::node_multiaddress() const {
  return state_->options.node_multiaddress;
}

int IpfsConnector::consecutive_failures() const {
  return state_->consecutive_failures;
}

void IpfsConnector::id(std::function<void(Result<IpfsId>)> done) {
  call_json<IpfsId>(
      state_, make_call("id", {}, Budget::request),
      [](const rapidjson::Document& doc, std::string_view body) -> Result<IpfsId> {
        IpfsId id;
        id.id = std::string(string_of(member(doc, "ID")));
        if (id.id.empty()) {
          return make_error(
              fmt::format("IPFS id answered without an ID: {}", shorten(body, 120)));
        }
        if (const auto* addresses = member(doc, "Addresses"); addresses && addresses->IsArray()) {
          for (const auto& address : addresses->GetArray()) {
            if (address.IsString())
              id.addresses.emplace_back(address.GetString(), address.GetStringLength());
          }
        }
        return id;
      },
      std::move(done));
}

void IpfsConnector::pin_add(const Cid& cid, PinMode mode, std::function<void(Status)> done,
                            bool check_first, std::shared_ptr<HttpCancel> cancel) {
  if (!check_first && mode == PinMode::recursive) {
    return add_pin(state_, cid, mode, std::move(done), std::move(cancel));
  }
  std::weak_ptr<State> weak = state_;
  find_pin(state_, cid, std::string(pin_mode_name(mode)),
           [weak, cid, mode, cancel, done = std::move(done)](Result<bool> pinned) mutable {
             auto self = weak.lock();
             if (!self) return;
             if (!pinned) return done(pinned.error());
             if (*pinned) return done({});
             add_pin(self, cid, mode, std::move(done), std::move(cancel));
           }, cancel);
}

void IpfsConnector::pin_add_many(std::vector<Cid> cids, std::function<void(Status)> done,
                                 std::shared_ptr<HttpCancel> cancel) {
  assert(!cids.empty() && "pin/add needs at least one arg");
  add_pins(state_, std::move(cids), PinMode::recursive, std::move(done), std::move(cancel));
}

void IpfsConnector::pin_update(const Cid& from, const Cid& to, std::function<void(Status)> done,
                               std::shared_ptr<HttpCancel> cancel) {
  std::weak_ptr<State> weak = state_;
  find_pin(state_, to, "recursive",
           [weak, from, to, cancel, done = std::move(done)](Result<bool> pinned) mutable {
             auto self = weak.lock();
             if (!self) return;
             if (!pinned) return done(pinned.error());
             if (*pinned) return done({});
             std::string to_text = to.to_string();
             Call call = make_call(
                 "pin/update", {{"arg", from.to_string()}, {"arg", to_text}, {"unpin", "false"}},
                 Budget::pin, to_text);
             call.cancel = cancel;
             send(self, std::move(call), {}, [weak, to, cancel, done = std::move(done)](Answer a) mutable {
               if (a && is_success(a->status) && a->stream_error().empty()) return done({});
               if (cancel && cancel->cancelled()) return done(make_error(cancel->why()));
               // No pin/update (js-ipfs answers 404), IPFS refused it (`from` is not pinned
               // recursively), or it outlasted pin_timeout: Kubo's pin/update says nothing
               // until it is done, so a large new DAG looks stalled. Pin the new CID on its
               // own, with progress; the blocks the update fetched are there already.
               auto self = weak.lock();
               if (!self) return;
               add_pin(self, to, PinMode::recursive, std::move(done), std::move(cancel));
             });
           }, cancel);
}

void IpfsConnector::pin_rm(const Cid& cid, std::function<void(Status)> done) {
  if (state_->options.unpin_disable) {
    return asio::post(state_->io, [done = std::move(done)] {
      done(make_error("ipfs unpinning is disallowed by configuration on this peer "
                      "(ipfs_connector.ipfshttp.unpin_disable)"));
    });
  }
  std::string text = cid.to_string();
  Call call = make_call("pin/rm", {{"arg", text}}, Budget::unpin, text);
  Call sent = call;
  send(state_, std::move(sent), {}, [call, done = std::move(done)](Answer a) {
    if (!a) return done(a.error());
    if (!is_success(a->status)) {
      std::string message = ipfs_message(a->status, a->body);
      if (contains(message, "not pinned")) return done({});
      return done(make_error(ipfs_error(call.command, message)));
    }
    if (std::string e = a->stream_error(); !e.empty()) {
      return done(make_error(ipfs_error(call.command, e)));
    }
    done({});
  });
}

void IpfsConnector::pin_ls(std::string_view type, PinVisitor visit,
                           std::function<void(Status)> done, ReadPace pace) {
  std::vector<std::string> types;
  if (type == "all") {
    types = {"recursive", "direct"};
  } else if (type == "recursive" || type == "direct") {
    types = {std::string(type)};
  } else {
    std::string message =
        fmt::format("pin/ls type \"{}\" is not known; accepted: recursive, direct, all", type);
    asio::post(state_->io, [weak = std::weak_ptr<State>(state_), message, done = std::move(done)] {
      if (weak.lock()) done(make_error(message));
    });
    return;
  }
  list_pins(state_, std::move(types), 0, std::make_shared<PinVisitor>(std::move(visit)),
            std::move(pace), std::move(done));
}

void IpfsConnector::pin_ls_one(const Cid& cid, std::function<void(Result<bool>)> done) {
  find_pin(state_, cid, "all", std::move(done));
}

void IpfsConnector::repo_stat(std::function<void(Result<RepoStat>)> done) {
  call_json<RepoStat>(
      state_, make_call("repo/stat", {{"size-only", "true"}}, Budget::request),
      [](const rapidjson::Document& doc, std::string_view body) -> Result<RepoStat> {
        auto size = count_of(member(doc, "RepoSize"));
        auto max = count_of(member(doc, "StorageMax"));
        if (!size || !max) {
          return make_error(
              fmt::format("IPFS repo/stat answered without RepoSize and StorageMax as numbers: {}",
                          shorten(body, 200)));
        }
        return RepoStat{*size, *max};
      },
      std::move(done));
}

void IpfsConnector::swarm_connect(std::string_view multiaddr, std::function<void(Status)> done) {
  call_whole<bool>(
      state_, make_call("swarm/connect", {{"arg", std::string(multiaddr)}}, Budget::request),
      [](std::string_view) -> Result<bool> { return true; },
      [done = std::move(done)](Result<bool> connected) {
        if (!connected) return done(connected.error());
        done({});
      });
}

void IpfsConnector::swarm_peers(std::function<void(Result<std::vector<std::string>>)> done) {
  using Peers = std::vector<std::string>;
  call_json<Peers>(
      state_, make_call("swarm/peers", {}, Budget::request),
      [](const rapidjson::Document& doc, std::string_view body) -> Result<Peers> {
        Peers peers;
        const auto* list = member(doc, "Peers");
        if (list == nullptr || list->IsNull()) return peers;  // Kubo: {"Peers":null} when alone
        if (!list->IsArray()) {
          return make_error(fmt::format("IPFS swarm/peers answered Peers that is not a list: {}",
                                        shorten(body, 200)));
        }
        for (const auto& entry : list->GetArray()) {
          std::string_view id = string_of(member(entry, "Peer"));
          if (id.empty()) {
            return make_error(fmt::format("IPFS swarm/peers answered an entry without a Peer: {}",
                                          shorten(body, 200)));
          }
          // One entry per connection: a peer reached twice is listed once.
          if (std::find(peers.begin(), peers.end(), id) == peers.end()) peers.emplace_back(id);
        }
        return peers;
      },
      std::move(done));
}

void IpfsConnector::resolve(std::string_view text, std::function<void(Result<Cid>)> done) {
  auto path = parse_ipfs_path(text);
  if (!path || path->is_plain_cid()) {
    Result<Cid> known = path ? Result<Cid>(*path->cid) : Result<Cid>(path.error());
    asio::post(state_->io, [weak = std::weak_ptr<State>(state_), known = std::move(known),
                            done = std::move(done)]() mutable {
      if (weak.lock()) done(std::move(known));
    });
    return;
  }
  std::string full = path->to_string();
  call_json<Cid>(
      state_, make_call("resolve", {{"arg", full}}, Budget::request, full),
      [](const rapidjson::Document& doc, std::string_view body) -> Result<Cid> {
        const auto* value = member(doc, "Path");
        if (value == nullptr || !value->IsString()) {
          return make_error(
              fmt::format("IPFS resolve answered without a Path: {}", shorten(body, 200)));
        }
        return resolved_cid(string_of(value), body);
      },
      std::move(done));
}

void IpfsConnector::repo_gc(std::function<void(Result<std::vector<Cid>>)> done) {
  Call call = make_call("repo/gc", {{"stream-errors", "true"}}, Budget::repogc);
  struct Removed {
    std::vector<Cid> cids;
    std::string error;  // the first error line, quoted
    std::string bad;    // an answer that is not understood
  };
  auto answer = std::make_shared<LineAnswer>();
  auto removed = std::make_shared<Removed>();
  auto on_line = [removed](std::string_view line) {
    rapidjson::Document doc;
    doc.Parse(line.data(), line.size());
    if (doc.HasParseError() || !doc.IsObject()) {
      removed->bad = fmt::format("IPFS repo/gc answered a line that is not a JSON object: {}",
                                 shorten(line, 120));
      return false;
    }
    if (std::string_view error = string_of(member(doc, "Error")); !error.empty()) {
      if (removed->error.empty()) removed->error = ipfs_error("repo/gc", error);
      return true;
    }
    if (const auto* key = member(doc, "Key")) {
      auto cid = cid_of("repo/gc", key);
      if (!cid) {
        removed->bad = cid.error().message;
        return false;
      }
      removed->cids.push_back(std::move(cid).value());
    }
    return true;
  };
  Call sent = call;
  send(state_, std::move(sent), line_sink(answer, on_line),
       [call, answer, removed, done = std::move(done)](Answer a) {
         if (!removed->bad.empty()) return done(make_error(removed->bad));
         if (!a) return done(a.error());
         if (auto e = answer_error(call, *a, answer->error_body)) return done(make_error(*e));
         if (!removed->error.empty()) return done(make_error(removed->error));
         done(std::move(removed->cids));
       });
}

}  // namespace clusterpin::net
