// Times given on the command line (replay --from-time/--to-time), as nanoseconds since the Unix
// epoch. Accepted forms:
//   1795773600000000000               integer nanoseconds since the epoch
//   now, -30s, -10m, -2h, -1d, -500ms  relative to `now_ns` (a leading '+' counts forward)
//   2026-12-03 09:23:08                local time (local_zone.hpp: $TZ, else the system's zone)
//   2026-12-03T09:23:08.250            'T' or ' ' between date and time; 1 to 9 fraction digits;
//   2026-12-03 09:23, 2026-12-03       seconds, or the whole time of day (midnight), left out
//   2026-12-03T09:23:08Z               UTC ('Z' or 'z')
//   2026-12-03T09:23:08+01:00          an explicit UTC offset: +HH:MM, +HHMM or +HH
// A local time that does not exist (the hour skipped when clocks go forward) or occurs twice (the
// hour repeated when they go back) is an error that says so and names the offsets to choose from.
// Times must lie in years 1678 to 2261 (int64 nanoseconds).
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include <tl/expected.hpp>

namespace shmbus::tools {

// The time `text` means, or a message naming what is wrong with it (without the option's name).
tl::expected<std::int64_t, std::string> parse_time_point(std::string_view text,
                                                         std::int64_t now_ns);

// CLOCK_REALTIME now, in nanoseconds since the epoch: what relative times count from.
std::int64_t realtime_now_ns() noexcept;

}  // namespace shmbus::tools
