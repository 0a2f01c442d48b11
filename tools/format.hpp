// Turning values into text for the shmbus command: hex, timestamps, human-readable units, and the
// two line formats of `shmbus tail`. Pure functions (no I/O), so tests call them directly.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <string>

#include "shmbus/shmbus.hpp"

namespace shmbus::tools {

// Lowercase hex, two digits a byte, no separators: {0xde, 0xad} -> "dead".
std::string to_hex(std::span<const std::byte> bytes);

// True if every byte is printable ASCII (0x20 ' ' to 0x7e '~'). An empty span is printable.
bool is_printable_ascii(std::span<const std::byte> bytes) noexcept;

// True if `bytes` is printable text: well-formed UTF-8 (RFC 3629: no overlong forms, no
// surrogates, nothing above U+10FFFF) without control characters (U+0000-U+001F, U+007F,
// U+0080-U+009F) or bidirectional formatting characters (U+200E, U+200F, U+202A-U+202E,
// U+2066-U+2069), which could rearrange or hide what a terminal shows. Printable ASCII is printable
// text; tab and newline are not. An empty span is printable.
bool is_printable_text(std::span<const std::byte> bytes) noexcept;

// A payload for a human: as text if it is printable text (is_printable_text), else as "0x"
// followed by hex. Only the first `limit` bytes are shown (text is cut before a UTF-8 sequence
// that does not fit whole); a longer payload ends in "...".
std::string payload_preview(std::span<const std::byte> bytes, std::size_t limit = 64);

// ISO-8601 UTC with nanoseconds: 1700000000123456789 -> "2023-11-14T22:13:20.123456789Z".
std::string iso8601_utc_ns(std::int64_t unix_ns);

// ISO-8601 in the local time zone (tools/local_zone.hpp: $TZ, else the system's) with its UTC
// offset: "2023-11-14T23:13:20.123456789+01:00". Where the offset is zero (UTC, or London in
// winter) it is iso8601_utc_ns's "...Z"; so is any time when $TZ names no known zone.
// Defined in local_zone.cpp, with the zone lookup.
std::string iso8601_local_ns(std::int64_t unix_ns);

// 1536 -> "1.50 KiB"; below 1 KiB in bytes: "512 B".
std::string human_bytes(double bytes);

// 1234567 -> "1.23 M"; below 1000 without a suffix: "950". For rates: human_count(r) + "msg/s".
std::string human_count(double value);

// Nanoseconds as the largest fitting unit: "850 ns", "12.3 us", "4.56 ms", "2.001 s".
std::string human_duration_ns(std::int64_t ns);

// How long ago `then_ns` was at `now_ns` (both CLOCK_REALTIME ns): "0.3 s ago", "4.2 min ago",
// "3.0 h ago", "2.5 d ago". "never" if then_ns <= 0 (no such event); a time slightly in the
// future (clocks of two processes) counts as "0.0 s ago".
std::string human_age(std::int64_t now_ns, std::int64_t then_ns);

// A rate for a human: human_count(per_second) + " " + unit + "/s": "1.20 M msg/s", "950 msg/s".
std::string human_rate(double per_second, const char* unit = "msg");

// How tail, replay and journal dump write records: lines (text, json) or binary (raw: framed
// records, tools/record_format.hpp; payload: the payload bytes alone, nothing between them).
enum class RecordFormat : std::uint8_t { text, json, raw, payload };

// A record's key for a text line: the key itself when it is printable text with no space and
// does not begin with "0x", else "0x" and its hex, so that a line never holds a key that reads
// otherwise (or rearranges the terminal).
std::string key_text(std::span<const std::byte> key);

// One line (without the newline) for a received message:
//   text: seq=<n> time=<iso8601_local_ns> [key=<key_text>] [type=<message type>] size=<bytes>
//         <payload_preview>   (key and type only when the message has them; no payload part if
//         empty)
//   json: {"seq":n,"time_ns":t,"time":"<ISO UTC>"[,"key_hex":"<hex>"[,"key":"<the key>"]]
//          [,"message_type":m],"size":s,"lost_before":l,"payload_hex":"<hex>"
//          [,"payload_text":"<the payload>"]}   key_hex when the message has a key, key only if
//          is_printable_text(key) (JSON-escaped), message_type when not 0, payload_text only if
//          is_printable_text(payload)
// raw and payload have no line form: they get the text line.
std::string record_line(const Message& message, RecordFormat format);

// How a consumer group delivered a record (`tail --group`).
struct GroupDelivery {
  bool redelivered = false;  // an earlier delivery of it was not acknowledged
  std::uint32_t attempt = 1;  // 1 for the first delivery
};
// record_line of a record a group delivered: json adds "redelivered":bool,"attempt":N after the
// other fields; the other formats are record_line's.
std::string record_line(const Message& message, RecordFormat format, GroupDelivery delivery);

// The line that precedes a message when `lost` messages were lost just before sequence `before`:
//   text: # lost <lost> messages before seq=<before>
//   json: {"lost":<lost>,"before_seq":<before>}
std::string lost_line(std::uint64_t lost, std::uint64_t before, RecordFormat format);

}  // namespace shmbus::tools
