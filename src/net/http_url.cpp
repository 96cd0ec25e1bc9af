// Percent-decoding, query parsing and target building for HTTP request targets.
// Decoding is strict: a '%' not followed by two hex digits makes the whole target invalid (400).
#include "net/http_url.hpp"

namespace clusterpin::net {

namespace {
int hex_value(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

bool is_unreserved(char c) {
  return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' ||
         c == '.' || c == '_' || c == '~';
}
}  // namespace

std::optional<std::string> percent_decode(std::string_view text, bool plus_is_space) {
  std::string out;
  out.reserve(text.size());
  for (size_t i = 0; i < text.size(); ++i) {
    char c = text[i];
    if (c == '%') {
      if (i + 2 >= text.size()) return std::nullopt;  // needs two hex digits after '%'
      int hi = hex_value(text[i + 1]);
      int lo = hex_value(text[i + 2]);
      if (hi < 0 || lo < 0) return std::nullopt;
      out += static_cast<char>(hi * 16 + lo);
      i += 2;
    } else if (c == '+' && plus_is_space) {
      out += ' ';
    } else {
      out += c;
    }
  }
  return out;
}

std::optional<QueryPairs> parse_query(std::string_view raw_query) {
  QueryPairs pairs;
  while (!raw_query.empty()) {
    size_t amp = raw_query.find('&');
    std::string_view item = raw_query.substr(0, amp);
    raw_query = amp == std::string_view::npos ? std::string_view() : raw_query.substr(amp + 1);
    if (item.empty()) continue;  // "a=1&&b=2" is tolerated, as Go's url.ParseQuery does
    size_t eq = item.find('=');
    auto key = percent_decode(item.substr(0, eq), true);
    auto value = percent_decode(
        eq == std::string_view::npos ? std::string_view() : item.substr(eq + 1), true);
    if (!key || !value) return std::nullopt;
    pairs.emplace_back(std::move(*key), std::move(*value));
  }
  return pairs;
}

std::string percent_encode(std::string_view text, bool keep_slash) {
  static constexpr char kHex[] = "0123456789ABCDEF";
  std::string out;
  out.reserve(text.size());
  for (char c : text) {
    if (is_unreserved(c) || (keep_slash && c == '/')) {
      out += c;
    } else {
      auto u = static_cast<unsigned char>(c);
      out += '%';
      out += kHex[u >> 4];
      out += kHex[u & 0xF];
    }
  }
  return out;
}

std::string make_target(std::string_view path, const QueryPairs& query) {
  std::string out(path);
  char sep = '?';
  for (const auto& [k, v] : query) {
    out += sep;
    out += percent_encode(k);
    out += '=';
    out += percent_encode(v);
    sep = '&';
  }
  return out;
}

std::optional<std::vector<std::string>> path_segments(std::string_view raw_path) {
  std::vector<std::string> segments;
  while (!raw_path.empty()) {
    size_t slash = raw_path.find('/');
    std::string_view raw = raw_path.substr(0, slash);
    raw_path = slash == std::string_view::npos ? std::string_view() : raw_path.substr(slash + 1);
    if (raw.empty()) continue;
    auto segment = percent_decode(raw, false);
    if (!segment) return std::nullopt;
    segments.push_back(std::move(*segment));
  }
  return segments;
}

std::optional<ParsedTarget> parse_target(std::string_view target) {
  ParsedTarget parsed;
  if (target == "*") {
    parsed.path = parsed.raw_path = "*";
    return parsed;
  }
  if (target.substr(0, 7) == "http://" || target.substr(0, 8) == "https://") {
    size_t scheme_end = target.find("://") + 3;
    size_t slash = target.find_first_of("/?", scheme_end);
    target = slash == std::string_view::npos ? std::string_view("/") : target.substr(slash);
    if (!target.empty() && target.front() == '?') {
      parsed.path = parsed.raw_path = "/";
      parsed.raw_query = std::string(target.substr(1));
      auto q = parse_query(parsed.raw_query);
      if (!q) return std::nullopt;
      parsed.query = std::move(*q);
      return parsed;
    }
  }
  if (target.empty() || target.front() != '/') return std::nullopt;
  size_t qmark = target.find('?');
  parsed.raw_path = std::string(target.substr(0, qmark));
  auto path = percent_decode(parsed.raw_path, false);
  if (!path) return std::nullopt;
  parsed.path = std::move(*path);
  if (qmark != std::string_view::npos) {
    parsed.raw_query = std::string(target.substr(qmark + 1));
    size_t hash = parsed.raw_query.find('#');
    if (hash != std::string::npos) parsed.raw_query.resize(hash);
    auto q = parse_query(parsed.raw_query);
    if (!q) return std::nullopt;
    parsed.query = std::move(*q);
  }
  return parsed;
}

}  // namespace clusterpin::net
