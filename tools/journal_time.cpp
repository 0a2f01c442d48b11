// Times and gap lines for the journal commands (declared in tools/journal_commands.hpp).
#include <time.h>

#include <charconv>
#include <limits>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "tools/journal_commands.hpp"

namespace shmbus::tools {
namespace {

// Reads exactly `digits` decimal digits at text[pos...]; nothing if they are not all digits.
std::optional<int> digits_at(std::string_view text, std::size_t pos, std::size_t digits) {
  if (pos + digits > text.size()) return std::nullopt;
  int v = 0;
  for (std::size_t i = pos; i < pos + digits; ++i) {
    if (text[i] < '0' || text[i] > '9') return std::nullopt;
    v = v * 10 + (text[i] - '0');
  }
  return v;
}

std::optional<std::int64_t> parse_iso8601_utc(std::string_view t) {
  // YYYY-MM-DDTHH:MM:SS[.f{1,9}]Z
  if (t.size() < 20 || t[4] != '-' || t[7] != '-' || (t[10] != 'T' && t[10] != 't') ||
      t[13] != ':' || t[16] != ':' || (t.back() != 'Z' && t.back() != 'z')) {
    return std::nullopt;
  }
  const auto year = digits_at(t, 0, 4), month = digits_at(t, 5, 2), day = digits_at(t, 8, 2);
  const auto hour = digits_at(t, 11, 2), minute = digits_at(t, 14, 2), second = digits_at(t, 17, 2);
  if (!year || !month || !day || !hour || !minute || !second) return std::nullopt;
  if (*month < 1 || *month > 12 || *day < 1 || *day > 31 || *hour > 23 || *minute > 59 ||
      *second > 60) {
    return std::nullopt;
  }
  std::int64_t nanos = 0;
  const std::size_t end = t.size() - 1;  // the 'Z'
  if (end > 19) {
    if (t[19] != '.' || end - 20 < 1 || end - 20 > 9) return std::nullopt;
    const auto fraction = digits_at(t, 20, end - 20);
    if (!fraction) return std::nullopt;
    nanos = *fraction;
    for (std::size_t d = end - 20; d < 9; ++d) nanos *= 10;
  }
  struct tm utc {};
  utc.tm_year = *year - 1900;
  utc.tm_mon = *month - 1;
  utc.tm_mday = *day;
  utc.tm_hour = *hour;
  utc.tm_min = *minute;
  utc.tm_sec = *second;
  const time_t seconds = timegm(&utc);
  if (utc.tm_mday != *day) return std::nullopt;  // timegm normalised e.g. February 30th
  // Within the range of int64 nanoseconds (years 1678 to 2262).
  if (seconds > std::numeric_limits<std::int64_t>::max() / 1'000'000'000 - 1 ||
      seconds < std::numeric_limits<std::int64_t>::min() / 1'000'000'000 + 1) {
    return std::nullopt;
  }
  return static_cast<std::int64_t>(seconds) * 1'000'000'000 + nanos;
}

}  // namespace

std::optional<std::int64_t> parse_time_ns(std::string_view text) {
  std::int64_t v = 0;
  const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), v);
  if (!text.empty() && ec == std::errc{} && end == text.data() + text.size()) return v;
  return parse_iso8601_utc(text);
}

std::string gap_line(std::uint64_t sequence, std::uint64_t count, std::int64_t seen_ns,
                     RecordFormat format) {
  if (format == RecordFormat::json) {
    nlohmann::ordered_json j;
    j["type"] = "gap";
    j["seq"] = sequence;
    j["count"] = count;
    j["time_ns"] = seen_ns;
    j["time"] = iso8601_utc_ns(seen_ns);
    return j.dump();
  }
  return fmt::format("# gap: {} sequences lost from seq={} (seen {})", count, sequence,
                     iso8601_utc_ns(seen_ns));
}

}  // namespace shmbus::tools
