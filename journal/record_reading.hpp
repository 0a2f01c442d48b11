// Reading records out of one segment file: the pread window and the per-record checks that the
// segment scanner and the journal reader share. Internal to journal/ (not a public interface).
//
// Nothing here trusts a byte before checking it: a record's length is bounded by the file before
// anything is read for it, so hostile files cost at most their own size in memory, never a crash.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "journal/format.hpp"
#include "shmbus/result.hpp"

namespace shmbus::journal::detail {

// An error for a failed system call on `path` (ENOENT -> not_found, EACCES -> permission_denied).
Error file_error(const std::string& what, const std::string& path, int err);

// A read-only file read with pread through one buffer (never mmap: a journaler truncating a torn
// tail must not be able to SIGBUS a reader). Reads go in chunks of at least `chunk` bytes so that
// walking small records costs one system call per chunk; a larger request grows the buffer.
class FileWindow {
 public:
  static constexpr std::size_t kDefaultChunk = 1 << 20;

  explicit FileWindow(std::size_t chunk = kDefaultChunk) : chunk_(chunk) {}
  FileWindow(FileWindow&& other) noexcept;
  FileWindow& operator=(FileWindow&& other) noexcept;
  FileWindow(const FileWindow&) = delete;
  FileWindow& operator=(const FileWindow&) = delete;
  ~FileWindow();

  // Opens `path` and sets the limit to its current size.
  Result<void> open(const std::string& path);
  void close() noexcept;
  bool is_open() const noexcept { return fd_ >= 0; }
  const std::string& path() const noexcept { return path_; }

  // Reads never look past `limit` bytes (the size the file had when it was listed), so a reader
  // sees one consistent snapshot of a file that the journaler keeps appending to.
  void set_limit(std::uint64_t limit) noexcept;
  std::uint64_t limit() const noexcept { return limit_; }
  // The file's size now (fstat).
  Result<std::uint64_t> current_size() const;

  // Bytes [offset, offset + n), or an empty span if they are not all below the limit (or the file
  // is shorter than that now). The view is valid until the next call on this window.
  Result<std::span<const std::byte>> view(std::uint64_t offset, std::size_t n);
  // Forgets the buffered bytes: the next view reads the file again (the journaler may have
  // rewritten its tail block since).
  void invalidate() noexcept { buffered_ = 0; }

  // Where written bytes may be, for searches that need not read what no write reached: the
  // first offset at or after `offset` that is not in a hole of the file (a stretch never written,
  // or space the journaler preallocated: both read as zeros), or the limit if there is none below
  // it; and the end of the written stretch holding `offset` (the next hole, or the limit).
  // Filesystems that do not track holes report every byte as written. A write landing after the
  // question is as if it landed after the search: the answer holds for this snapshot.
  std::uint64_t next_written(std::uint64_t offset) const noexcept;
  std::uint64_t written_end(std::uint64_t offset) const noexcept;

 private:
  int fd_ = -1;
  std::string path_;
  std::uint64_t limit_ = 0;
  std::size_t chunk_;
  std::vector<std::byte> buffer_;
  std::uint64_t buffer_offset_ = 0;  // file offset of buffer_[0]
  std::size_t buffered_ = 0;         // valid bytes in buffer_
};

// Reads and checks the segment header; also checks that a file name that parses as a segment name
// names the header's first sequence. Errors name the path (corrupt or version_mismatch).
Result<SegmentHeader> read_segment_header(FileWindow& file);

// What lies at one offset of a segment.
struct Probe {
  enum Kind : std::uint8_t {
    record,   // a whole record that passes check_record (its sequence is not judged here)
    end,      // the offset is exactly the end of the file (limit)
    invalid,  // anything else; `why` says what
  };
  Kind kind = end;
  RecordHeader header{};
  std::span<const std::byte> payload;  // record only; valid until the next call on the window
  std::uint64_t size = 0;              // record only: header + payload + padding
  std::string why;                     // invalid only
  std::uint64_t gap_count() const noexcept;  // gap records: GapPayload::count
  std::uint64_t next_sequence() const noexcept;
};
Result<Probe> probe_record(FileWindow& file, std::uint64_t offset);

// A record found by searching forward from a bad one.
struct FoundRecord {
  std::uint64_t offset;
  RecordHeader header;
};
// The first 8-byte aligned offset at or after `from` holding a valid record whose sequence is at
// least `min_sequence`. Tells damage (something valid follows) from a torn tail (nothing does).
// Payloads are checksummed in chunks, so a forged length costs no memory beyond one chunk.
Result<std::optional<FoundRecord>> find_valid_record(FileWindow& file, std::uint64_t from,
                                                     std::uint64_t min_sequence);

}  // namespace shmbus::journal::detail
