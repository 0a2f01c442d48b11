#include "tools/format.hpp"

#include <time.h>

#include <array>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

namespace shmbus::tools {

std::string to_hex(std::span<const std::byte> bytes) {
  static constexpr char kDigits[] = "0123456789abcdef";
  std::string out(2 * bytes.size(), '\0');
  for (std::size_t i = 0; i < bytes.size(); ++i) {
    const auto b = static_cast<unsigned>(bytes[i]);
    out[2 * i] = kDigits[b >> 4];
    out[2 * i + 1] = kDigits[b & 0xf];
  }
  return out;
}

bool is_printable_ascii(std::span<const std::byte> bytes) noexcept {
  for (std::byte b : bytes) {
    const auto c = static_cast<unsigned>(b);
    if (c < 0x20 || c > 0x7e) return false;
  }
  return true;
}

namespace {

// Characters a terminal would act on rather than show, or that reorder what it shows.
bool is_printable_code_point(std::uint32_t c) noexcept {
  if (c < 0x20 || (c >= 0x7f && c <= 0x9f)) return false;
  if (c == 0x200e || c == 0x200f || (c >= 0x202a && c <= 0x202e)) return false;
  return !(c >= 0x2066 && c <= 0x2069);
}

}  // namespace

// Hand-written: none of the project's libraries (fmt, nlohmann-json, CLI11) exposes a UTF-8
// validator, and this one also has to reject the control and bidirectional characters.
bool is_printable_text(std::span<const std::byte> bytes) noexcept {
  std::size_t i = 0;
  while (i < bytes.size()) {
    const auto lead = static_cast<std::uint32_t>(bytes[i]);
    std::size_t length = 0;
    std::uint32_t c = 0;
    if (lead < 0x80) {
      length = 1;
      c = lead;
    } else if (lead >= 0xc2 && lead <= 0xdf) {
      length = 2;
      c = lead & 0x1f;
    } else if (lead >= 0xe0 && lead <= 0xef) {
      length = 3;
      c = lead & 0x0f;
    } else if (lead >= 0xf0 && lead <= 0xf4) {
      length = 4;
      c = lead & 0x07;
    } else {
      return false;  // a continuation byte, or a lead byte of an overlong or too large form
    }
    if (i + length > bytes.size()) return false;
    for (std::size_t k = 1; k < length; ++k) {
      const auto next = static_cast<std::uint32_t>(bytes[i + k]);
      if ((next & 0xc0) != 0x80) return false;
      c = (c << 6) | (next & 0x3f);
    }
    if ((length == 3 && c < 0x800) || (length == 4 && c < 0x10000)) return false;  // overlong
    if ((c >= 0xd800 && c <= 0xdfff) || c > 0x10ffff) return false;
    if (!is_printable_code_point(c)) return false;
    i += length;
  }
  return true;
}

std::string payload_preview(std::span<const std::byte> bytes, std::size_t limit) {
  const bool truncated = bytes.size() > limit;
  const auto shown = bytes.first(truncated ? limit : bytes.size());
  std::string out;
  if (is_printable_text(bytes)) {
    // Cut before a multi-byte character that does not fit whole (at a lead byte).
    std::size_t cut = shown.size();
    if (truncated) {
      while (cut > 0 && (static_cast<unsigned>(bytes[cut]) & 0xc0) == 0x80) --cut;
    }
    out.assign(reinterpret_cast<const char*>(shown.data()), cut);
  } else {
    out = "0x" + to_hex(shown);
  }
  if (truncated) out += "...";
  return out;
}

std::string iso8601_utc_ns(std::int64_t unix_ns) {
  // Floor division, so that times before 1970 still get a nanosecond part in [0, 1e9).
  std::int64_t seconds = unix_ns / 1'000'000'000;
  std::int64_t nanos = unix_ns % 1'000'000'000;
  if (nanos < 0) {
    nanos += 1'000'000'000;
    --seconds;
  }
  const time_t t = static_cast<time_t>(seconds);
  struct tm utc {};
  if (gmtime_r(&t, &utc) == nullptr) return fmt::format("@{}ns", unix_ns);
  return fmt::format("{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:09}Z", utc.tm_year + 1900,
                     utc.tm_mon + 1, utc.tm_mday, utc.tm_hour, utc.tm_min, utc.tm_sec, nanos);
}

std::string human_bytes(double bytes) {
  static constexpr std::array<const char*, 6> kUnits{"B", "KiB", "MiB", "GiB", "TiB", "PiB"};
  std::size_t unit = 0;
  while (bytes >= 1024 && unit + 1 < kUnits.size()) {
    bytes /= 1024;
    ++unit;
  }
  if (unit == 0) return fmt::format("{:.0f} B", bytes);
  return fmt::format("{:.2f} {}", bytes, kUnits[unit]);
}

std::string human_count(double value) {
  static constexpr std::array<const char*, 5> kSuffixes{"", " k", " M", " G", " T"};
  std::size_t i = 0;
  while (value >= 1000 && i + 1 < kSuffixes.size()) {
    value /= 1000;
    ++i;
  }
  if (i == 0) return fmt::format("{:.0f}", value);
  return fmt::format("{:.2f}{}", value, kSuffixes[i]);
}

std::string human_duration_ns(std::int64_t ns) {
  const double v = static_cast<double>(ns);
  if (ns < 1'000) return fmt::format("{} ns", ns);
  if (ns < 1'000'000) return fmt::format("{:.1f} us", v / 1e3);
  if (ns < 1'000'000'000) return fmt::format("{:.2f} ms", v / 1e6);
  return fmt::format("{:.3f} s", v / 1e9);
}

std::string human_age(std::int64_t now_ns, std::int64_t then_ns) {
  if (then_ns <= 0) return "never";
  const double s = now_ns > then_ns ? static_cast<double>(now_ns - then_ns) / 1e9 : 0.0;
  if (s < 60) return fmt::format("{:.1f} s ago", s);
  if (s < 3600) return fmt::format("{:.1f} min ago", s / 60);
  if (s < 48 * 3600) return fmt::format("{:.1f} h ago", s / 3600);
  return fmt::format("{:.1f} d ago", s / 86400);
}

std::string human_rate(double per_second, const char* unit) {
  return fmt::format("{} {}/s", human_count(per_second), unit);
}

std::string key_text(std::span<const std::byte> key) {
  const std::string_view text(reinterpret_cast<const char*>(key.data()), key.size());
  const bool plain = !key.empty() && is_printable_text(key) &&
                     text.find(' ') == std::string_view::npos && !text.starts_with("0x");
  return plain ? std::string(text) : "0x" + to_hex(key);
}

namespace {

nlohmann::ordered_json message_json(const Message& m) {
  nlohmann::ordered_json j;
  j["seq"] = m.sequence;
  j["time_ns"] = m.timestamp_ns;
  j["time"] = iso8601_utc_ns(m.timestamp_ns);
  if (!m.key.empty()) {
    j["key_hex"] = to_hex(m.key);
    if (is_printable_text(m.key)) {
      j["key"] = std::string_view(reinterpret_cast<const char*>(m.key.data()), m.key.size());
    }
  }
  if (m.message_type != 0) j["message_type"] = m.message_type;
  j["size"] = m.payload.size();
  j["lost_before"] = m.lost_before;
  j["payload_hex"] = to_hex(m.payload);
  if (is_printable_text(m.payload)) {
    j["payload_text"] = std::string_view(reinterpret_cast<const char*>(m.payload.data()),
                                         m.payload.size());
  }
  return j;
}

}  // namespace

std::string record_line(const Message& m, RecordFormat format) {
  if (format == RecordFormat::json) return message_json(m).dump();
  std::string line = fmt::format("seq={} time={}", m.sequence, iso8601_local_ns(m.timestamp_ns));
  if (!m.key.empty()) line += fmt::format(" key={}", key_text(m.key));
  if (m.message_type != 0) line += fmt::format(" type={}", m.message_type);
  line += fmt::format(" size={}", m.payload.size());
  if (!m.payload.empty()) {
    line += ' ';
    line += payload_preview(m.payload);
  }
  return line;
}

std::string record_line(const Message& m, RecordFormat format, GroupDelivery delivery) {
  if (format != RecordFormat::json) return record_line(m, format);
  nlohmann::ordered_json j = message_json(m);
  j["redelivered"] = delivery.redelivered;
  j["attempt"] = delivery.attempt;
  return j.dump();
}

std::string lost_line(std::uint64_t lost, std::uint64_t before, RecordFormat format) {
  if (format == RecordFormat::json) {
    nlohmann::ordered_json j;
    j["lost"] = lost;
    j["before_seq"] = before;
    return j.dump();
  }
  return fmt::format("# lost {} messages before seq={}", lost, before);
}

}  // namespace shmbus::tools
