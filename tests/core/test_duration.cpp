// Go durations: the parse and print tables of Go's time package tests (ParseDuration and
// Duration.String), the examples service.json uses, and the inputs Go refuses.
#include <doctest/doctest.h>

#include <chrono>
#include <cstdint>
#include <limits>
#include <string>

#include "core/duration.hpp"

using namespace clusterpin;
using namespace std::chrono_literals;
using std::chrono::nanoseconds;

namespace {
constexpr std::int64_t kMax = std::numeric_limits<std::int64_t>::max();
constexpr std::int64_t kMin = std::numeric_limits<std::int64_t>::min();
}  // namespace

TEST_CASE("parse_go_duration accepts what Go's time.ParseDuration accepts with the same values") {
  const std::pair<const char*, nanoseconds> cases[] = {
      {"0", 0ns},
      {"5s", 5s},
      {"30s", 30s},
      {"1478s", 1478s},
      {"-5s", -5s},
      {"+5s", 5s},
      {"-0", 0ns},
      {"+0", 0ns},
      {"5.0s", 5s},
      {"5.6s", 5s + 600ms},
      {"5.s", 5s},
      {".5s", 500ms},
      {"1.0s", 1s},
      {"1.00s", 1s},
      {"1.004s", 1s + 4ms},
      {"1.0040s", 1s + 4ms},
      {"100.00100s", 100s + 1ms},
      {"10ns", 10ns},
      {"11us", 11us},
      {"12\u00b5s", 12us},
      {"12\u03bcs", 12us},
      {"13ms", 13ms},
      {"14s", 14s},
      {"15m", 15min},
      {"16h", 16h},
      {"3h30m", 3h + 30min},
      {"10.5s4m", 4min + 10s + 500ms},
      {"-2m3.4s", -(2min + 3s + 400ms)},
      {"1h2m3s4ms5us6ns", 1h + 2min + 3s + 4ms + 5us + 6ns},
      {"39h9m14.425s", 39h + 9min + 14s + 425ms},
      {"52763797000ns", 52763797000ns},
      {"0.3333333333333333333h", 20min},
      {"9007199254740993ns", nanoseconds((std::int64_t{1} << 53) + 1)},
      {"9223372036854775807ns", nanoseconds(kMax)},
      {"9223372036854775.807us", nanoseconds(kMax)},
      {"9223372036s854ms775us807ns", nanoseconds(kMax)},
      {"-9223372036854775808ns", nanoseconds(kMin)},
      {"-9223372036854775.808us", nanoseconds(kMin)},
      {"-9223372036s854ms775us808ns", nanoseconds(kMin)},
      {"-2562047h47m16.854775808s", nanoseconds(kMin)},
      {"0.100000000000000000000h", 6min},
      {"0.830103483285477580700h", 49min + 48s + 372539827ns},
      {"300ms", 300ms},
      {"-1.5h", -90min},
      {"2h45m", 2h + 45min},
      {"1m0s", 1min},
  };
  for (auto [text, expected] : cases) {
    CAPTURE(std::string(text));
    Result<nanoseconds> parsed = parse_go_duration(text);
    REQUIRE_MESSAGE(parsed.ok(), (parsed.ok() ? std::string() : parsed.error().message));
    CHECK(parsed->count() == expected.count());
  }
}

TEST_CASE("parse_go_duration refuses what Go refuses and says why") {
  for (const char* text : {"", "3", "-", "s", ".", "-.", ".s", "+.s", "1d", "\x85\x85", "\xff" "ff",
                           "hello \xff" "ff world", "1s2", "1 s", "1.5.s", "5S", "-+5s"}) {
    CAPTURE(std::string(text));
    Result<nanoseconds> parsed = parse_go_duration(text);
    REQUIRE_FALSE(parsed.ok());
    CHECK(parsed.error().message.starts_with("bad duration \""));
  }
  CHECK(parse_go_duration("5").error().message.find("missing unit") != std::string::npos);
  CHECK(parse_go_duration("5d").error().message.find("unknown unit \"d\"") != std::string::npos);
}

TEST_CASE("parse_go_duration refuses values beyond int64 nanoseconds") {
  for (const char* text : {"9223372036854775808ns", "9223372036854775.808us", "9223372036854ms775us808ns",
                           "-9223372036854775809ns", "9223372036s854ms775us808ns", "2562048h", "99999999999999999999h", "3000000h"}) {
    CAPTURE(std::string(text));
    Result<nanoseconds> parsed = parse_go_duration(text);
    REQUIRE_FALSE(parsed.ok());
    CHECK(parsed.error().message.find("out of range") != std::string::npos);
  }
}

TEST_CASE("format_go_duration prints what Go's Duration.String prints") {
  const std::pair<nanoseconds, const char*> cases[] = {
      {0ns, "0s"},
      {1ns, "1ns"},
      {1100ns, "1.1\u00b5s"},
      {2200us, "2.2ms"},
      {3300ms, "3.3s"},
      {4min + 5s, "4m5s"},
      {4min + 5001ms, "4m5.001s"},
      {5h + 6min + 7001ms, "5h6m7.001s"},
      {8min + 1ns, "8m0.000000001s"},
      {nanoseconds(kMax), "2562047h47m16.854775807s"},
      {nanoseconds(kMin), "-2562047h47m16.854775808s"},
      {1min, "1m0s"},
      {200ms, "200ms"},
      {2min + 10s, "2m10s"},
      {1h, "1h0m0s"},
      {1500ms, "1.5s"},
      {1us, "1\u00b5s"},
      {-90s, "-1m30s"},
      {-1ns, "-1ns"},
      {999999999ns, "999.999999ms"},
      {30s, "30s"},
  };
  for (auto [duration, expected] : cases) {
    CAPTURE(expected);
    CHECK(format_go_duration(duration) == expected);
  }
}

TEST_CASE("printed durations parse back to the same value") {
  for (std::int64_t n : {std::int64_t{0}, std::int64_t{1}, std::int64_t{999}, std::int64_t{1'000'001},
                         std::int64_t{61'000'000'123}, std::int64_t{-7'384'000'000'000}, kMax, kMin}) {
    CAPTURE(n);
    Result<nanoseconds> back = parse_go_duration(format_go_duration(nanoseconds(n)));
    REQUIRE(back.ok());
    CHECK(back->count() == n);
  }
}
