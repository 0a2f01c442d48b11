// Reading a journal directory (public API, installed as <shmbus/journal_reader.hpp>): seek by sequence or by time, then iterate records in sequence order,
// gap records included. Used by `shmbus replay`, `shmbus journal`, the spill policy and tests.
//
// The reader reads with pread into its own buffers (never mmap: a journaler truncating a torn tail
// must not be able to SIGBUS a reader). Views it hands out point into those buffers and stay valid
// until the next call to next(), seek_*() or refresh().
//
// Damage: a record that fails its checks in the middle of the journal (valid records follow it) is
// reported as ReadStatus::damaged with a message naming the segment, offset and expected sequence;
// the reader never skips it silently. An invalid record at the very end of the newest segment is
// the journaler's unfinished write (or a torn tail after a crash): that is ReadStatus::end.
// A segment that does not begin where the one before it ended (journal/continuity.hpp) is damage
// too, reported at its first record's offset.
// A read error (EIO) is reported like damage: ReadStatus::damaged with the system's message.
#pragma once

#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "shmbus/result.hpp"

namespace shmbus::journal {

// What a journal record holds (on disk: the record header's type field, docs/journal-format.md).
enum class RecordType : std::uint16_t {
  data = 1,  // a message of the channel: sequence, publish timestamp, payload (and the key and
             // message type it was published with, if any)
  gap = 2,   // `count` sequences from `sequence` on were lost before the journaler saw them;
             // payload: GapPayload
};


struct SegmentInfo {
  std::string path;              // segment file
  std::uint64_t first_sequence;  // from the file name (checked against the header)
  std::uint64_t file_bytes;      // size when the directory was last listed
};

// The segment files of `dir` (regular files named as segments), oldest first, with their sizes now.
// A directory with no segment is a valid, empty journal; a missing or unreadable directory is an
// error naming it (not_found / permission_denied).
Result<std::vector<SegmentInfo>> list_segments(const std::string& dir);

// One record as read from the journal.
struct JournalRecord {
  RecordType type;               // data or gap
  std::uint64_t sequence;        // data: its sequence; gap: the first lost sequence
  std::int64_t timestamp_ns;     // data: publish time; gap: when the loss was seen
  std::span<const std::byte> payload;  // data only; valid until the next call on the reader
  std::uint64_t gap_count;       // gap only: sequences lost from `sequence` on
  std::uint64_t offset;          // byte offset of the record in its segment
  std::size_t segment;           // index into segments()
  std::span<const std::byte> key{};  // data: the message's key; empty when it has none
  std::uint16_t message_type = 0;    // data: the message's application type; 0 when none
  // The sequence the record after this one carries: sequence + 1, or sequence + gap_count.
  std::uint64_t next_sequence() const noexcept {
    return type == RecordType::gap ? sequence + gap_count : sequence + 1;
  }
};

enum class ReadStatus : std::uint8_t {
  record,   // `out` holds the next record
  end,      // nothing more (yet): call refresh() later to see what the journaler appended since
  damaged,  // the next record is damaged; last_error() says where. The reader stays before it.
};

class JournalReader {
 public:
  // Lists the directory's segments (list_segments, with its errors).
  static Result<JournalReader> open(const std::string& dir);

  JournalReader(JournalReader&&) noexcept;
  JournalReader& operator=(JournalReader&&) noexcept;
  ~JournalReader();

  const std::vector<SegmentInfo>& segments() const noexcept;
  // The first sequence still retained (0 for an empty journal).
  std::uint64_t first_sequence() const noexcept;

  // Positions the reader on the record holding `sequence` (a gap record if it was lost), found in
  // O(log n) through the segment names and index files. Before the first retained sequence: on the
  // first record. Past the last record: at the end (next() returns end until more is appended).
  Result<void> seek_sequence(std::uint64_t sequence);
  // Positions the reader on the first data record whose timestamp is >= time_ns (per-segment
  // bisection over the index's non-decreasing max timestamps, then a short scan). Exact when data
  // timestamps do not decrease along the journal; if they do (a clock stepped back), it lands on a
  // record at or after time_ns near where the running maximum first reaches it.
  // Errors (Result) of both seeks are only for the directory; a segment that cannot be read leaves
  // the reader before it, and next() reports it as damaged.
  Result<void> seek_time(std::int64_t time_ns);

  ReadStatus next(JournalRecord& out);
  const std::string& last_error() const noexcept;

  // After next() returned damaged: moves past the damage so that reading can go on, to the next
  // valid record of the segment, or to the next segment (accepting the sequence it begins at).
  // The records skipped show in the sequence of the next record. False if nothing was skipped.
  // Tools use it to report every damaged place instead of stopping at the first; seek_sequence()
  // uses it to reach a record that lies past damage in its segment.
  bool skip_damage();

  // Re-lists the directory (new segments, segments removed by retention, grown files) keeping the
  // current position. Cheap enough to call whenever next() returned end.
  // If retention removed the segment the reader is in, next() moves on to the next retained
  // segment when it begins at the expected sequence (nothing unread was lost); otherwise next()
  // returns damaged, naming the removed segment and the sequences that are gone (skip_damage() or
  // seek_sequence(first_sequence()) continue from the oldest retained record).
  Result<void> refresh();

 private:
  JournalReader();
  struct State;
  std::unique_ptr<State> state_;
};

}  // namespace shmbus::journal
