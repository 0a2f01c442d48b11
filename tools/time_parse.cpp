#include "tools/time_parse.hpp"

#include <time.h>

#include <algorithm>
#include <array>
#include <charconv>
#include <chrono>
#include <optional>

#include <fmt/format.h>

#include "tools/local_zone.hpp"

namespace shmbus::tools {
namespace {

using Nanos = std::chrono::nanoseconds;
using LocalNanos = date::local_time<Nanos>;

// int64 nanoseconds since the epoch span 1677-09-21 to 2262-04-11: whole years within it.
constexpr int kFirstYear = 1678;
constexpr int kLastYear = 2261;

bool is_digit(char c) { return c >= '0' && c <= '9'; }

bool digits_at(std::string_view text, std::size_t pos, std::size_t count) {
  if (pos + count > text.size()) return false;
  return std::all_of(text.begin() + static_cast<std::ptrdiff_t>(pos),
                     text.begin() + static_cast<std::ptrdiff_t>(pos + count), is_digit);
}

int number_at(std::string_view text, std::size_t pos, std::size_t count) {
  int value = 0;
  std::from_chars(text.data() + pos, text.data() + pos + count, value);
  return value;
}

std::string_view trimmed(std::string_view text) {
  const auto first = text.find_first_not_of(" \t");
  if (first == std::string_view::npos) return {};
  return text.substr(first, text.find_last_not_of(" \t") - first + 1);
}

tl::unexpected<std::string> failure(std::string message) {
  return tl::unexpected(std::move(message));
}

std::string format_local_seconds(date::local_seconds t) {
  return date::format("%Y-%m-%d %H:%M:%S", t);
}

// "-10m", "+2h", "-500ms": a sign, digits and a unit. Nothing if `text` is not of that shape
// (a sign and digits alone are integer nanoseconds).
std::optional<tl::expected<std::int64_t, std::string>> relative_time(std::string_view text,
                                                                     std::int64_t now_ns) {
  if (text.size() < 2 || (text[0] != '-' && text[0] != '+')) return std::nullopt;
  std::size_t unit_at = 1;
  while (unit_at < text.size() && is_digit(text[unit_at])) ++unit_at;
  if (unit_at == 1 || unit_at == text.size()) return std::nullopt;
  struct Unit {
    std::string_view name;
    std::int64_t ns;
  };
  static constexpr std::array<Unit, 5> kUnits{{{"ms", 1'000'000},
                                               {"s", 1'000'000'000},
                                               {"m", 60'000'000'000},
                                               {"h", 3'600'000'000'000},
                                               {"d", 86'400'000'000'000}}};
  const std::string_view unit_name = text.substr(unit_at);
  const auto unit = std::find_if(kUnits.begin(), kUnits.end(),
                                 [&](const Unit& u) { return u.name == unit_name; });
  if (unit == kUnits.end()) {
    return failure(
        fmt::format("'{}': unknown unit '{}' of a relative time (ms, s, m, h or d, as "
                    "in -10m)",
                    text, unit_name));
  }
  std::int64_t count = 0;
  const auto parsed = std::from_chars(text.data() + 1, text.data() + unit_at, count);
  std::int64_t span = 0, result = 0;
  if (parsed.ec != std::errc{} || __builtin_mul_overflow(count, unit->ns, &span) ||
      (text[0] == '-' ? __builtin_sub_overflow(now_ns, span, &result)
                      : __builtin_add_overflow(now_ns, span, &result))) {
    return failure(fmt::format("'{}': too far from now (times must lie in years {} to {})", text,
                               kFirstYear, kLastYear));
  }
  return result;
}

// Where the parts of "YYYY-MM-DD[(T| )HH:MM[:SS[.f{1,9}]]][Z|±HH[[:]MM]]" are.
struct DateTimeShape {
  std::size_t end = 0;  // of the date and time, before any zone
  bool has_time = false;
  bool has_seconds = false;
  std::string_view zone;  // "", "Z" or the offset
};

std::optional<DateTimeShape> date_time_shape(std::string_view t) {
  if (!(digits_at(t, 0, 4) && t.size() >= 10 && t[4] == '-' && digits_at(t, 5, 2) && t[7] == '-' &&
        digits_at(t, 8, 2))) {
    return std::nullopt;
  }
  DateTimeShape shape;
  shape.end = 10;
  if (t.size() > 10 && (t[10] == 'T' || t[10] == 't' || t[10] == ' ')) {
    if (!(digits_at(t, 11, 2) && t.size() > 13 && t[13] == ':' && digits_at(t, 14, 2))) {
      return std::nullopt;
    }
    shape.has_time = true;
    shape.end = 16;
    if (t.size() > 16 && t[16] == ':') {
      if (!digits_at(t, 17, 2)) return std::nullopt;
      shape.has_seconds = true;
      shape.end = 19;
      if (t.size() > 19 && t[19] == '.') {
        std::size_t digits = 0;
        while (20 + digits < t.size() && is_digit(t[20 + digits])) ++digits;
        if (digits < 1 || digits > 9) return std::nullopt;
        shape.end = 20 + digits;
      }
    }
  }
  shape.zone = t.substr(shape.end);
  return shape;
}

// "+01:00", "-0430", "+05": the offset in minutes; nothing if not of that shape.
std::optional<int> utc_offset_minutes(std::string_view z) {
  if (z.empty() || (z[0] != '+' && z[0] != '-') || !digits_at(z, 1, 2)) return std::nullopt;
  int minutes = 0;
  if (z.size() == 3) {
    minutes = 0;
  } else if (z.size() == 5 && digits_at(z, 3, 2)) {
    minutes = number_at(z, 3, 2);
  } else if (z.size() == 6 && z[3] == ':' && digits_at(z, 4, 2)) {
    minutes = number_at(z, 4, 2);
  } else {
    return std::nullopt;
  }
  const int hours = number_at(z, 1, 2);
  if (hours > 23 || minutes > 59) return std::nullopt;
  const int total = hours * 60 + minutes;
  return z[0] == '-' ? -total : total;
}

// The local time zone's reading of a wall-clock time, or why it has none or two.
tl::expected<std::int64_t, std::string> from_local(std::string_view text, std::string_view written,
                                                   LocalNanos local) {
  const LocalZone& local_tz = local_zone();
  if (local_tz.zone == nullptr) {
    return failure(
        fmt::format("'{}' is a local time, but {}; give the time with Z or a UTC "
                    "offset such as +01:00",
                    text, local_tz.problem));
  }
  const date::time_zone& zone = *local_tz.zone;
  const date::local_info info = zone.get_info(date::floor<std::chrono::seconds>(local));
  switch (info.result) {
    case date::local_info::unique:
      return (local.time_since_epoch() - info.first.offset).count();
    case date::local_info::nonexistent: {
      const auto jump = date::local_seconds{info.second.begin.time_since_epoch()};
      return failure(fmt::format(
          "'{}' does not exist in {}: at {} the clocks went forward to {} ({} {} to {} {}); "
          "write the time with the UTC offset you mean, e.g. {}{}",
          text, zone.name(), format_local_seconds(jump + info.first.offset),
          date::format("%H:%M:%S", jump + info.second.offset), info.first.abbrev,
          format_utc_offset(info.first.offset), info.second.abbrev,
          format_utc_offset(info.second.offset), written, format_utc_offset(info.first.offset)));
    }
    case date::local_info::ambiguous:
    default:
      return failure(fmt::format(
          "'{}' occurs twice in {}: first in {} ({}), then in {} ({}) after the clocks went "
          "back; add the offset you mean: {}{} or {}{}",
          text, zone.name(), info.first.abbrev, format_utc_offset(info.first.offset),
          info.second.abbrev, format_utc_offset(info.second.offset), written,
          format_utc_offset(info.first.offset), written, format_utc_offset(info.second.offset)));
  }
}

tl::expected<std::int64_t, std::string> date_time(std::string_view text) {
  const auto shape = date_time_shape(text);
  const std::string expected_forms =
      "expected nanoseconds since the epoch, a relative time such as -10m, or a date and time "
      "such as 2026-12-03 09:23:08[.123], 2026-12-03T09:23:08Z or 2026-12-03T09:23:08+01:00";
  if (!shape) return failure(fmt::format("'{}': {}", text, expected_forms));
  const int year = number_at(text, 0, 4);
  if (year < kFirstYear || year > kLastYear) {
    return failure(fmt::format("'{}': times must lie in years {} to {} (int64 nanoseconds)", text,
                               kFirstYear, kLastYear));
  }
  std::optional<int> offset_minutes;
  const bool utc = shape->zone == "Z" || shape->zone == "z";
  if (!utc && !shape->zone.empty()) {
    offset_minutes = utc_offset_minutes(shape->zone);
    if (!offset_minutes) {
      return failure(
          fmt::format("'{}': '{}' after the {} is not Z or a UTC offset such as "
                      "+01:00, -0430 or +05",
                      text, shape->zone, shape->has_time ? "time" : "date"));
    }
  }
  // The shape is checked: the fields are digits. date's calendar checks the day of the month.
  const date::year_month_day day{date::year{year},
                                 date::month{static_cast<unsigned>(number_at(text, 5, 2))},
                                 date::day{static_cast<unsigned>(number_at(text, 8, 2))}};
  const int hour = shape->has_time ? number_at(text, 11, 2) : 0;
  const int minute = shape->has_time ? number_at(text, 14, 2) : 0;
  const int second = shape->has_seconds ? number_at(text, 17, 2) : 0;
  if (!day.ok() || hour > 23 || minute > 59 || second > 60) {
    return failure(
        fmt::format("'{}': no such date or time of day (months 01-12, days within "
                    "the month, hours 00-23, minutes and seconds 00-59)",
                    text));
  }
  std::int64_t fraction_ns = 0;
  if (shape->end > 20) {
    const std::size_t digits = shape->end - 20;
    fraction_ns = number_at(text, 20, digits);
    for (std::size_t d = digits; d < 9; ++d) fraction_ns *= 10;
  }
  // A leap second (:60) is the first second of the next minute, as timegm reads it.
  const LocalNanos local = date::local_days{day} + std::chrono::hours(hour) +
                           std::chrono::minutes(minute) + std::chrono::seconds(second) +
                           Nanos(fraction_ns);
  if (utc) return local.time_since_epoch().count();
  if (offset_minutes) {
    return (local.time_since_epoch() - std::chrono::minutes(*offset_minutes)).count();
  }
  std::string written(text.substr(0, shape->end));
  if (shape->has_time) {
    written[10] = 'T';
  } else {
    written += "T00:00";
  }
  return from_local(text, written, local);
}

}  // namespace

std::int64_t realtime_now_ns() noexcept {
  timespec now{};
  clock_gettime(CLOCK_REALTIME, &now);
  return static_cast<std::int64_t>(now.tv_sec) * 1'000'000'000 + now.tv_nsec;
}

tl::expected<std::int64_t, std::string> parse_time_point(std::string_view raw_text,
                                                         std::int64_t now_ns) {
  const std::string_view text = trimmed(raw_text);
  if (text.empty()) return failure("empty time");
  if (text == "now") return now_ns;
  if (auto relative = relative_time(text, now_ns)) return *relative;
  const bool integer = (is_digit(text[0]) || (text[0] == '-' && text.size() > 1)) &&
                       std::all_of(text.begin() + 1, text.end(), is_digit);
  if (integer) {
    std::int64_t ns = 0;
    const auto parsed = std::from_chars(text.data(), text.data() + text.size(), ns);
    if (parsed.ec != std::errc{}) {
      return failure(
          fmt::format("'{}': beyond the range of int64 nanoseconds since the epoch", text));
    }
    return ns;
  }
  return date_time(text);
}

}  // namespace shmbus::tools
