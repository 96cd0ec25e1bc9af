// RFC 3339 formatting and parsing with civil-date arithmetic (days from civil, Howard Hinnant's
// published algorithm), so no time zone database or libc locale is involved.
#include "core/time_format.hpp"

#include <algorithm>
#include <cstdio>

#include <fmt/core.h>

namespace clusterpin {
namespace {

constexpr std::int64_t kNanosPerSecond = 1'000'000'000;

std::int64_t days_from_civil(std::int64_t y, unsigned m, unsigned d) {
  y -= m <= 2;
  const std::int64_t era = (y >= 0 ? y : y - 399) / 400;
  const auto yoe = static_cast<unsigned>(y - era * 400);
  const unsigned doy = (153 * (m > 2 ? m - 3 : m + 9) + 2) / 5 + d - 1;
  const unsigned doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
  return era * 146097 + static_cast<std::int64_t>(doe) - 719468;
}

void civil_from_days(std::int64_t z, std::int64_t& y, unsigned& m, unsigned& d) {
  z += 719468;
  const std::int64_t era = (z >= 0 ? z : z - 146096) / 146097;
  const auto doe = static_cast<unsigned>(z - era * 146097);
  const unsigned yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
  y = static_cast<std::int64_t>(yoe) + era * 400;
  const unsigned doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
  const unsigned mp = (5 * doy + 2) / 153;
  d = doy - (153 * mp + 2) / 5 + 1;
  m = mp < 10 ? mp + 3 : mp - 9;
  y += m <= 2;
}

Error bad_time(std::string_view text) {
  return make_error(fmt::format(
      "\"{}\" is not an RFC 3339 time (e.g. \"2026-11-24T01:29:54Z\")", text));
}

bool digits(std::string_view s, std::size_t pos, std::size_t n, int& out) {
  if (pos + n > s.size()) return false;
  out = 0;
  for (std::size_t i = pos; i < pos + n; ++i) {
    if (s[i] < '0' || s[i] > '9') return false;
    out = out * 10 + (s[i] - '0');
  }
  return true;
}

}  // namespace

std::string format_rfc3339(UnixNanos t) {
  std::string out;
  append_rfc3339(out, t);
  return out;
}

void append_rfc3339(std::string& out, UnixNanos t) {
  char buf[kMaxRfc3339Length];
  out.append(buf, write_rfc3339(buf, t));
}

char* write_rfc3339(char* p, UnixNanos t) {
  if (t == kZeroTime) {
    constexpr std::string_view zero = "0001-01-01T00:00:00Z";
    return std::copy(zero.begin(), zero.end(), p);
  }
  std::int64_t secs = t / kNanosPerSecond;
  std::int64_t nanos = t % kNanosPerSecond;
  if (nanos < 0) {
    nanos += kNanosPerSecond;
    --secs;
  }
  std::int64_t days = secs / 86400;
  std::int64_t rem = secs % 86400;
  if (rem < 0) {
    rem += 86400;
    --days;
  }
  std::int64_t y;
  unsigned m, d;
  civil_from_days(days, y, m, d);
  // Written digit by digit: listings format two times per pin. 64-bit nanoseconds span the
  // years 1677 to 2262, so four year digits always suffice.
  auto put = [&](std::int64_t v, int width, char after) {
    for (int i = width - 1; i >= 0; --i, v /= 10) p[i] = static_cast<char>('0' + v % 10);
    p[width] = after;
    p += width + 1;
  };
  put(y, 4, '-');
  put(m, 2, '-');
  put(d, 2, 'T');
  put(rem / 3600, 2, ':');
  put((rem / 60) % 60, 2, ':');
  put(rem % 60, 2, '.');
  if (nanos == 0) {
    p[-1] = 'Z';  // no fraction: the '.' becomes the zone
    return p;
  }
  // Nine digits without the trailing zeros (".123" for 123 ms).
  put(nanos, 9, 'Z');
  char* end = p - 1;
  while (end[-1] == '0') --end;
  *end = 'Z';
  return end + 1;
}

Result<UnixNanos> parse_rfc3339(std::string_view s) {
  if (s == "0001-01-01T00:00:00Z") return kZeroTime;
  int y, mo, d, h, mi, se;
  if (!digits(s, 0, 4, y) || s.size() < 20 || s[4] != '-' || !digits(s, 5, 2, mo) ||
      s[7] != '-' || !digits(s, 8, 2, d) || (s[10] != 'T' && s[10] != 't') ||
      !digits(s, 11, 2, h) || s[13] != ':' || !digits(s, 14, 2, mi) || s[16] != ':' ||
      !digits(s, 17, 2, se)) {
    return bad_time(s);
  }
  if (mo < 1 || mo > 12 || d < 1 || d > 31 || h > 23 || mi > 59 || se > 60) return bad_time(s);
  std::size_t pos = 19;
  std::int64_t nanos = 0;
  if (pos < s.size() && s[pos] == '.') {
    ++pos;
    int count = 0;
    while (pos < s.size() && s[pos] >= '0' && s[pos] <= '9') {
      if (count < 9) nanos = nanos * 10 + (s[pos] - '0');
      ++count;
      ++pos;
    }
    if (count == 0) return bad_time(s);
    for (int i = count; i < 9; ++i) nanos *= 10;
  }
  std::int64_t offset = 0;
  if (pos < s.size() && (s[pos] == 'Z' || s[pos] == 'z')) {
    ++pos;
  } else if (pos < s.size() && (s[pos] == '+' || s[pos] == '-')) {
    int oh, om;
    if (!digits(s, pos + 1, 2, oh) || pos + 3 >= s.size() || s[pos + 3] != ':' ||
        !digits(s, pos + 4, 2, om)) {
      return bad_time(s);
    }
    offset = (oh * 3600 + om * 60) * (s[pos] == '+' ? 1 : -1);
    pos += 6;
  } else {
    return bad_time(s);
  }
  if (pos != s.size()) return bad_time(s);
  std::int64_t secs = days_from_civil(y, static_cast<unsigned>(mo), static_cast<unsigned>(d)) * 86400 +
                      h * 3600 + mi * 60 + se - offset;
  return secs * kNanosPerSecond + nanos;
}

}  // namespace clusterpin
