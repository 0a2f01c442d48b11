// Walking one segment file from its header to its end, checking every record: the common ground of
// recovery (the writer finds where to continue), journal::verify (journal/verify.hpp) and index
// rebuilds.
//
// A torn tail (bytes after the last valid record that hold no valid record at all: the writer died
// mid-write, or is still writing) is told apart from damage (an invalid record followed by valid
// ones), which is reported with its offset and the sequence expected there and never truncated away.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "journal/format.hpp"
#include "shmbus/result.hpp"

namespace shmbus::journal {

struct SegmentDamage {
  std::uint64_t offset;             // byte offset of the first bad byte/record in the file
  std::uint64_t expected_sequence;  // the sequence the record there should have carried
  std::string what;                 // e.g. "checksum mismatch", "sequence 17 (expected 12)"
};

struct SegmentScan {
  SegmentHeader header;
  std::uint64_t file_bytes = 0;
  std::uint64_t valid_end = 0;      // offset just past the last valid record (>= header size)
  std::uint64_t data_records = 0;
  std::uint64_t gap_records = 0;
  std::uint64_t lost_sequences = 0;  // sum of the gap records' counts
  std::uint64_t next_sequence = 0;  // the sequence a record appended at valid_end would carry
  std::int64_t first_time_ns = 0;   // of the first and last data records (0: none)
  std::int64_t last_time_ns = 0;
  std::int64_t max_time_ns = 0;
  bool torn_tail = false;           // valid_end < file_bytes and nothing valid after it (with
                                    // damage: bytes after last_record_end, none of them valid)
  std::vector<SegmentDamage> damage;  // invalid records with valid ones after them
  // Past damage the scan resumes at the next valid record, so these describe the whole file; they
  // equal valid_end and next_sequence when there is no damage.
  std::uint64_t last_record_end = 0;  // offset just past the last valid record anywhere
  std::uint64_t end_sequence = 0;     // the sequence after the last valid record anywhere: where
                                      // the next segment must begin (journal/continuity.hpp)
};

// Called for every valid record while scanning (index rebuilds, dump), in file order, including
// the valid records found after damage. `payload` is valid only during the call.
using ScanVisitor = std::function<void(const RecordHeader&, std::span<const std::byte> payload,
                                       std::uint64_t offset)>;

// Scans the segment at `path`. Errors (Result) are for a file that cannot be read or whose header
// is invalid (version_mismatch for another format version, corrupt otherwise, also when the file
// name names another first sequence than the header); record-level problems are reported in the
// SegmentScan.
//
// Counts and times (data_records, gap_records, lost_sequences, *_time_ns) cover every valid record
// in the file, including those after damage. A valid record with an unexpected sequence is damage
// ("sequence 17 (expected 12)"); the scan continues from its sequence.
Result<SegmentScan> scan_segment(const std::string& path, const ScanVisitor& visit = {});

// How far into [from, to) the file holds something other than zeros: the end of its last nonzero
// byte, or `from` (`to` when the file cannot be opened). Holes (space preallocated and never
// written) read as zeros and are skipped without reading them; a filesystem without hole
// information has every byte read.
std::uint64_t nonzero_end(const std::string& path, std::uint64_t from, std::uint64_t to);

}  // namespace shmbus::journal
