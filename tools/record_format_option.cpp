#include "tools/record_format_option.hpp"

#include <CLI/CLI.hpp>

namespace shmbus::tools {

void add_record_format_option(CLI::App& command, std::string& format) {
  CLI::Option* format_option =
      command
          .add_option("--format", format,
                      "text (the default): seq=N time=ISO-8601 local time size=B payload "
                      "(printable text, else 0x+hex; first 64 bytes); json: one object per line "
                      "with seq, time_ns, time (UTC), size, lost_before, payload_hex, and "
                      "payload_text if the payload is printable UTF-8; raw: binary frames, a "
                      "24-byte header (\"SBRD\", u32 size, u64 seq, i64 time_ns, little endian) "
                      "then the payload, read back by 'shmbus pub --format raw'; payload: the "
                      "payload bytes alone, nothing between them")
          ->transform(CLI::IsMember({"text", "json", "raw", "payload"}, CLI::ignore_case));
  command
      .add_flag_callback(
          "--json", [&format] { format = "json"; }, "Same as --format json")
      ->excludes(format_option);
}

RecordFormat record_format_named(const std::string& format) {
  if (format == "json") return RecordFormat::json;
  if (format == "raw") return RecordFormat::raw;
  if (format == "payload") return RecordFormat::payload;
  return RecordFormat::text;
}

}  // namespace shmbus::tools
