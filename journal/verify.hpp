// journal::verify: every segment of a journal directory scanned (journal/segment_scan.hpp) and the
// journal judged, records and segment boundaries (journal/continuity.hpp). The report is what
// `shmbus journal info` and `shmbus journal verify` print; nothing here prints, and nothing is
// changed on disk (a torn tail is reported, not cut: that is the writer's recovery).
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "journal/segment_scan.hpp"
#include "shmbus/result.hpp"

namespace shmbus::journal {

// Bytes after the newest segment's last valid record that hold no valid record and come after
// every record the writer reported durable (journal.durable, journal/durable_mark.hpp): the
// journaler's unfinished write, or a crash. Not damage. Also zeros after an older segment's last
// record (space preallocated ahead of writes and not cut), and the bytes of a last record torn
// off an older segment when the next segment does not continue it (that break is the damage).
struct TornTail {
  std::uint64_t offset = 0;  // just past the last valid record
  std::uint64_t bytes = 0;   // from there to the end of the file as scanned
};

// What one segment file holds.
struct SegmentReport {
  std::string path;                  // the segment file
  std::uint64_t first_sequence = 0;  // named by the file (its header agrees when it is readable)
  std::uint64_t file_bytes = 0;      // its size when the directory was listed
  // Set when the segment could not be scanned: it cannot be opened or read, or its header is
  // invalid. The message names the file. Every field below is then empty or zero.
  std::optional<Error> error;

  std::string channel;  // from the header
  std::int64_t created_ns = 0;
  std::optional<std::uint64_t> last_sequence;  // of its last valid record; none: no record
  // These count every valid record, those after damage included.
  std::uint64_t data_records = 0;
  std::uint64_t gap_records = 0;
  std::uint64_t lost_sequences = 0;  // the gap records' counts added up
  std::optional<std::int64_t> first_time_ns;  // of its first and last data records; none: no data
  std::optional<std::int64_t> last_time_ns;   // record
  std::optional<TornTail> torn_tail;
  std::vector<SegmentDamage> damaged_records;  // invalid records with valid ones after them
};

// Over every segment; records, gaps and sequences only over the segments that could be scanned.
struct JournalTotals {
  std::uint64_t segments = 0;
  std::uint64_t bytes = 0;  // of every segment file, as listed
  std::uint64_t data_records = 0;
  std::uint64_t gap_records = 0;
  std::uint64_t lost_sequences = 0;
  // The first sequence of the oldest segment holding a record, and the last sequence of the newest
  // one; none: no segment holds a record.
  std::optional<std::uint64_t> first_sequence;
  std::optional<std::uint64_t> last_sequence;
};

// A place where the journal is damaged.
struct DamagedPlace {
  std::string segment;  // path of the segment file
  std::uint64_t offset = 0;
  std::uint64_t expected_sequence = 0;  // the sequence due there
  std::string what;
};

struct JournalReport {
  std::vector<SegmentReport> segments;  // oldest first
  JournalTotals totals;
  // The verdict: every damaged place, segment by segment from the oldest. In each segment: that it
  // cannot be read (offset 0, the sequence due at its start; the next segment is then not judged
  // against it), or that it does not begin where the one before ended (at its first record's
  // offset), then each damaged record in file order, then its end: bytes other than zeros after
  // the last record of a segment that the next one continues, or a newest segment that ends
  // before a record reported durable (at the end of its last valid record, naming the sequence
  // due there). Torn tails are not damage.
  std::vector<DamagedPlace> damage;
  // From journal.durable: every record up to it was reported durable; none: no (readable) mark.
  std::optional<std::uint64_t> durable_sequence;
  std::optional<std::string> durable_mark_problem;  // why a mark file there was not used

  bool intact() const noexcept { return damage.empty(); }
};

// Scans and judges the journal in `dir`. Errors (Result) only for the directory, which cannot be
// listed (not_found, permission_denied; the message names it): a directory with no segment is an
// intact, empty journal, and segments that cannot be read are damage in the report.
Result<JournalReport> verify(const std::string& dir);

}  // namespace shmbus::journal
