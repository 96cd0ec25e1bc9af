// JSON text helpers (see json_text.hpp).
#include "core/json_text.hpp"

#include <algorithm>
#include <array>
#include <bit>
#include <cstdint>
#include <cstring>

namespace clusterpin {
namespace {

constexpr char kHex[] = "0123456789ABCDEF";

bool needs_escape(unsigned char c) { return c < 0x20 || c == '"' || c == '\\'; }

bool is_ws(char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r'; }

bool is_digit(char c) { return c >= '0' && c <= '9'; }

bool is_hex(char c) {
  return is_digit(c) || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
}

// Bytes that end the plain run of a JSON string: the closing quote, an escape, a control byte.
constexpr auto kStringStops = [] {
  std::array<bool, 256> stop{};
  for (int c = 0; c < 0x20; ++c) stop[c] = true;
  stop['"'] = stop['\\'] = true;
  return stop;
}();

// The first byte of s at or after i that ends a plain run of a JSON string (s.size() if none).
// Eight bytes at a time: in each word, a byte that is '"', '\\' or below 0x20 sets its high
// bit in `hit` (the classic has-zero-byte test; a false mark can only follow a true one, so the
// lowest mark is exact).
std::size_t plain_run_end(std::string_view s, std::size_t i) {
  if constexpr (std::endian::native == std::endian::little) {
    constexpr std::uint64_t kOnes = 0x0101010101010101ull;
    constexpr std::uint64_t kHighs = 0x8080808080808080ull;
    for (; i + 8 <= s.size(); i += 8) {
      std::uint64_t x;
      std::memcpy(&x, s.data() + i, 8);
      const std::uint64_t quote = x ^ (kOnes * '"');
      const std::uint64_t backslash = x ^ (kOnes * '\\');
      const std::uint64_t hit = (((quote - kOnes) & ~quote) | ((backslash - kOnes) & ~backslash) |
                                 ((x - kOnes * 0x20) & ~x)) &
                                kHighs;
      if (hit != 0) return i + static_cast<std::size_t>(std::countr_zero(hit) / 8);
    }
  }
  while (i < s.size() && !kStringStops[static_cast<unsigned char>(s[i])]) ++i;
  return i;
}

// A cursor over the input that writes what it accepts after what `out` held, through a pointer
// into `out` (grown when needed); run() trims `out` to what was written when it succeeds.
class Indenter {
 public:
  Indenter(std::string_view in, int width, std::string& out)
      : in_(in), width_(static_cast<std::size_t>(width)), out_(out) {
    const std::size_t at = out_.size();
    out_.resize(at + in.size() * 2 + 64);
    w_ = out_.data() + at;
  }


  bool run() {
    bool need_value = true;
    for (;;) {
      if (need_value) {
        skip_ws();
        const Step step = value();
        if (step == Step::bad) return false;
        if (step == Step::opened) continue;  // a non-empty container: its first value follows
        need_value = false;
      }
      if (stack_.empty()) break;
      skip_ws();
      if (at_end()) return false;
      const char c = in_[i_];
      const char open = stack_.back();
      if (c == ',') {
        ++i_;
        put(',');
        newline(stack_.size());
        skip_ws();
        if (open == '{' && !member_key()) return false;
        need_value = true;
      } else if ((open == '{' && c == '}') || (open == '[' && c == ']')) {
        ++i_;
        stack_.pop_back();
        newline(stack_.size());
        put(c);
      } else {
        return false;
      }
    }
    skip_ws();
    if (!at_end()) return false;
    out_.resize(static_cast<std::size_t>(w_ - out_.data()));
    return true;
  }

 private:
  enum class Step { bad, done, opened };

  bool at_end() const { return i_ >= in_.size(); }

  void skip_ws() {
    while (!at_end() && is_ws(in_[i_])) ++i_;
  }

  // Room for n more bytes at w_.
  void ensure(std::size_t n) {
    if (static_cast<std::size_t>(out_.data() + out_.size() - w_) >= n) return;
    const std::size_t used = static_cast<std::size_t>(w_ - out_.data());
    out_.resize(std::max(out_.size() * 2, used + n));
    w_ = out_.data() + used;
  }

  void put(char c) {
    ensure(1);
    *w_++ = c;
  }

  void put(std::string_view s) {
    ensure(s.size());
    std::memcpy(w_, s.data(), s.size());
    w_ += s.size();
  }

  void newline(std::size_t depth) {
    const std::size_t spaces = depth * width_;
    ensure(spaces + 1);
    *w_++ = '\n';
    std::memset(w_, ' ', spaces);
    w_ += spaces;
  }

  // One value. Of a non-empty container only the opening (and an object's first key) is
  // consumed, so nesting depth costs heap, not stack.
  Step value() {
    if (at_end()) return Step::bad;
    const char c = in_[i_];
    if (c == '{' || c == '[') {
      ++i_;
      skip_ws();
      const char close = c == '{' ? '}' : ']';
      put(c);
      if (!at_end() && in_[i_] == close) {
        ++i_;
        put(close);
        return Step::done;
      }
      stack_.push_back(c);
      newline(stack_.size());
      if (c == '{' && !member_key()) return Step::bad;
      return Step::opened;
    }
    bool ok = false;
    if (c == '"') {
      ok = string();
    } else if (c == '-' || is_digit(c)) {
      ok = number();
    } else {
      ok = literal("true") || literal("false") || literal("null");
    }
    return ok ? Step::done : Step::bad;
  }

  bool member_key() {
    if (at_end() || in_[i_] != '"' || !string()) return false;
    skip_ws();
    if (at_end() || in_[i_] != ':') return false;
    ++i_;
    put(": ");
    skip_ws();
    return true;
  }

  bool string() {
    const std::size_t start = i_++;
    while (!at_end()) {
      // Most of a listing is plain string bytes: skipped a word at a time.
      i_ = plain_run_end(in_, i_);
      if (at_end()) break;
      const unsigned char c = static_cast<unsigned char>(in_[i_]);
      if (c == '"') {
        ++i_;
        put(in_.substr(start, i_ - start));
        return true;
      }
      if (c < 0x20) return false;
      if (c == '\\') {
        if (++i_ >= in_.size()) return false;
        const char e = in_[i_];
        if (e == 'u') {
          if (i_ + 4 >= in_.size()) return false;
          for (int k = 1; k <= 4; ++k) {
            if (!is_hex(in_[i_ + k])) return false;
          }
          i_ += 4;
        } else if (!std::strchr("\"\\/bfnrt", e) || e == '\0') {
          return false;
        }
      }
      ++i_;
    }
    return false;
  }

  bool digits() {
    const std::size_t start = i_;
    while (!at_end() && is_digit(in_[i_])) ++i_;
    return i_ > start;
  }

  bool number() {
    const std::size_t start = i_;
    if (in_[i_] == '-') ++i_;
    if (at_end()) return false;
    if (in_[i_] == '0') {
      ++i_;
    } else if (!digits()) {
      return false;
    }
    if (!at_end() && in_[i_] == '.') {
      ++i_;
      if (!digits()) return false;
    }
    if (!at_end() && (in_[i_] == 'e' || in_[i_] == 'E')) {
      ++i_;
      if (!at_end() && (in_[i_] == '+' || in_[i_] == '-')) ++i_;
      if (!digits()) return false;
    }
    put(in_.substr(start, i_ - start));
    return true;
  }

  bool literal(std::string_view word) {
    if (in_.substr(i_, word.size()) != word) return false;
    i_ += word.size();
    put(word);
    return true;
  }

  std::string_view in_;
  std::size_t width_;
  std::size_t i_ = 0;
  std::string& out_;
  char* w_ = nullptr;  // where the next output byte goes
  std::string stack_;  // the open containers, '{' or '[' (up to 15 without an allocation)
};

}  // namespace

void append_json_string(std::string& out, std::string_view s) {
  const std::size_t at = out.size();
  out.resize(at + 6 * s.size() + 2);
  out.resize(static_cast<std::size_t>(write_json_string(out.data() + at, s) - out.data()));
}

char* write_json_string(char* p, std::string_view s) {
  *p++ = '"';
  std::size_t run = 0;  // start of the bytes not yet copied
  auto copy_run = [&](std::size_t end) {
    if (end == run) return;  // (an empty view may have no data pointer)
    std::memcpy(p, s.data() + run, end - run);
    p += end - run;
  };
  for (std::size_t i = 0; i < s.size(); ++i) {
    const unsigned char c = static_cast<unsigned char>(s[i]);
    if (!needs_escape(c)) continue;
    copy_run(i);
    run = i + 1;
    *p++ = '\\';
    switch (c) {
      case '"': *p++ = '"'; break;
      case '\\': *p++ = '\\'; break;
      case '\b': *p++ = 'b'; break;
      case '\f': *p++ = 'f'; break;
      case '\n': *p++ = 'n'; break;
      case '\r': *p++ = 'r'; break;
      case '\t': *p++ = 't'; break;
      default:
        *p++ = 'u';
        *p++ = '0';
        *p++ = '0';
        *p++ = kHex[c >> 4];
        *p++ = kHex[c & 0xF];
    }
  }
  copy_run(s.size());
  *p++ = '"';
  return p;
}

bool append_indented_json(std::string& out, std::string_view json, int width) {
  const std::size_t before = out.size();
  if (Indenter(json, width, out).run()) return true;
  out.resize(before);
  return false;
}

std::optional<std::string> indent_json(std::string_view json, int width) {
  std::string out;
  if (!append_indented_json(out, json, width)) return std::nullopt;
  return out;
}

}  // namespace clusterpin
