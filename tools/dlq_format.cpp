#include "tools/dlq_format.hpp"

#include <algorithm>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "tools/format.hpp"

namespace shmbus::tools {
namespace {

std::span<const std::byte> dlq_bytes_of(std::string_view text) {
  return {reinterpret_cast<const std::byte*>(text.data()), text.size()};
}

std::string_view dlq_text_of(std::span<const std::byte> bytes) {
  return {reinterpret_cast<const char*>(bytes.data()), bytes.size()};
}

// A value in a key=value line: as it is when it is a plain word (printable ASCII without spaces,
// quotes, backslashes or '='), else quoted.
std::string dlq_field_value(std::string_view text) {
  const bool plain = !text.empty() && std::all_of(text.begin(), text.end(), [](char c) {
    return c > ' ' && c <= '~' && c != '"' && c != '\\' && c != '=';
  });
  return plain ? std::string(text) : quoted(text);
}

// A key for a human: a plain word or quoted when it is printable text, else 0x and hex.
std::string dlq_key_text(std::span<const std::byte> key) {
  return is_printable_text(key) ? dlq_field_value(dlq_text_of(key)) : "0x" + to_hex(key);
}

// The dead-letter's strings came from another process: invalid UTF-8 is replaced (U+FFFD)
// rather than making the dump throw.
std::string dlq_json_dump(const nlohmann::ordered_json& j) {
  return j.dump(-1, ' ', false, nlohmann::ordered_json::error_handler_t::replace);
}

}  // namespace

std::string quoted(std::string_view text) {
  const bool printable = is_printable_text(dlq_bytes_of(text));
  std::string out = "\"";
  for (const char c : text) {
    const auto u = static_cast<unsigned char>(c);
    if (c == '"' || c == '\\') {
      out += '\\';
      out += c;
    } else if (printable || (u >= 0x20 && u < 0x7f)) {
      out += c;
    } else if (c == '\n') {
      out += "\\n";
    } else if (c == '\t') {
      out += "\\t";
    } else if (c == '\r') {
      out += "\\r";
    } else {
      out += fmt::format("\\x{:02x}", u);
    }
  }
  out += '"';
  return out;
}

std::string dlq_line(const DlqPlace& place, const DeadLetter& d, bool json, bool with_payload) {
  if (json) {
    nlohmann::ordered_json j;
    j["seq"] = place.sequence;
    j["source"] = place.from_journal ? "journal" : "ring";
    j["channel"] = d.channel;
    j["original_seq"] = d.original_sequence;
    j["original_time_ns"] = d.original_timestamp_ns;
    j["original_time"] = iso8601_utc_ns(d.original_timestamp_ns);
    j["dead_lettered_ns"] = d.dead_lettered_ns;
    j["dead_lettered_time"] = iso8601_utc_ns(d.dead_lettered_ns);
    j["group"] = d.group;
    j["attempts"] = d.attempts;
    j["reason_code"] = to_string(d.reason_code);
    j["reason_code_value"] = static_cast<std::uint16_t>(d.reason_code);
    j["reason"] = d.reason;
    j["message_type"] = d.message_type;
    j["size"] = d.payload.size();
    if (!d.key.empty()) {
      j["key_hex"] = to_hex(d.key);
      if (is_printable_text(d.key)) j["key_text"] = dlq_text_of(d.key);
    }
    if (with_payload) {
      j["payload_hex"] = to_hex(d.payload);
      if (is_printable_text(d.payload)) j["payload_text"] = dlq_text_of(d.payload);
    }
    return dlq_json_dump(j);
  }
  std::string line = fmt::format(
      "seq={} original_seq={} time={} group={} attempts={} code={} size={}", place.sequence,
      d.original_sequence, iso8601_local_ns(d.dead_lettered_ns), dlq_field_value(d.group), d.attempts,
      to_string(d.reason_code), d.payload.size());
  if (!d.key.empty()) line += " key=" + dlq_key_text(d.key);
  line += " reason=" + quoted(d.reason);
  return line;
}

std::string dlq_show_text(std::string_view dlq_channel, const DlqPlace& place,
                          const DeadLetter& d) {
  std::string out = fmt::format("dead letter seq={} of channel '{}' (from its {})\n",
                                place.sequence, dlq_channel,
                                place.from_journal ? "journal" : "ring");
  auto field = [&](std::string_view name, const std::string& value) {
    out += fmt::format("  {:<15} {}\n", name, value);
  };
  field("channel", dlq_field_value(d.channel));
  field("original seq", std::to_string(d.original_sequence));
  field("original time", iso8601_local_ns(d.original_timestamp_ns));
  field("dead-lettered", iso8601_local_ns(d.dead_lettered_ns));
  field("group", dlq_field_value(d.group));
  field("attempts", std::to_string(d.attempts));
  field("reason code", fmt::format("{} ({})", to_string(d.reason_code),
                                   static_cast<std::uint16_t>(d.reason_code)));
  field("reason", quoted(d.reason));
  field("message type", std::to_string(d.message_type));
  field("key", d.key.empty() ? std::string("(none)") : dlq_key_text(d.key));
  field("payload", fmt::format("{} bytes", d.payload.size()));
  out += hex_dump(d.payload, "    ");
  return out;
}

std::string hex_dump(std::span<const std::byte> bytes, std::string_view indent) {
  std::string out;
  for (std::size_t line = 0; line < bytes.size(); line += 16) {
    const std::size_t n = std::min<std::size_t>(16, bytes.size() - line);
    out += fmt::format("{}{:08x} ", indent, line);
    std::string ascii;
    for (std::size_t i = 0; i < 16; ++i) {
      if (i == 8) out += ' ';
      if (i < n) {
        const auto b = static_cast<unsigned char>(bytes[line + i]);
        out += fmt::format(" {:02x}", b);
        ascii += (b >= 0x20 && b < 0x7f) ? static_cast<char>(b) : '.';
      } else {
        out += "   ";
      }
    }
    out += fmt::format("  |{}|\n", ascii);
  }
  return out;
}

}  // namespace shmbus::tools
