#include "tools/local_zone.hpp"

#include <cstdlib>
#include <exception>
#include <optional>
#include <string_view>

#include <fmt/format.h>

#include "tools/format.hpp"

namespace shmbus::tools {
namespace {

// The zone name glibc would read from a TZ value: without the leading ':' it allows, and without
// the zoneinfo directory when it is a path into it.
std::string_view zone_name_of(std::string_view tz) {
  if (!tz.empty() && tz.front() == ':') tz.remove_prefix(1);
  constexpr std::string_view kZoneinfo = "/zoneinfo/";
  if (!tz.empty() && tz.front() == '/') {
    if (const auto at = tz.find(kZoneinfo); at != std::string_view::npos) {
      tz.remove_prefix(at + kZoneinfo.size());
    }
  }
  return tz;
}

LocalZone look_up(const std::optional<std::string>& tz) {
  LocalZone found;
  try {
    if (!tz) {
      try {
        found.zone = date::current_zone();
      } catch (const std::exception&) {
        found.zone = date::locate_zone("UTC");  // no /etc/localtime: glibc's choice too
      }
      return found;
    }
    const std::string_view name = zone_name_of(*tz);
    found.zone = date::locate_zone(name.empty() ? std::string_view("UTC") : name);
  } catch (const std::exception& e) {
    found.zone = nullptr;
    found.problem = tz ? fmt::format(
                             "TZ='{}' names no zone of the tz database (such as Europe/London or "
                             "America/New_York): {}",
                             *tz, e.what())
                       : fmt::format("no tz database: {}", e.what());
  }
  return found;
}

}  // namespace

const LocalZone& local_zone() {
  // The command is single-threaded; thread_local keeps a test's threads from sharing the cache.
  thread_local bool looked_up = false;
  thread_local std::optional<std::string> cached_tz;  // the $TZ `cached` was found for
  thread_local LocalZone cached;
  const char* tz = std::getenv("TZ");
  const bool same = looked_up && (tz == nullptr ? !cached_tz : cached_tz && *cached_tz == tz);
  if (!same) {
    cached_tz = tz == nullptr ? std::nullopt : std::optional<std::string>(tz);
    cached = look_up(cached_tz);
    looked_up = true;
  }
  return cached;
}

std::string format_utc_offset(std::chrono::seconds offset) {
  const auto minutes = std::chrono::duration_cast<std::chrono::minutes>(offset).count();
  const auto magnitude = minutes < 0 ? -minutes : minutes;
  return fmt::format("{}{:02}:{:02}", minutes < 0 ? '-' : '+', magnitude / 60, magnitude % 60);
}

std::string iso8601_local_ns(std::int64_t unix_ns) {
  const LocalZone& local = local_zone();
  if (local.zone == nullptr) return iso8601_utc_ns(unix_ns);
  // Floor division, so that times before 1970 still get a nanosecond part in [0, 1e9).
  std::int64_t seconds = unix_ns / 1'000'000'000;
  std::int64_t nanos = unix_ns % 1'000'000'000;
  if (nanos < 0) {
    nanos += 1'000'000'000;
    --seconds;
  }
  const date::sys_seconds instant{std::chrono::seconds(seconds)};
  const std::chrono::seconds offset = local.zone->get_info(instant).offset;
  if (offset.count() == 0) return iso8601_utc_ns(unix_ns);
  const date::local_seconds wall{instant.time_since_epoch() + offset};
  const auto day = date::floor<date::days>(wall);
  const date::year_month_day ymd{day};
  const date::hh_mm_ss<std::chrono::seconds> time_of_day{wall - day};
  return fmt::format("{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:09}{}", static_cast<int>(ymd.year()),
                     static_cast<unsigned>(ymd.month()), static_cast<unsigned>(ymd.day()),
                     time_of_day.hours().count(), time_of_day.minutes().count(),
                     time_of_day.seconds().count(), nanos, format_utc_offset(offset));
}

}  // namespace shmbus::tools
