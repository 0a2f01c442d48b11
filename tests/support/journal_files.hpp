// Journal files written byte by byte for tests, without the journaler: segments from
// make_segment_header/make_record_header, index files beside them, and helpers that damage them
// (flip a byte, cut a file, append garbage). Tests of the reader, the scanner and the tools use
// these, so they do not depend on JournalWriter and can build any state a crash could leave.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "journal/format.hpp"

namespace shmbus::test {

// A fresh directory under $TMPDIR (or /tmp), removed with everything in it when the object dies.
class TempDir {
 public:
  explicit TempDir(std::string_view tag = "journal");
  ~TempDir();
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  const std::string& path() const { return path_; }
  std::string file(std::string_view name) const { return path_ + "/" + std::string(name); }

 private:
  std::string path_;
};

// One record as a builder placed it.
struct BuiltRecord {
  journal::RecordType type;
  std::uint64_t sequence;
  std::int64_t timestamp_ns;
  std::uint64_t gap_count;  // gap only
  std::uint64_t offset;     // in the segment file
  std::uint64_t size;       // header + payload + padding
  std::vector<std::byte> payload;  // data only
};

// A segment file's bytes, built in memory and written with pwrite.
class SegmentBuilder {
 public:
  SegmentBuilder(std::string dir, std::uint64_t first_sequence, std::uint64_t segment_number = 0,
                 std::string_view channel = "test.channel", std::int64_t created_ns = 1);

  // Append a record (or raw bytes); each returns the offset it starts at.
  std::uint64_t data(std::uint64_t sequence, std::int64_t timestamp_ns,
                     std::span<const std::byte> payload);
  std::uint64_t data(std::uint64_t sequence, std::int64_t timestamp_ns, std::string_view text);
  std::uint64_t gap(std::uint64_t first_sequence, std::uint64_t count, std::int64_t seen_ns);
  std::uint64_t raw(std::span<const std::byte> bytes);
  std::uint64_t zeros(std::size_t n);

  // Writes the segment file (whole, from offset 0) / its index file: one entry for the first
  // record at or after every kIndexInterval boundary, as the journaler writes them.
  void write() const;
  void write_index() const;
  // An index with only the entries for records below `offset` (an index that lags the segment).
  void write_index_up_to(std::uint64_t offset) const;

  std::string path() const;
  std::string index_path() const;
  std::uint64_t first_sequence() const { return first_sequence_; }
  std::uint64_t size() const { return bytes_.size(); }
  const std::vector<std::byte>& bytes() const { return bytes_; }
  const std::vector<BuiltRecord>& records() const { return records_; }
  std::vector<journal::IndexEntry> index_entries(std::uint64_t below_offset = UINT64_MAX) const;

 private:
  std::uint64_t append_record(journal::RecordType type, std::uint64_t sequence,
                              std::int64_t timestamp_ns, std::span<const std::byte> payload,
                              std::uint64_t gap_count);

  std::string dir_;
  std::uint64_t first_sequence_;
  std::vector<std::byte> bytes_;
  std::vector<BuiltRecord> records_;
};

// Deterministic payload bytes for (sequence, size): tests check content, not just counts.
std::vector<std::byte> journal_payload(std::uint64_t sequence, std::size_t size);

std::vector<std::byte> read_whole_file(const std::string& path);
void write_whole_file(const std::string& path, std::span<const std::byte> bytes);
void flip_byte(const std::string& path, std::uint64_t offset, std::uint8_t mask = 0x40);
void truncate_file(const std::string& path, std::uint64_t size);
void append_to_file(const std::string& path, std::span<const std::byte> bytes);

}  // namespace shmbus::test
