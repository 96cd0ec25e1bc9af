// Go duration text, following the algorithm of Go's time package: integer and fraction parts are
// accumulated in unsigned 64-bit arithmetic with explicit overflow checks (a magnitude of 2^63 is
// allowed only for a negative value), and printing uses h/m/s for a second or more and ns/µs/ms
// with a trimmed fraction below a second.
#include "core/duration.hpp"

#include <array>
#include <cstdint>
#include <fmt/format.h>

namespace clusterpin {
namespace {

constexpr std::uint64_t kLimit = std::uint64_t{1} << 63;  // |min int64|

struct Unit {
  std::string_view name;
  std::uint64_t nanoseconds;
};

constexpr std::array<Unit, 8> kUnits{{
    {"ns", 1},
    {"us", 1'000},
    {"\u00b5s", 1'000},  // micro sign
    {"\u03bcs", 1'000},  // Greek small letter mu
    {"ms", 1'000'000},
    {"s", 1'000'000'000},
    {"m", 60'000'000'000},
    {"h", 3'600'000'000'000},
}};

bool is_digit(char c) { return c >= '0' && c <= '9'; }

Error invalid(std::string_view text, std::string_view why) {
  return make_error(fmt::format("bad duration \"{}\": {} (e.g. \"1s\", \"1m0s\", \"300ms\", \"-1.5h\"; "
                                "units: ns, us, µs, ms, s, m, h)",
                                text, why));
}

// Leading decimal integer; false on overflow past 2^63.
bool read_integer(std::string_view& s, std::uint64_t& value) {
  value = 0;
  std::size_t i = 0;
  for (; i < s.size() && is_digit(s[i]); ++i) {
    if (value > kLimit / 10) return false;
    value = value * 10 + static_cast<std::uint64_t>(s[i] - '0');
    if (value > kLimit) return false;
  }
  s.remove_prefix(i);
  return true;
}

// Leading fraction digits; digits beyond int64 precision are consumed and ignored, as in Go.
void read_fraction(std::string_view& s, std::uint64_t& value, double& scale) {
  value = 0;
  scale = 1;
  bool overflow = false;
  std::size_t i = 0;
  for (; i < s.size() && is_digit(s[i]); ++i) {
    if (overflow) continue;
    if (value > (kLimit - 1) / 10) {
      overflow = true;
      continue;
    }
    std::uint64_t next = value * 10 + static_cast<std::uint64_t>(s[i] - '0');
    if (next > kLimit) {
      overflow = true;
      continue;
    }
    value = next;
    scale *= 10;
  }
  s.remove_prefix(i);
}

const Unit* find_unit(std::string_view name) {
  for (const Unit& unit : kUnits) {
    if (unit.name == name) return &unit;
  }
  return nullptr;
}

// Writes the fraction digits of v (prec of them) before out's current start, dropping trailing
// zeros; returns v without those digits.
std::uint64_t prepend_fraction(std::string& out, std::uint64_t v, int prec) {
  bool print = false;
  for (int i = 0; i < prec; ++i) {
    char digit = static_cast<char>('0' + v % 10);
    print = print || digit != '0';
    if (print) out.insert(out.begin(), digit);
    v /= 10;
  }
  if (print) out.insert(out.begin(), '.');
  return v;
}

void prepend_integer(std::string& out, std::uint64_t v) { out.insert(0, std::to_string(v)); }

}  // namespace

Result<std::chrono::nanoseconds> parse_go_duration(std::string_view text) {
  std::string_view s = text;
  bool negative = false;
  if (!s.empty() && (s[0] == '-' || s[0] == '+')) {
    negative = s[0] == '-';
    s.remove_prefix(1);
  }
  if (s == "0") return std::chrono::nanoseconds(0);
  if (s.empty()) return invalid(text, "empty duration");
  std::uint64_t total = 0;
  while (!s.empty()) {
    if (!(s[0] == '.' || is_digit(s[0]))) return invalid(text, "expected a number");
    std::size_t before = s.size();
    std::uint64_t value = 0;
    if (!read_integer(s, value)) return invalid(text, "out of range (limit ±2562047h47m16.854775807s)");
    bool has_integer = before != s.size();
    std::uint64_t fraction = 0;
    double scale = 1;
    bool has_fraction = false;
    if (!s.empty() && s[0] == '.') {
      s.remove_prefix(1);
      std::size_t after_dot = s.size();
      read_fraction(s, fraction, scale);
      has_fraction = after_dot != s.size();
    }
    if (!has_integer && !has_fraction) return invalid(text, "a number needs digits");
    std::size_t unit_length = 0;
    while (unit_length < s.size() && s[unit_length] != '.' && !is_digit(s[unit_length])) ++unit_length;
    if (unit_length == 0) return invalid(text, "missing unit");
    std::string_view unit_name = s.substr(0, unit_length);
    s.remove_prefix(unit_length);
    const Unit* unit = find_unit(unit_name);
    if (unit == nullptr) return invalid(text, fmt::format("unknown unit \"{}\"", unit_name));
    if (value > kLimit / unit->nanoseconds) return invalid(text, "out of range (limit ±2562047h47m16.854775807s)");
    value *= unit->nanoseconds;
    if (fraction > 0) {
      // Go computes the fraction in float64 too; matching it keeps results identical.
      value += static_cast<std::uint64_t>(static_cast<double>(fraction) *
                                          (static_cast<double>(unit->nanoseconds) / scale));
      if (value > kLimit) return invalid(text, "out of range (limit ±2562047h47m16.854775807s)");
    }
    total += value;
    if (total > kLimit) return invalid(text, "out of range (limit ±2562047h47m16.854775807s)");
  }
  if (negative) return std::chrono::nanoseconds(static_cast<std::int64_t>(0 - total));
  if (total > kLimit - 1) return invalid(text, "out of range (limit ±2562047h47m16.854775807s)");
  return std::chrono::nanoseconds(static_cast<std::int64_t>(total));
}

std::string format_go_duration(std::chrono::nanoseconds duration) {
  std::int64_t count = duration.count();
  bool negative = count < 0;
  // Unsigned negation is well defined, including for the minimum int64.
  std::uint64_t u = negative ? 0 - static_cast<std::uint64_t>(count) : static_cast<std::uint64_t>(count);
  std::string out;
  if (u == 0) return "0s";
  if (u < 1'000'000'000) {
    int prec = 0;
    if (u < 1'000) {
      out = "ns";
    } else if (u < 1'000'000) {
      out = "\u00b5s";
      prec = 3;
    } else {
      out = "ms";
      prec = 6;
    }
    u = prepend_fraction(out, u, prec);
    prepend_integer(out, u);
  } else {
    out = "s";
    u = prepend_fraction(out, u, 9);
    prepend_integer(out, u % 60);
    u /= 60;
    if (u > 0) {
      out.insert(out.begin(), 'm');
      prepend_integer(out, u % 60);
      u /= 60;
      if (u > 0) {
        out.insert(out.begin(), 'h');
        prepend_integer(out, u);
      }
    }
  }
  if (negative) out.insert(out.begin(), '-');
  return out;
}

}  // namespace clusterpin
