#include "journal/format.hpp"

#include <algorithm>
#include <charconv>
#include <cstring>

#include <fmt/format.h>

namespace shmbus::journal {

std::uint32_t record_crc_start(const RecordHeader& h) noexcept {
  return crc32c(0, reinterpret_cast<const unsigned char*>(&h) + 4, kRecordHeaderSize - 4);
}

namespace {

// crc32c(crc, ...) continues a finished crc: this is the CRC32C of bytes 4..31 and the payload as
// one stream, the same value seal_record computes over the bytes laid out together.
std::uint32_t record_crc(const RecordHeader& h, std::span<const std::byte> payload) noexcept {
  return mask_crc(crc32c(record_crc_start(h), payload.data(), payload.size()));
}

// A record header's fields, its crc still 0.
RecordHeader header_fields(RecordType type, std::uint64_t sequence, std::int64_t timestamp_ns,
                           std::size_t payload_length, std::uint16_t flags) noexcept {
  RecordHeader h;
  h.crc = 0;
  h.length = static_cast<std::uint32_t>(payload_length);
  h.sequence = sequence;
  h.timestamp_ns = timestamp_ns;
  h.type = static_cast<std::uint16_t>(type);
  h.flags = flags;
  h.reserved = 0;
  return h;
}

}  // namespace

void make_record_header(RecordHeader& h, RecordType type, std::uint64_t sequence,
                        std::int64_t timestamp_ns, std::span<const std::byte> payload,
                        std::uint16_t flags) noexcept {
  h = header_fields(type, sequence, timestamp_ns, payload.size(), flags);
  h.crc = record_crc(h, payload);
}

void seal_record(std::byte* record, std::uint32_t payload_length) noexcept {
  const std::uint32_t crc = mask_crc(crc32c(record + 4, kRecordHeaderSize - 4 + payload_length));
  std::memcpy(record, &crc, sizeof crc);
}

std::uint64_t lay_record(std::byte* at, RecordType type, std::uint64_t sequence,
                         std::int64_t timestamp_ns, std::span<const std::byte> payload,
                         std::uint16_t flags) noexcept {
  const std::uint64_t size = padded_record_size(payload.size());
  // The padding first, as one word over the record's last 8 bytes (a record is at least a 32-byte
  // header): the header and the payload then overwrite whatever part of it is theirs.
  constexpr std::uint64_t kZeroWord = 0;
  std::memcpy(at + size - sizeof kZeroWord, &kZeroWord, sizeof kZeroWord);
  const RecordHeader h = header_fields(type, sequence, timestamp_ns, payload.size(), flags);
  std::memcpy(at, &h, sizeof h);
  if (!payload.empty()) std::memcpy(at + sizeof h, payload.data(), payload.size());
  seal_record(at, h.length);
  return size;
}

std::optional<std::string> check_record_fields(const RecordHeader& h) {
  if (h.type != static_cast<std::uint16_t>(RecordType::data) &&
      h.type != static_cast<std::uint16_t>(RecordType::gap)) {
    return fmt::format("unknown record type {}", h.type);
  }
  if (h.length > kMaxRecordPayload) return fmt::format("record length {} is too large", h.length);
  if (h.type == static_cast<std::uint16_t>(RecordType::gap) && h.length != sizeof(GapPayload)) {
    return fmt::format("gap record has length {} (expected {})", h.length, sizeof(GapPayload));
  }
  if ((h.flags & ~kRecordFlagTagged) != 0 || h.reserved != 0) {
    return std::string("reserved header bits are set");
  }
  const bool data = h.type == static_cast<std::uint16_t>(RecordType::data);
  if ((h.flags & kRecordFlagTagged) != 0 && !data) {
    return std::string("a gap record marked tagged");
  }
  if (h.sequence == 0) return std::string("sequence 0 (sequences start at 1)");
  return std::nullopt;
}

std::optional<std::string> check_record(const RecordHeader& h, std::span<const std::byte> payload) {
  if (auto bad = check_record_fields(h)) return bad;
  if (payload.size() != h.length) return std::string("payload size does not match the length");
  if (record_crc(h, payload) != h.crc) return std::string("checksum mismatch");
  if (h.type == static_cast<std::uint16_t>(RecordType::gap)) {
    GapPayload g;
    std::memcpy(&g, payload.data(), sizeof g);
    if (g.count == 0 || g.count > UINT64_MAX - h.sequence) {
      return fmt::format("gap record counts {} sequences", g.count);
    }
  }
  if ((h.flags & kRecordFlagTagged) != 0 && !split_tagged(payload)) {
    return fmt::format("tagged record of {} bytes has a bad tag (key longer than {} bytes or than "
                       "the record, or reserved bits set)",
                       h.length, kMaxKeyLength);
  }
  return std::nullopt;
}

std::optional<TaggedPayload> split_tagged(std::span<const std::byte> payload) noexcept {
  if (payload.size() < sizeof(TagPrefix)) return std::nullopt;
  TagPrefix prefix;
  std::memcpy(&prefix, payload.data(), sizeof prefix);
  if (prefix.reserved != 0 || prefix.key_length > kMaxKeyLength ||
      tag_size(prefix.key_length) > payload.size()) {
    return std::nullopt;
  }
  return TaggedPayload{payload.subspan(sizeof prefix, prefix.key_length), prefix.message_type,
                       payload.subspan(tag_size(prefix.key_length))};
}

void lay_tagged_payload(std::byte* at, std::span<const std::byte> key, std::uint16_t message_type,
                        std::span<const std::byte> payload) noexcept {
  const TagPrefix prefix{static_cast<std::uint16_t>(key.size()), message_type, 0};
  std::memcpy(at, &prefix, sizeof prefix);
  const std::uint32_t tag = tag_size(static_cast<std::uint32_t>(key.size()));
  std::memset(at + sizeof prefix, 0, tag - sizeof prefix);
  if (!key.empty()) std::memcpy(at + sizeof prefix, key.data(), key.size());
  if (!payload.empty()) std::memcpy(at + tag, payload.data(), payload.size());
}

void make_segment_header(SegmentHeader& h, std::string_view channel, std::uint64_t incarnation,
                         std::uint64_t first_sequence, std::uint64_t segment_number,
                         std::int64_t created_ns) noexcept {
  std::memset(&h, 0, sizeof h);
  std::memcpy(h.magic, kSegmentMagic, sizeof h.magic);
  h.version = kFormatVersion;
  h.header_size = kSegmentHeaderSize;
  h.first_sequence = first_sequence;
  h.segment_number = segment_number;
  h.channel_incarnation = incarnation;
  h.created_ns = created_ns;
  std::memcpy(h.channel, channel.data(), std::min(channel.size(), kChannelNameSize - 1));
  h.header_crc = mask_crc(crc32c(&h, offsetof(SegmentHeader, header_crc)));
}

std::optional<std::string> check_segment_header(const SegmentHeader& h) {
  if (std::memcmp(h.magic, kSegmentMagic, sizeof h.magic) != 0) {
    return std::string("not a shmbus journal segment (bad magic)");
  }
  if (!readable_version(h.version)) {
    return fmt::format("journal format version {} (this build reads versions {} to {})",
                       h.version, kOldestReadableVersion, kFormatVersion);
  }
  if (h.header_size != kSegmentHeaderSize) {
    return fmt::format("segment header size {} (expected {})", h.header_size, kSegmentHeaderSize);
  }
  if (mask_crc(crc32c(&h, offsetof(SegmentHeader, header_crc))) != h.header_crc) {
    return std::string("segment header checksum mismatch");
  }
  if (h.first_sequence == 0) return std::string("segment header says first sequence 0");
  if (std::memchr(h.channel, '\0', sizeof h.channel) == nullptr) {
    return std::string("segment header channel name is not terminated");
  }
  return std::nullopt;
}

void make_index_header(IndexHeader& h, std::uint64_t first_sequence) noexcept {
  std::memset(&h, 0, sizeof h);
  std::memcpy(h.magic, kIndexMagic, sizeof h.magic);
  h.version = kFormatVersion;
  h.entry_size = sizeof(IndexEntry);
  h.first_sequence = first_sequence;
}

std::optional<std::string> check_index_header(const IndexHeader& h) {
  if (std::memcmp(h.magic, kIndexMagic, sizeof h.magic) != 0) return std::string("bad index magic");
  if (!readable_version(h.version)) return fmt::format("index format version {}", h.version);
  if (h.entry_size != sizeof(IndexEntry)) return fmt::format("index entry size {}", h.entry_size);
  return std::nullopt;
}

void make_index_entry(IndexEntry& e, std::uint64_t sequence, std::int64_t max_timestamp_ns,
                      std::uint64_t offset) noexcept {
  e.sequence = sequence;
  e.max_timestamp_ns = max_timestamp_ns;
  e.offset = offset;
  e.reserved = 0;
  e.crc = mask_crc(crc32c(&e, offsetof(IndexEntry, crc)));
}

bool index_entry_valid(const IndexEntry& e) noexcept {
  return e.reserved == 0 && e.crc == mask_crc(crc32c(&e, offsetof(IndexEntry, crc)));
}

void make_durable_mark(DurableMark& mark, std::uint64_t durable_sequence) noexcept {
  std::memset(&mark, 0, sizeof mark);
  std::memcpy(mark.magic, kDurableMarkMagic, sizeof mark.magic);
  mark.version = kDurableMarkVersion;
  mark.durable_sequence = durable_sequence;
  mark.crc = mask_crc(crc32c(&mark, offsetof(DurableMark, crc)));
}

std::optional<std::string> check_durable_mark(const DurableMark& mark) {
  if (std::memcmp(mark.magic, kDurableMarkMagic, sizeof mark.magic) != 0) {
    return std::string("not a shmbus durable mark (bad magic)");
  }
  if (mark.version != kDurableMarkVersion) {
    return fmt::format("durable mark version {} (this build reads version {})", mark.version,
                       kDurableMarkVersion);
  }
  if (mask_crc(crc32c(&mark, offsetof(DurableMark, crc))) != mark.crc) {
    return std::string("durable mark checksum mismatch");
  }
  if (mark.reserved != 0 || mark.reserved2 != 0) return std::string("durable mark reserved bits are set");
  return std::nullopt;
}

std::string segment_file_name(std::uint64_t first_sequence) {
  return fmt::format("{:020}{}", first_sequence, kSegmentSuffix);
}

std::string index_file_name(std::uint64_t first_sequence) {
  return fmt::format("{:020}{}", first_sequence, kIndexSuffix);
}

std::optional<std::uint64_t> parse_segment_file_name(std::string_view name) {
  if (name.size() != 20 + kSegmentSuffix.size() || !name.ends_with(kSegmentSuffix)) {
    return std::nullopt;
  }
  std::uint64_t v = 0;
  const auto [end, ec] = std::from_chars(name.data(), name.data() + 20, v);
  if (ec != std::errc{} || end != name.data() + 20 || v == 0) return std::nullopt;
  return v;
}

}  // namespace shmbus::journal
