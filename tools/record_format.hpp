// Records as tail and replay write them, and as `pub --format raw|json` reads them back, so that
// a capture can be republished byte for byte.
//
// raw: a sequence of frames, each a 24-byte header and then `size` bytes; every field little
// endian, nothing between frames, no header for the stream (captures concatenate):
//   offset  0   4 bytes  magic: "SBRD" a data record, "SBRK" a data record with a key and/or a
//                        message type, "SBRL" lost sequences
//   offset  4   u32      size: the bytes that follow the header
//   offset  8   u64      sequence: data: the record's; lost: the first sequence lost
//   offset 16   i64      time_ns: data: its publish time; lost: when the loss was seen
//   offset 24   size     SBRD: the payload; SBRL: 8 bytes, the number of sequences lost (u64);
//                        SBRK: u16 key length K (at most 256), u16 message type (0: none), K key
//                        bytes, then the payload
// "SBRL" frames stand for tail's "# lost N messages" lines and replay's gap records. Records
// without key and type are SBRD frames, so captures of untagged channels are as before.
//
// json: the lines of tail/replay --format json: a record {"seq":..,"payload_hex":"..",...} (or
// with only payload_text; key_hex or key, and message_type, when it has them), a loss
// {"lost":N,"before_seq":S}, a gap {"type":"gap","seq":S,"count":N,...}.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include <tl/expected.hpp>

#include "shmbus/shmbus.hpp"
#include "tools/format.hpp"
#include "tools/line_output.hpp"

namespace shmbus::tools {

inline constexpr std::size_t kRawHeaderBytes = 24;
inline constexpr std::string_view kRawDataMagic = "SBRD";
inline constexpr std::string_view kRawLostMagic = "SBRL";
inline constexpr std::string_view kRawTaggedMagic = "SBRK";
inline constexpr std::size_t kRawTagBytes = 4;  // SBRK: key length and message type

// Appends one frame to `out`: SBRD, or SBRK when the record has a key or a message type.
void append_raw_data(std::string& out, std::uint64_t sequence, std::int64_t time_ns,
                     std::span<const std::byte> payload, std::span<const std::byte> key = {},
                     std::uint16_t message_type = 0);
void append_raw_lost(std::string& out, std::uint64_t first_sequence, std::uint64_t count,
                     std::int64_t seen_ns);

// One record read back from a capture.
struct CapturedRecord {
  enum class Kind : std::uint8_t { data, lost };
  Kind kind = Kind::data;
  std::uint64_t sequence = 0;  // as captured; a republished record gets the channel's next one
  std::int64_t time_ns = 0;
  std::vector<std::byte> payload;  // data
  std::vector<std::byte> key;      // data: empty when it has none
  std::uint16_t message_type = 0;  // data: 0 when none
  std::uint64_t lost = 0;          // lost: how many sequences, from `sequence` on
};

enum class CaptureRead : std::uint8_t {
  record,       // `out` holds the next record
  end,          // the input ended after a whole record (or was empty)
  interrupted,  // a stop was requested (SIGINT/SIGTERM) while waiting for input
  error,        // error() says what is wrong and where
};

// Reads the frames of a raw capture. A frame whose size exceeds `max_payload` is an error before
// its payload is read, so garbage input cannot make it allocate gigabytes.
class RawRecordReader {
 public:
  RawRecordReader(std::FILE* in, std::uint32_t max_payload) : in_(in), max_payload_(max_payload) {}
  CaptureRead next(CapturedRecord& out);
  const std::string& error() const noexcept { return error_; }

 private:
  // Bytes read into `to` (fewer only at the end of input); nothing on error or stop.
  std::optional<std::size_t> read_up_to(std::span<std::byte> to);
  CaptureRead fail(std::string message);

  std::FILE* in_;
  std::uint32_t max_payload_;
  std::uint64_t offset_ = 0;  // of the next frame in the input
  std::uint64_t frames_ = 0;
  bool stopped_ = false;
  std::string error_;
};

// A line of tail/replay --format json as a record. Nothing for a blank line. A record line needs
// payload_hex or payload_text (payload_hex wins; given both, they must agree); its "size", if
// present, must match the payload. Errors name the field and what is wrong, not the line number.
tl::expected<std::optional<CapturedRecord>, std::string> parse_json_record_line(
    std::string_view line);

// Writes records in one RecordFormat: lines (text, json), raw frames, or bare payloads (loss and
// gap records are then left out). Errors as LineOutput.
class RecordWriter {
 public:
  // flush_each: flush after every record (tail: a pipeline sees each at once); otherwise the
  // owner calls flush() (before it waits, and at the end).
  RecordWriter(std::FILE* out, RecordFormat format, bool flush_each)
      : out_(out, flush_each), format_(format) {}

  bool data(const Message& message);
  // A record a consumer group delivered (tail --group): json lines also say how
  // (record_line's GroupDelivery form); every other format writes it as data() does.
  bool data(const Message& message, GroupDelivery delivery);
  // tail: `lost` messages were lost just before sequence `before`, seen at `seen_ns`.
  bool lost(std::uint64_t lost, std::uint64_t before, std::int64_t seen_ns);
  // replay: a journal's gap record.
  bool gap(std::uint64_t first_sequence, std::uint64_t count, std::int64_t seen_ns);
  bool flush() noexcept { return out_.flush(); }
  void fail(int error) noexcept { out_.fail(error); }
  int error() const noexcept { return out_.error(); }

 private:
  // Both kinds of loss: one SBRL frame in raw; in text and json, tail's lost line or the journal's
  // gap line.
  bool loss(std::uint64_t first_sequence, std::uint64_t count, std::int64_t seen_ns,
            bool journal_gap);

  LineOutput out_;
  RecordFormat format_;
  std::string frame_;  // reused for raw frames
};

// Why `format` may not be written to `out`: raw and payload are binary, refused on a terminal.
std::optional<std::string> binary_to_terminal_problem(RecordFormat format, std::FILE* out);

}  // namespace shmbus::tools
