#include "tools/record_format.hpp"

#include <unistd.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <cstring>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "tools/journal_commands.hpp"
#include "tools/signals.hpp"

namespace shmbus::tools {
namespace {

void append_le(std::string& out, std::uint64_t value, std::size_t bytes) {
  for (std::size_t i = 0; i < bytes; ++i) out += static_cast<char>((value >> (8 * i)) & 0xff);
}

std::uint64_t read_le(std::span<const std::byte> bytes) {
  std::uint64_t value = 0;
  for (std::size_t i = 0; i < bytes.size(); ++i) {
    value |= std::uint64_t{static_cast<unsigned char>(bytes[i])} << (8 * i);
  }
  return value;
}

void append_raw_header(std::string& out, std::string_view magic, std::uint32_t size,
                       std::uint64_t sequence, std::int64_t time_ns) {
  out.append(magic);
  append_le(out, size, 4);
  append_le(out, sequence, 8);
  append_le(out, static_cast<std::uint64_t>(time_ns), 8);
}

std::string printable_magic(std::span<const std::byte> magic) {
  return is_printable_text(magic)
             ? fmt::format("'{}'", std::string_view(reinterpret_cast<const char*>(magic.data()),
                                                    magic.size()))
             : "0x" + to_hex(magic);
}

int hex_digit_value(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

tl::expected<std::vector<std::byte>, std::string> bytes_of_hex(std::string_view hex,
                                                               const char* field) {
  if (hex.size() % 2 != 0) {
    return tl::unexpected(fmt::format("{} has an odd number of digits ({})", field, hex.size()));
  }
  std::vector<std::byte> bytes(hex.size() / 2);
  for (std::size_t i = 0; i < bytes.size(); ++i) {
    const int high = hex_digit_value(hex[2 * i]), low = hex_digit_value(hex[2 * i + 1]);
    if (high < 0 || low < 0) {
      return tl::unexpected(fmt::format("{} has a non-hex character at position {}", field,
                                        high < 0 ? 2 * i : 2 * i + 1));
    }
    bytes[i] = static_cast<std::byte>(high * 16 + low);
  }
  return bytes;
}

// The unsigned integer field `key` of `j`, if present; an error if it is not one.
tl::expected<std::optional<std::uint64_t>, std::string> unsigned_field(const nlohmann::json& j,
                                                                       const char* key) {
  const auto it = j.find(key);
  if (it == j.end()) return std::nullopt;
  if (!it->is_number_unsigned()) {
    return tl::unexpected(fmt::format("\"{}\" is not an unsigned integer", key));
  }
  return it->get<std::uint64_t>();
}

// A record line's key: from key_hex, else key (the text), else none; given both, they must agree.
tl::expected<std::vector<std::byte>, std::string> record_key(const nlohmann::json& j) {
  std::vector<std::byte> key;
  const auto hex = j.find("key_hex");
  const auto text = j.find("key");
  if (hex != j.end()) {
    if (!hex->is_string()) return tl::unexpected(std::string("\"key_hex\" is not a string"));
    auto bytes = bytes_of_hex(hex->get_ref<const std::string&>(), "key_hex");
    if (!bytes) return tl::unexpected(bytes.error());
    key = std::move(*bytes);
  }
  if (text != j.end()) {
    if (!text->is_string()) return tl::unexpected(std::string("\"key\" is not a string"));
    const auto& s = text->get_ref<const std::string&>();
    const auto* begin = reinterpret_cast<const std::byte*>(s.data());
    if (hex == j.end()) {
      key.assign(begin, begin + s.size());
    } else if (!std::equal(begin, begin + s.size(), key.begin(), key.end())) {
      return tl::unexpected(std::string("\"key\" and \"key_hex\" differ"));
    }
  }
  if (key.size() > kMaxKeyLength) {
    return tl::unexpected(
        fmt::format("the key has {} bytes (at most {})", key.size(), kMaxKeyLength));
  }
  return key;
}

tl::expected<CapturedRecord, std::string> data_record(const nlohmann::json& j) {
  CapturedRecord r;
  const auto hex = j.find("payload_hex");
  const auto text = j.find("payload_text");
  if (hex != j.end()) {
    if (!hex->is_string()) return tl::unexpected(std::string("\"payload_hex\" is not a string"));
    auto bytes = bytes_of_hex(hex->get_ref<const std::string&>(), "payload_hex");
    if (!bytes) return tl::unexpected(bytes.error());
    r.payload = std::move(*bytes);
  }
  if (text != j.end()) {
    if (!text->is_string()) return tl::unexpected(std::string("\"payload_text\" is not a string"));
    const auto& s = text->get_ref<const std::string&>();
    const auto* begin = reinterpret_cast<const std::byte*>(s.data());
    if (hex == j.end()) {
      r.payload.assign(begin, begin + s.size());
    } else if (!std::equal(begin, begin + s.size(), r.payload.begin(), r.payload.end())) {
      return tl::unexpected(std::string("\"payload_text\" and \"payload_hex\" differ"));
    }
  }
  const auto size = unsigned_field(j, "size");
  if (!size) return tl::unexpected(size.error());
  if (*size && **size != r.payload.size()) {
    return tl::unexpected(
        fmt::format("\"size\" is {} but the payload has {} bytes", **size, r.payload.size()));
  }
  const auto sequence = unsigned_field(j, "seq");
  if (!sequence) return tl::unexpected(sequence.error());
  r.sequence = sequence->value_or(0);
  if (auto key = record_key(j); key) {
    r.key = std::move(*key);
  } else {
    return tl::unexpected(key.error());
  }
  const auto type = unsigned_field(j, "message_type");
  if (!type) return tl::unexpected(type.error());
  if (*type && **type > UINT16_MAX) {
    return tl::unexpected(fmt::format("\"message_type\" {} is above {}", **type, UINT16_MAX));
  }
  r.message_type = static_cast<std::uint16_t>(type->value_or(0));
  if (const auto time = j.find("time_ns"); time != j.end()) {
    if (!time->is_number_integer()) {
      return tl::unexpected(std::string("\"time_ns\" is not an integer"));
    }
    r.time_ns = time->get<std::int64_t>();
  }
  return r;
}

tl::expected<CapturedRecord, std::string> lost_record(const nlohmann::json& j,
                                                      const char* count_key,
                                                      const char* sequence_key,
                                                      bool sequence_is_next) {
  const auto count = unsigned_field(j, count_key);
  if (!count) return tl::unexpected(count.error());
  const auto sequence = unsigned_field(j, sequence_key);
  if (!sequence) return tl::unexpected(sequence.error());
  if (!*count || !*sequence) {
    return tl::unexpected(fmt::format("needs \"{}\" and \"{}\"", count_key, sequence_key));
  }
  CapturedRecord r;
  r.kind = CapturedRecord::Kind::lost;
  r.lost = **count;
  if (sequence_is_next && r.lost > **sequence) {
    return tl::unexpected(fmt::format("\"{}\" ({}) exceeds \"{}\" ({})", count_key, r.lost,
                                      sequence_key, **sequence));
  }
  r.sequence = sequence_is_next ? **sequence - r.lost : **sequence;
  if (const auto time = j.find("time_ns"); time != j.end() && time->is_number_integer()) {
    r.time_ns = time->get<std::int64_t>();
  }
  return r;
}

}  // namespace

void append_raw_data(std::string& out, std::uint64_t sequence, std::int64_t time_ns,
                     std::span<const std::byte> payload, std::span<const std::byte> key,
                     std::uint16_t message_type) {
  if (key.empty() && message_type == 0) {
    append_raw_header(out, kRawDataMagic, static_cast<std::uint32_t>(payload.size()), sequence,
                      time_ns);
  } else {
    append_raw_header(out, kRawTaggedMagic,
                      static_cast<std::uint32_t>(kRawTagBytes + key.size() + payload.size()),
                      sequence, time_ns);
    append_le(out, key.size(), 2);
    append_le(out, message_type, 2);
    out.append(reinterpret_cast<const char*>(key.data()), key.size());
  }
  out.append(reinterpret_cast<const char*>(payload.data()), payload.size());
}

void append_raw_lost(std::string& out, std::uint64_t first_sequence, std::uint64_t count,
                     std::int64_t seen_ns) {
  append_raw_header(out, kRawLostMagic, 8, first_sequence, seen_ns);
  append_le(out, count, 8);
}

std::optional<std::size_t> RawRecordReader::read_up_to(std::span<std::byte> to) {
  std::size_t done = 0;
  while (done < to.size()) {
    const std::size_t n = std::fread(to.data() + done, 1, to.size() - done, in_);
    done += n;
    if (done == to.size()) break;
    if (std::feof(in_)) break;
    if (std::ferror(in_)) {
      if (errno == EINTR && !stop_requested()) {
        std::clearerr(in_);
        continue;
      }
      if (errno == EINTR) {
        stopped_ = true;
        return std::nullopt;
      }
      error_ = fmt::format("reading stdin: {}", std::strerror(errno));
      return std::nullopt;
    }
  }
  return done;
}

CaptureRead RawRecordReader::fail(std::string message) {
  error_ = std::move(message);
  return CaptureRead::error;
}

CaptureRead RawRecordReader::next(CapturedRecord& out) {
  std::array<std::byte, kRawHeaderBytes> header{};
  const auto got = read_up_to(header);
  if (!got) return stopped_ ? CaptureRead::interrupted : CaptureRead::error;
  if (*got == 0) return CaptureRead::end;
  if (*got < header.size()) {
    return fail(
        fmt::format("stdin ends {} bytes into the {}-byte header of raw record {} (at "
                    "byte {}): a cut capture?",
                    *got, kRawHeaderBytes, frames_ + 1, offset_));
  }
  const auto magic = std::span<const std::byte>(header).first(4);
  const std::string_view magic_text(reinterpret_cast<const char*>(magic.data()), magic.size());
  const bool tagged = magic_text == kRawTaggedMagic;
  const bool data = tagged || magic_text == kRawDataMagic;
  if (!data && magic_text != kRawLostMagic) {
    return fail(
        fmt::format("raw record {} (at byte {}) begins with {}, not \"SBRD\", \"SBRK\" or "
                    "\"SBRL\": not the output of --format raw (or not from its start)",
                    frames_ + 1, offset_, printable_magic(magic)));
  }
  const auto size =
      static_cast<std::uint32_t>(read_le(std::span<const std::byte>(header).subspan(4, 4)));
  out.kind = data ? CapturedRecord::Kind::data : CapturedRecord::Kind::lost;
  out.sequence = read_le(std::span<const std::byte>(header).subspan(8, 8));
  out.time_ns =
      static_cast<std::int64_t>(read_le(std::span<const std::byte>(header).subspan(16, 8)));
  // A tagged frame's key and type take kRawTagBytes more than the ring's tag holds at least; the
  // bound only keeps garbage from allocating, so the key's room is granted on top.
  if (data && size > max_payload_ + (tagged ? kRawTagBytes + kMaxKeyLength : 0)) {
    return fail(
        fmt::format("raw record {} (at byte {}, seq={}) holds {} bytes, more than the "
                    "channel's max message ({} bytes)",
                    frames_ + 1, offset_, out.sequence, size, max_payload_));
  }
  if (!data && size != 8) {
    return fail(fmt::format("raw lost record {} (at byte {}) has size {}, not 8", frames_ + 1,
                            offset_, size));
  }
  out.payload.resize(size);
  const auto body = read_up_to(out.payload);
  if (!body) return stopped_ ? CaptureRead::interrupted : CaptureRead::error;
  if (*body < size) {
    return fail(
        fmt::format("stdin ends {} bytes into the {}-byte payload of raw record {} (at "
                    "byte {}, seq={}): a cut capture?",
                    *body, size, frames_ + 1, offset_, out.sequence));
  }
  out.key.clear();
  out.message_type = 0;
  if (!data) {
    out.lost = read_le(out.payload);
    out.payload.clear();
  } else if (tagged) {
    if (size < kRawTagBytes) {
      return fail(fmt::format("raw keyed record {} (at byte {}, seq={}) has size {}, less than "
                              "its {}-byte key length and type",
                              frames_ + 1, offset_, out.sequence, size, kRawTagBytes));
    }
    const auto key_length = read_le(std::span<const std::byte>(out.payload).first(2));
    if (key_length > kMaxKeyLength || key_length > size - kRawTagBytes) {
      return fail(fmt::format("raw keyed record {} (at byte {}, seq={}) declares a key of {} "
                              "bytes: more than {} or than the record's {} bytes",
                              frames_ + 1, offset_, out.sequence, key_length, kMaxKeyLength,
                              size));
    }
    out.message_type =
        static_cast<std::uint16_t>(read_le(std::span<const std::byte>(out.payload).subspan(2, 2)));
    const auto key_begin = out.payload.begin() + kRawTagBytes;
    out.key.assign(key_begin, key_begin + static_cast<std::ptrdiff_t>(key_length));
    out.payload.erase(out.payload.begin(), key_begin + static_cast<std::ptrdiff_t>(key_length));
  }
  offset_ += kRawHeaderBytes + size;
  ++frames_;
  return CaptureRead::record;
}

tl::expected<std::optional<CapturedRecord>, std::string> parse_json_record_line(
    std::string_view line) {
  if (line.find_first_not_of(" \t\r") == std::string_view::npos) return std::nullopt;
  const nlohmann::json j = nlohmann::json::parse(line, nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded()) return tl::unexpected(std::string("not valid JSON"));
  if (!j.is_object()) return tl::unexpected(std::string("not a JSON object"));
  tl::expected<CapturedRecord, std::string> record;
  if (j.contains("payload_hex") || j.contains("payload_text")) {
    record = data_record(j);
  } else if (j.contains("lost")) {
    record = lost_record(j, "lost", "before_seq", /*sequence_is_next=*/true);
  } else if (j.value("type", "") == "gap") {
    record = lost_record(j, "count", "seq", /*sequence_is_next=*/false);
  } else {
    return tl::unexpected(std::string(
        "neither a record (with payload_hex or payload_text), a loss ({\"lost\":..}) nor a gap "
        "({\"type\":\"gap\",..})"));
  }
  if (!record) return tl::unexpected(record.error());
  return std::optional<CapturedRecord>(std::move(*record));
}

bool RecordWriter::data(const Message& m) {
  switch (format_) {
    case RecordFormat::raw:
      frame_.clear();
      append_raw_data(frame_, m.sequence, m.timestamp_ns, m.payload, m.key, m.message_type);
      return out_.write_bytes(frame_);
    case RecordFormat::payload:
      return out_.write_bytes(
          std::string_view(reinterpret_cast<const char*>(m.payload.data()), m.payload.size()));
    case RecordFormat::text:
    case RecordFormat::json:
      break;
  }
  return out_.write(record_line(m, format_));
}

bool RecordWriter::data(const Message& m, GroupDelivery delivery) {
  if (format_ != RecordFormat::json) return data(m);
  return out_.write(record_line(m, format_, delivery));
}

bool RecordWriter::lost(std::uint64_t lost, std::uint64_t before, std::int64_t seen_ns) {
  return loss(before - lost, lost, seen_ns, /*journal_gap=*/false);
}

bool RecordWriter::gap(std::uint64_t first_sequence, std::uint64_t count, std::int64_t seen_ns) {
  return loss(first_sequence, count, seen_ns, /*journal_gap=*/true);
}

bool RecordWriter::loss(std::uint64_t first_sequence, std::uint64_t count, std::int64_t seen_ns,
                        bool journal_gap) {
  switch (format_) {
    case RecordFormat::raw:
      frame_.clear();
      append_raw_lost(frame_, first_sequence, count, seen_ns);
      return out_.write_bytes(frame_);
    case RecordFormat::payload:
      return out_.error() == 0;
    case RecordFormat::text:
    case RecordFormat::json:
      break;
  }
  return out_.write(journal_gap ? gap_line(first_sequence, count, seen_ns, format_)
                                : lost_line(count, first_sequence + count, format_));
}

std::optional<std::string> binary_to_terminal_problem(RecordFormat format, std::FILE* out) {
  if (format != RecordFormat::raw && format != RecordFormat::payload) return std::nullopt;
  if (::isatty(::fileno(out)) == 0) return std::nullopt;
  return fmt::format(
      "--format {} writes binary; not to a terminal: redirect stdout to a file or "
      "a pipe (e.g. > capture.bin)",
      format == RecordFormat::raw ? "raw" : "payload");
}

}  // namespace shmbus::tools
