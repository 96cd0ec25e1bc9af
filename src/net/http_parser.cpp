// Incremental HTTP/1.1 parser: a small state machine over lines (start line, header fields,
// chunk sizes, trailers) and counted byte runs (Content-Length bodies and chunk data).
// Lines are collected in line_ across calls so that fragmentation never matters; body bytes are
// handed out as views into the caller's input, so bodies are never copied by the parser.
#include "net/http_parser.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <cassert>

namespace clusterpin::net {

namespace {
constexpr size_t kMaxChunkLine = 1024;  // chunk size plus extensions; nothing legitimate is longer

bool is_token_char(char c) {
  if ((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9')) return true;
  switch (c) {
    case '!':
    case '#':
    case '$':
    case '%':
    case '&':
    case '\'':
    case '*':
    case '+':
    case '-':
    case '.':
    case '^':
    case '_':
    case '`':
    case '|':
    case '~':
      return true;
    default:
      return false;
  }
}

bool is_token(std::string_view s) {
  return !s.empty() && std::all_of(s.begin(), s.end(), is_token_char);
}

std::string_view trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return s;
}

// "HTTP/1.x" -> x; -2 when it looks like HTTP of another major version; -1 when not HTTP at all.
int parse_version(std::string_view v) {
  if (v.size() != 8 || v.substr(0, 5) != "HTTP/" || v[6] != '.') return -1;
  if (v[5] < '0' || v[5] > '9' || v[7] < '0' || v[7] > '9') return -1;
  if (v[5] != '1') return -2;
  return v[7] - '0';
}

bool parse_decimal(std::string_view s, uint64_t& out) {
  // 18 digits cannot overflow 64 bits, and nothing real is that large.
  if (s.empty() || s.size() > 18) return false;
  uint64_t v = 0;
  for (char c : s) {
    if (c < '0' || c > '9') return false;
    v = v * 10 + static_cast<uint64_t>(c - '0');
  }
  out = v;
  return true;
}

// Splits a comma-separated field value into trimmed, non-empty items.
std::vector<std::string_view> split_list(const std::vector<std::string_view>& values) {
  std::vector<std::string_view> items;
  for (std::string_view v : values) {
    while (true) {
      size_t comma = v.find(',');
      std::string_view item = trim(v.substr(0, comma));
      if (!item.empty()) items.push_back(item);
      if (comma == std::string_view::npos) break;
      v.remove_prefix(comma + 1);
    }
  }
  return items;
}
}  // namespace

int status_for(HttpParseError error) {
  switch (error) {
    case HttpParseError::bad_version:
      return 505;
    case HttpParseError::start_line_too_large:
      return 414;
    case HttpParseError::header_too_large:
      return 431;
    case HttpParseError::unsupported_encoding:
      return 501;
    case HttpParseError::body_too_large:
      return 413;
    default:
      return 400;
  }
}

std::string_view describe(HttpParseError error) {
  switch (error) {
    case HttpParseError::none:
      return "no error";
    case HttpParseError::bad_start_line:
      return "malformed request line";
    case HttpParseError::bad_version:
      return "unsupported HTTP version (HTTP/1.0 and HTTP/1.1 are accepted)";
    case HttpParseError::bad_target:
      return "malformed request target (expected /path?query with valid %XX escapes)";
    case HttpParseError::start_line_too_large:
      return "request line too long";
    case HttpParseError::bad_header:
      return "malformed header field";
    case HttpParseError::header_too_large:
      return "request header fields too large";
    case HttpParseError::bad_framing:
      return "invalid or conflicting Content-Length / Transfer-Encoding";
    case HttpParseError::unsupported_encoding:
      return "unsupported transfer coding (only chunked is accepted)";
    case HttpParseError::bad_chunk:
      return "malformed chunked body";
    case HttpParseError::body_too_large:
      return "request body too large";
    case HttpParseError::truncated:
      return "connection closed in the middle of a message";
  }
  return "unknown error";
}

HttpParser::HttpParser(Mode mode, HttpLimits limits) : mode_(mode), limits_(limits) {}

std::string HttpParser::error_message() const {
  switch (error_) {
    case HttpParseError::start_line_too_large:
      return fmt::format("request line too long (at most {} bytes)", limits_.max_start_line_bytes);
    case HttpParseError::header_too_large:
      return fmt::format("request header fields too large (at most {} bytes and {} fields)",
                         limits_.max_header_bytes, limits_.max_header_count);
    case HttpParseError::body_too_large:
      return fmt::format("request body too large (at most {} bytes)", limits_.max_body_bytes);
    case HttpParseError::bad_header: {
      // The line as far as it is safe to show: up to 64 printable bytes.
      std::string shown;
      for (char c : std::string_view(line_).substr(0, 64))
        shown += (c >= 0x20 && c < 0x7f) ? c : '?';
      return fmt::format("malformed header field \"{}\" (expected Name: value, a token before "
                         "the colon, no line folding)",
                         shown);
    }
    default:
      return std::string(describe(error_));
  }
}

HttpParser::Step HttpParser::fail(size_t consumed, HttpParseError e) {
  assert(e != HttpParseError::none);
  error_ = e;
  state_ = State::error;
  keep_alive_ = false;
  return {consumed, Event::error};
}

void HttpParser::begin_message() {
  request_ = HttpRequest{};
  response_ = HttpResponseHead{};
  trailers_ = HttpHeaders{};
  line_.clear();
  head_bytes_ = 0;
  remaining_ = 0;
  body_bytes_ = 0;
  keep_alive_ = true;
}

bool HttpParser::take_line(std::string_view input, size_t& pos, size_t limit, bool& too_long) {
  size_t nl = input.find('\n', pos);
  size_t end = nl == std::string_view::npos ? input.size() : nl;
  line_.append(input.data() + pos, end - pos);
  pos = nl == std::string_view::npos ? input.size() : nl + 1;
  // The limit is checked on partial lines too, so an endless line fails early.
  // A trailing '\r' is the first half of a line end, not content (it may arrive alone).
  size_t length = line_.size() - ((!line_.empty() && line_.back() == '\r') ? 1 : 0);
  if (length > limit) {
    too_long = true;
    return false;
  }
  if (nl == std::string_view::npos) return false;
  if (!line_.empty() && line_.back() == '\r') line_.pop_back();
  return true;
}

bool HttpParser::parse_start_line() {
  std::string_view line = line_;
  size_t sp1 = line.find(' ');
  if (sp1 == std::string_view::npos) {
    error_ = HttpParseError::bad_start_line;
    return false;
  }
  if (mode_ == Mode::request) {
    size_t sp2 = line.find(' ', sp1 + 1);
    if (sp2 == std::string_view::npos || line.find(' ', sp2 + 1) != std::string_view::npos) {
      error_ = HttpParseError::bad_start_line;
      return false;
    }
    std::string_view method = line.substr(0, sp1);
    std::string_view target = line.substr(sp1 + 1, sp2 - sp1 - 1);
    std::string_view version = line.substr(sp2 + 1);
    if (!is_token(method) || target.empty()) {
      error_ = HttpParseError::bad_start_line;
      return false;
    }
    int minor = parse_version(version);
    if (minor < 0) {
      error_ = minor == -2 ? HttpParseError::bad_version : HttpParseError::bad_start_line;
      return false;
    }
    for (char c : target) {
      if (static_cast<unsigned char>(c) <= 0x20 || c == 0x7f) {
        error_ = HttpParseError::bad_target;
        return false;
      }
    }
    auto parsed = parse_target(target);
    if (!parsed) {
      error_ = HttpParseError::bad_target;
      return false;
    }
    request_.method = std::string(method);
    request_.target = std::string(target);
    request_.path = std::move(parsed->path);
    request_.raw_path = std::move(parsed->raw_path);
    request_.raw_query = std::move(parsed->raw_query);
    request_.query = std::move(parsed->query);
    request_.version_minor = minor;
    return true;
  }
  int minor = parse_version(line.substr(0, sp1));
  std::string_view rest = line.substr(sp1 + 1);
  if (minor < 0 || rest.size() < 3 || (rest.size() > 3 && rest[3] != ' ')) {
    error_ = HttpParseError::bad_start_line;
    return false;
  }
  int status = 0;
  for (size_t i = 0; i < 3; ++i) {
    if (rest[i] < '0' || rest[i] > '9') {
      error_ = HttpParseError::bad_start_line;
      return false;
    }
    status = status * 10 + (rest[i] - '0');
  }
  if (status < 100) {
    error_ = HttpParseError::bad_start_line;
    return false;
  }
  response_.status = status;
  response_.version_minor = minor;
  response_.reason = rest.size() > 4 ? std::string(rest.substr(4)) : std::string();
  return true;
}

bool HttpParser::parse_header_line(HttpHeaders& into) {
  std::string_view line = line_;
  // Obsolete line folding (a line starting with whitespace) is refused, as RFC 9112 allows.
  size_t colon = line.find(':');
  if (colon == std::string_view::npos || !is_token(line.substr(0, colon))) {
    error_ = HttpParseError::bad_header;
    return false;
  }
  std::string_view value = trim(line.substr(colon + 1));
  for (char c : value) {
    if (c == '\0' || c == '\r') {
      error_ = HttpParseError::bad_header;
      return false;
    }
  }
  into.add(std::string(line.substr(0, colon)), std::string(value));
  return true;
}

HttpParseError HttpParser::finish_head() {
  const HttpHeaders& headers = mode_ == Mode::request ? request_.headers : response_.headers;
  int minor = mode_ == Mode::request ? request_.version_minor : response_.version_minor;
  keep_alive_ = minor >= 1 ? !headers.has_token("Connection", "close")
                           : headers.has_token("Connection", "keep-alive");
  if (mode_ == Mode::request) request_.keep_alive = keep_alive_;
  return set_framing();
}

HttpParseError HttpParser::set_framing() {
  const HttpHeaders& headers = mode_ == Mode::request ? request_.headers : response_.headers;
  if (mode_ == Mode::response) {
    int status = response_.status;
    if (head_request_ || (status >= 100 && status < 200) || status == 204 || status == 304) {
      if (status == 101) keep_alive_ = false;  // the connection now speaks another protocol
      state_ = State::complete;
      return HttpParseError::none;
    }
  }
  auto te = split_list(headers.get_all("Transfer-Encoding"));
  auto cl_values = headers.get_all("Content-Length");
  // A Transfer-Encoding that names no coding ("", ",") would leave Content-Length to frame
  // the body where a proxy in front may read it as chunked: refused, as both at once are.
  if (te.empty() && headers.has("Transfer-Encoding")) return HttpParseError::bad_framing;
  if (!te.empty()) {
    // Both framings at once is the classic request-smuggling shape: refuse it.
    if (!cl_values.empty()) return HttpParseError::bad_framing;
    if (te.size() == 1 && equals_ignore_case(te[0], "chunked")) {
      state_ = State::chunk_size;
      return HttpParseError::none;
    }
    if (mode_ == Mode::request || equals_ignore_case(te.back(), "chunked")) {
      return HttpParseError::unsupported_encoding;
    }
    state_ = State::until_close;
    keep_alive_ = false;
    return HttpParseError::none;
  }
  if (!cl_values.empty()) {
    auto items = split_list(cl_values);
    uint64_t length = 0;
    if (items.empty() || !parse_decimal(items[0], length)) return HttpParseError::bad_framing;
    for (std::string_view item : items) {
      if (item != items[0]) return HttpParseError::bad_framing;
    }
    if (limits_.max_body_bytes != 0 && length > limits_.max_body_bytes) {
      return HttpParseError::body_too_large;
    }
    remaining_ = length;
    state_ = length == 0 ? State::complete : State::fixed_body;
    return HttpParseError::none;
  }
  if (mode_ == Mode::request) {
    state_ = State::complete;  // a request without framing headers has no body
  } else {
    state_ = State::until_close;
    keep_alive_ = false;
  }
  return HttpParseError::none;
}

HttpParser::Step HttpParser::next(std::string_view input) {
  piece_ = {};
  size_t pos = 0;
  for (;;) {
    switch (state_) {
      case State::error:
        return {0, Event::error};
      case State::complete:
        state_ = State::start;
        return {pos, Event::done};
      case State::start:
        if (pos == input.size()) return {pos, Event::need_more};
        // RFC 9112 2.2: empty lines before a request line are ignored (robustness).
        if (input[pos] == '\r' || input[pos] == '\n') {
          ++pos;
          continue;
        }
        begin_message();
        state_ = State::start_line;
        continue;
      case State::start_line: {
        bool too_long = false;
        if (!take_line(input, pos, limits_.max_start_line_bytes, too_long)) {
          if (too_long) {
            return fail(pos, mode_ == Mode::request ? HttpParseError::start_line_too_large
                                                    : HttpParseError::bad_start_line);
          }
          // Fail fast on bytes that cannot start a request (a TLS handshake, binary noise)
          // instead of waiting for a line end that may never come.
          if (mode_ == Mode::request) {
            std::string_view method = std::string_view(line_).substr(0, line_.find(' '));
            for (char c : method) {
              if (!is_token_char(c) && c != '\r') return fail(pos, HttpParseError::bad_start_line);
            }
          }
          return {pos, Event::need_more};
        }
        if (!parse_start_line()) return fail(pos, error_);
        line_.clear();
        state_ = State::headers;
        continue;
      }
      case State::headers: {
        assert(head_bytes_ <= limits_.max_header_bytes);  // checked when each line is counted
        bool too_long = false;
        if (!take_line(input, pos, limits_.max_header_bytes - head_bytes_, too_long)) {
          if (too_long) return fail(pos, HttpParseError::header_too_large);
          return {pos, Event::need_more};
        }
        if (line_.empty()) {
          HttpParseError e = finish_head();
          if (e != HttpParseError::none) return fail(pos, e);
          if (mode_ == Mode::response && response_.status / 100 == 1 && response_.status != 101) {
            state_ = State::start;  // interim response (100 Continue): the real one follows
            continue;
          }
          return {pos, Event::head};
        }
        head_bytes_ += line_.size() + 2;
        HttpHeaders& into = mode_ == Mode::request ? request_.headers : response_.headers;
        if (head_bytes_ > limits_.max_header_bytes || into.size() >= limits_.max_header_count) {
          return fail(pos, HttpParseError::header_too_large);
        }
        if (!parse_header_line(into)) return fail(pos, error_);
        line_.clear();
        continue;
      }
      case State::fixed_body:
      case State::chunk_data: {
        if (pos == input.size()) return {pos, Event::need_more};
        size_t n = static_cast<size_t>(std::min<uint64_t>(remaining_, input.size() - pos));
        piece_ = input.substr(pos, n);
        remaining_ -= n;
        body_bytes_ += n;
        if (remaining_ == 0) {
          state_ = state_ == State::fixed_body ? State::complete : State::chunk_data_end;
        }
        return {pos + n, Event::body};
      }
      case State::chunk_size: {
        bool too_long = false;
        if (!take_line(input, pos, kMaxChunkLine, too_long)) {
          if (too_long) return fail(pos, HttpParseError::bad_chunk);
          return {pos, Event::need_more};
        }
        std::string_view size_text = trim(std::string_view(line_).substr(0, line_.find(';')));
        if (size_text.empty() || size_text.size() > 15) return fail(pos, HttpParseError::bad_chunk);
        uint64_t size = 0;
        for (char c : size_text) {
          int d = (c >= '0' && c <= '9')   ? c - '0'
                  : (c >= 'a' && c <= 'f') ? c - 'a' + 10
                  : (c >= 'A' && c <= 'F') ? c - 'A' + 10
                                           : -1;
          if (d < 0) return fail(pos, HttpParseError::bad_chunk);
          size = size * 16 + static_cast<uint64_t>(d);
        }
        line_.clear();
        if (size == 0) {
          head_bytes_ = 0;
          state_ = State::trailers;
          continue;
        }
        if (limits_.max_body_bytes != 0 && body_bytes_ + size > limits_.max_body_bytes) {
          return fail(pos, HttpParseError::body_too_large);
        }
        remaining_ = size;
        state_ = State::chunk_data;
        continue;
      }
      case State::chunk_data_end: {
        bool too_long = false;
        if (!take_line(input, pos, 0, too_long)) {
          if (too_long) return fail(pos, HttpParseError::bad_chunk);
          return {pos, Event::need_more};
        }
        line_.clear();
        state_ = State::chunk_size;
        continue;
      }
      case State::trailers: {
        assert(head_bytes_ <= limits_.max_trailer_bytes);  // checked when each line is counted
        bool too_long = false;
        if (!take_line(input, pos, limits_.max_trailer_bytes - head_bytes_, too_long)) {
          if (too_long) return fail(pos, HttpParseError::header_too_large);
          return {pos, Event::need_more};
        }
        if (line_.empty()) {
          state_ = State::complete;
          continue;
        }
        head_bytes_ += line_.size() + 2;
        if (head_bytes_ > limits_.max_trailer_bytes ||
            trailers_.size() >= limits_.max_header_count) {
          return fail(pos, HttpParseError::header_too_large);
        }
        if (!parse_header_line(trailers_)) return fail(pos, error_);
        line_.clear();
        continue;
      }
      case State::until_close:
        if (pos == input.size()) return {pos, Event::need_more};
        piece_ = input.substr(pos);
        body_bytes_ += piece_.size();
        return {input.size(), Event::body};
    }
  }
}

HttpParser::Step HttpParser::finish_eof() {
  piece_ = {};
  switch (state_) {
    case State::start:
      return {0, Event::need_more};
    case State::error:
      return {0, Event::error};
    case State::until_close:
    case State::complete:
      state_ = State::start;
      keep_alive_ = false;
      return {0, Event::done};
    default:
      return fail(0, HttpParseError::truncated);
  }
}

}  // namespace clusterpin::net
