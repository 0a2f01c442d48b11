// The on-disk journal format, shared by the writer, the reader, recovery and the tools. This file is
// the contract; docs/journal-format.md describes the same bytes in prose. Everything is little
// endian (the only byte order shmbus runs on; static_asserts below pin the layout).
//
// A journal is a directory of segment files, each named after the first sequence it may hold
// (`00000000000000000001.journal`), with an index file beside each (`....index`). A segment is a
// 4 KiB header followed by records, each 8-byte aligned. Sequences increase by exactly one from
// record to record across the whole journal; a gap record stands for a range that was lost before
// the journaler saw it, so the sequence still continues without a hole.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>

#include "shmbus/journal_reader.hpp"  // RecordType

namespace shmbus::journal {

inline constexpr char kSegmentMagic[8] = {'S', 'H', 'M', 'B', 'J', 'R', 'N', 'L'};
inline constexpr char kIndexMagic[8] = {'S', 'H', 'M', 'B', 'J', 'I', 'D', 'X'};
// Version 2 adds tagged data records (kRecordFlagTagged); version 1 files, which cannot hold them,
// are read as they are. A version 1 reader refuses version 2 files by their version.
inline constexpr std::uint32_t kFormatVersion = 2;
inline constexpr std::uint32_t kOldestReadableVersion = 1;
constexpr bool readable_version(std::uint32_t version) noexcept {
  return version >= kOldestReadableVersion && version <= kFormatVersion;
}
// The segment header fills one page, so records start page-aligned (O_DIRECT writes need that).
inline constexpr std::uint32_t kSegmentHeaderSize = 4096;
inline constexpr std::uint32_t kRecordHeaderSize = 32;
inline constexpr std::uint32_t kRecordAlignment = 8;
// A record longer than this is garbage, whatever its checksum says (shmbus rings cap messages at
// 1/4 of a ring of at most 1 TiB; journals refuse anything above 1 GiB).
inline constexpr std::uint32_t kMaxRecordPayload = 1u << 30;
inline constexpr std::size_t kChannelNameSize = 128;

inline constexpr std::string_view kSegmentSuffix = ".journal";
inline constexpr std::string_view kIndexSuffix = ".index";

// The first kSegmentHeaderSize bytes of a segment file (the rest of the page is zero).
struct SegmentHeader {
  char magic[8];                    // kSegmentMagic
  std::uint32_t version;            // kFormatVersion
  std::uint32_t header_size;        // kSegmentHeaderSize
  std::uint64_t first_sequence;     // the sequence of the segment's first record
  std::uint64_t segment_number;     // 0, 1, 2 ... in the order the journaler created them
  std::uint64_t channel_incarnation;  // the channel's random incarnation id (0: unknown)
  std::int64_t created_ns;          // CLOCK_REALTIME when the segment was created
  char channel[kChannelNameSize];   // NUL-terminated channel name
  std::uint32_t reserved;           // zero
  std::uint32_t header_crc;         // masked CRC32C of every byte above
};
static_assert(sizeof(SegmentHeader) == 184);

// Every record starts with this header; `length` payload bytes follow, then zero padding up to the
// next multiple of kRecordAlignment.
struct RecordHeader {
  std::uint32_t crc;          // masked CRC32C of bytes 4..31 of this header and the payload
  std::uint32_t length;       // payload bytes
  std::uint64_t sequence;     // data: the message's sequence; gap: the first lost sequence
  std::int64_t timestamp_ns;  // data: publish time (Unix epoch ns); gap: when the loss was seen
  std::uint16_t type;         // RecordType
  std::uint16_t flags;        // kRecordFlagTagged (data records only) or zero
  std::uint32_t reserved;     // zero
};
static_assert(sizeof(RecordHeader) == kRecordHeaderSize);

// A data record with this flag carries a key and/or a message type: its payload starts with a
// TagPrefix, then key_length key bytes, zero padding to a multiple of 8, then the message's
// payload (the same bytes as a tagged record in the ring, core/layout.hpp). `length` counts it all.
inline constexpr std::uint16_t kRecordFlagTagged = 1;
struct TagPrefix {
  std::uint16_t key_length;    // at most kMaxKeyLength
  std::uint16_t message_type;  // 0: none
  std::uint32_t reserved;      // zero
};
static_assert(sizeof(TagPrefix) == 8);
inline constexpr std::uint32_t kMaxKeyLength = 256;
constexpr std::uint32_t tag_size(std::uint32_t key_length) noexcept {
  return static_cast<std::uint32_t>(sizeof(TagPrefix)) + ((key_length + 7) & ~7u);
}
// A tagged payload taken apart; check_record has vouched for the prefix.
struct TaggedPayload {
  std::span<const std::byte> key;
  std::uint16_t message_type = 0;
  std::span<const std::byte> payload;
};
// Takes a tagged record's payload apart; nullopt when the prefix does not fit in it.
std::optional<TaggedPayload> split_tagged(std::span<const std::byte> payload) noexcept;
// Lays a tagged payload (tag_size(key.size()) + payload.size() bytes) at `at`.
void lay_tagged_payload(std::byte* at, std::span<const std::byte> key, std::uint16_t message_type,
                        std::span<const std::byte> payload) noexcept;

// The payload of a gap record.
struct GapPayload {
  std::uint64_t count;  // sequences lost: [sequence, sequence + count)
};
static_assert(sizeof(GapPayload) == 8);

// The index file beside a segment: a header, then one entry every kIndexInterval bytes of segment
// (the first record at or after each such boundary), appended as the segment grows. The index is a
// hint: a reader checks the record an entry points at, and recovery rebuilds a damaged index from
// the segment, which is the truth.
inline constexpr std::uint64_t kIndexInterval = 64 << 10;
struct IndexHeader {
  char magic[8];                 // kIndexMagic
  std::uint32_t version;         // kFormatVersion
  std::uint32_t entry_size;      // sizeof(IndexEntry)
  std::uint64_t first_sequence;  // equals the segment's
  std::uint64_t reserved;        // zero
};
static_assert(sizeof(IndexHeader) == 32);
struct IndexEntry {
  std::uint64_t sequence;      // of the record at `offset`
  std::int64_t max_timestamp_ns;  // the largest data timestamp at or before that record in the
                                  // segment (non-decreasing, so time seeks can bisect)
  std::uint64_t offset;        // byte offset of the record in the segment file
  std::uint32_t crc;           // masked CRC32C of the three fields above
  std::uint32_t reserved;      // zero
};
static_assert(sizeof(IndexEntry) == 32);

// The durable mark: DIR/journal.durable, one 32-byte record the writer rewrites (write + data
// sync, after the fdatasyncs of a round completed) before it reports a round's records durable,
// and recovery writes after it synced the newest segment. It says "every record up to
// durable_sequence was reported durable", so that bytes before that point are never taken for a
// torn tail: a record the writer reported durable that is not intact is damage. A journal without
// the file (written under FsyncPolicy::never, or by a writer older than the file) has no known
// durable point. The segment and index formats do not change with it (still version 1); the file
// has a version of its own.
inline constexpr std::string_view kDurableMarkFileName = "journal.durable";
inline constexpr char kDurableMarkMagic[8] = {'S', 'H', 'M', 'B', 'J', 'D', 'U', 'R'};
inline constexpr std::uint32_t kDurableMarkVersion = 1;
struct DurableMark {
  char magic[8];                   // kDurableMarkMagic
  std::uint32_t version;           // kDurableMarkVersion
  std::uint32_t reserved;          // zero
  std::uint64_t durable_sequence;  // every record up to it was reported durable (0: none)
  std::uint32_t reserved2;         // zero
  std::uint32_t crc;               // masked CRC32C of the bytes above
};
static_assert(sizeof(DurableMark) == 32);

// CRC32C (Castagnoli), in journal/crc32c.cpp. Uses the SSE4.2 instruction (three interleaved
// chains on long inputs) when the CPU has it and a table otherwise.
std::uint32_t crc32c(std::uint32_t crc, const void* data, std::size_t n) noexcept;
inline std::uint32_t crc32c(const void* data, std::size_t n) noexcept { return crc32c(0, data, n); }
// The table path whatever the CPU: the reference the fast path is tested against.
std::uint32_t crc32c_software(std::uint32_t crc, const void* data, std::size_t n) noexcept;
// Stored checksums are masked (rotated and offset, as LevelDB does) so that a payload which itself
// contains journal bytes does not checksum to something that looks like a valid stored CRC.
constexpr std::uint32_t mask_crc(std::uint32_t crc) noexcept {
  return ((crc >> 15) | (crc << 17)) + 0xa282ead8u;
}
constexpr std::uint32_t unmask_crc(std::uint32_t masked) noexcept {
  const std::uint32_t rot = masked - 0xa282ead8u;
  return (rot >> 17) | (rot << 15);
}

constexpr std::uint64_t padded_record_size(std::uint64_t payload_length) noexcept {
  return (kRecordHeaderSize + payload_length + kRecordAlignment - 1) & ~std::uint64_t{kRecordAlignment - 1};
}

// Fills `header` (crc included) for a record with this payload.
void make_record_header(RecordHeader& header, RecordType type, std::uint64_t sequence,
                        std::int64_t timestamp_ns, std::span<const std::byte> payload,
                        std::uint16_t flags = 0) noexcept;
// The CRC32C of a record's header bytes 4..31: continue it over the payload with crc32c(crc, ...)
// and mask the result to get the stored crc (for readers that take the payload in pieces).
std::uint32_t record_crc_start(const RecordHeader& header) noexcept;
// Computes and stores the crc of a record laid out contiguously at `record` (header then
// `payload_length` payload bytes), the other header fields already filled in: the same value
// make_record_header computes, in one pass over the bytes where they will be written.
void seal_record(std::byte* record, std::uint32_t payload_length) noexcept;
// Lays a whole record at `at`, which has room for padded_record_size(payload.size()) bytes: the
// header (crc included, as make_record_header computes it), the payload and the zero padding.
// Returns the bytes laid. The writer's one way of putting a record into a write buffer.
std::uint64_t lay_record(std::byte* at, RecordType type, std::uint64_t sequence,
                         std::int64_t timestamp_ns, std::span<const std::byte> payload,
                         std::uint16_t flags = 0) noexcept;
// lay_record's twin for bulk appends (journal/record_run.hpp; in journal/crc32c.cpp): the same
// bytes at `at` (8-byte aligned), written with non-temporal stores, which bypass the cache (the buffer goes to the disk,
// not back to this CPU, so pulling its lines in first is wasted memory traffic), the payload read
// once for both the copy and the checksum. Such stores are weakly ordered: stream_fence() must
// run before the bytes are read again or handed to the kernel.
std::uint64_t stream_record(std::byte* at, RecordType type, std::uint64_t sequence,
                            std::int64_t timestamp_ns, std::span<const std::byte> payload) noexcept;
// Makes every stream_record before it visible, in order, to this CPU, others and devices.
void stream_fence() noexcept;
// Why a record header with its payload is not a valid record, or nullopt if it is.
// `payload` must hold header.length bytes (the caller checks the length against the file first).
std::optional<std::string> check_record(const RecordHeader& header,
                                        std::span<const std::byte> payload);
// Checks only the fields that need no payload (type, length bound, reserved bits), so a reader can
// decide whether to trust `length` before reading that many bytes.
std::optional<std::string> check_record_fields(const RecordHeader& header);

void make_segment_header(SegmentHeader& header, std::string_view channel,
                         std::uint64_t incarnation, std::uint64_t first_sequence,
                         std::uint64_t segment_number, std::int64_t created_ns) noexcept;
// Why the header is not a valid segment header of a format version this build reads, or nullopt.
std::optional<std::string> check_segment_header(const SegmentHeader& header);

void make_index_header(IndexHeader& header, std::uint64_t first_sequence) noexcept;
std::optional<std::string> check_index_header(const IndexHeader& header);
void make_index_entry(IndexEntry& entry, std::uint64_t sequence, std::int64_t max_timestamp_ns,
                      std::uint64_t offset) noexcept;
bool index_entry_valid(const IndexEntry& entry) noexcept;

void make_durable_mark(DurableMark& mark, std::uint64_t durable_sequence) noexcept;
// Why the bytes are not a durable mark this build reads, or nullopt.
std::optional<std::string> check_durable_mark(const DurableMark& mark);

// "00000000000000000042.journal" for first sequence 42, and back (nullopt for other names).
std::string segment_file_name(std::uint64_t first_sequence);
std::string index_file_name(std::uint64_t first_sequence);
std::optional<std::uint64_t> parse_segment_file_name(std::string_view name);

}  // namespace shmbus::journal
