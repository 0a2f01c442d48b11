// What JournalWriter::open() does to a journal directory before appending: finds the segments,
// removes leftovers of a crash (a segment without a valid header and no records, index files
// without a segment), scans the newest segment, cuts its torn tail, reports damage in the middle
// and rebuilds its index. The result says where appending continues.
//
// The rules that keep recovery from losing or hiding records:
// - Appending continues after the last valid record the scan saw, never at a position taken from
//   file names, sizes or the index: those are written apart from the records (an index write can
//   complete before the records it points at; a file's size counts its torn tail), so they can
//   run ahead of what really was written.
// - Bytes are cut only when nothing valid follows them (a torn tail), or when they start at a
//   hole of zeros, which only writes still in flight at a crash leave (what follows the hole was
//   never counted written and is written again from the channel). Other invalid bytes with valid
//   records after them are damage and stay.
// - Nothing that was reported durable is ever cut or set aside (journal.durable,
//   journal/durable_mark.hpp): when a repair would, recovery refuses with ErrorCode::corrupt,
//   naming the segment, the offset and the sequences reported durable, and changes nothing
//   more. Under a syncing policy it writes the mark itself once the newest segment is synced.
// - A segment with damage is left as it is and appending continues in a new segment: appending
//   after damage would bury it between valid records.
// - Each segment begins where the one before it ended (journal/continuity.hpp). Segments after
//   one that ends short (writes in flight at a crash) are set aside, and their records are written
//   again from the channel.
// - Recovery is idempotent: a crash during it leaves a directory the next recovery handles the
//   same way.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "journal/format.hpp"
#include "journal/index_builder.hpp"
#include "journal/retention.hpp"
#include "journal/writer.hpp"

namespace shmbus::journal {

// The newest segment, when appending continues inside it.
struct ContinuedSegment {
  SegmentHeader header;
  std::string path;
  std::uint64_t end = 0;               // where the next record goes (the last valid record's end)
  std::int64_t last_data_time_ns = 0;  // of its newest data record (0: none)
  std::vector<IndexEntry> index;       // rebuilt from the segment and written to its index file
  IndexBuilder builder;                // state for the entries still to come
};

struct RecoveredJournal {
  std::vector<RetainedSegment> closed;     // every other segment, oldest first
  std::optional<ContinuedSegment> current;  // none: the next append creates a new segment
  std::uint64_t next_sequence = 0;          // 0: empty journal
  std::uint64_t next_segment_number = 0;
};

// `sync`: fdatasync the newest segment (after cutting its tail) so that it counts as durable.
// `window_bytes`: how much of the journal's tail writes in flight at a crash may have touched
// (segments in it are checked to follow each other; see set_aside_beyond_holes).
Result<RecoveredJournal> recover_journal(const std::string& dir, bool sync,
                                         std::uint64_t window_bytes, RecoveryReport& report);

}  // namespace shmbus::journal
