// Times and gap lines for the journal commands (declared in tools/journal_commands.hpp).
#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "tools/journal_commands.hpp"
#include "tools/time_parse.hpp"

namespace shmbus::tools {

std::optional<std::int64_t> parse_time_ns(std::string_view text) {
  const auto time = parse_time_point(text, realtime_now_ns());
  if (!time) return std::nullopt;
  return *time;
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
                     iso8601_local_ns(seen_ns));
}

}  // namespace shmbus::tools
