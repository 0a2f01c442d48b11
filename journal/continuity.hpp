// The journal's rule across segment boundaries, stated once for the reader, recovery and
// journal::verify: the next segment begins where the last one ended.
//
// Sequences increase by exactly one from record to record across the whole journal, so a
// segment's first sequence (its header's, which its file name must repeat) equals the sequence
// after the last valid record of the segment before it: that record's sequence + 1, or for a gap
// record its sequence + its count (the sequences a gap record stands for belong to the segment
// that holds it, even when they run up to the next segment's first sequence).
//
// - A torn tail (bytes after a segment's last valid record that hold no valid record: an unfinished
//   write, a crash) carries no sequence. An older segment with a torn tail is continued by a
//   successor that begins right after its last valid record (the journaler started a new segment
//   after a crash), and broken by any other.
// - Valid records after damage in the middle of a segment still count: the segment ends after the
//   last valid record anywhere in it (SegmentScan::end_sequence). The damage itself is reported
//   where it lies, not again as a break at the next segment. Recovery alone passes a different
//   end: a hole of zeros (writes still in flight at a crash) ends what was ever counted written,
//   so it judges the next segment against the end before the hole (writer_recovery.cpp,
//   contiguous_end).
// - When the end of the segment before is unknown (there is none, it could not be read, or
//   reading resumed at a segment without judging how it was reached), nothing is judged: a missing
//   link is reported once, where it is known.
#pragma once

#include <cstdint>
#include <optional>

#include "journal/format.hpp"

namespace shmbus::journal {

// "The end of the segment before is unknown". No record carries sequence 0 and no segment header
// may say it begins there, so 0 never is a real end.
inline constexpr std::uint64_t kUnknownSequence = 0;

// Where a segment does not continue the one before it.
struct SequenceBreak {
  std::uint64_t expected_sequence;  // the sequence after the previous segment's last valid record
  std::uint64_t first_sequence;     // the sequence the segment begins at instead
  // Breaks are reported at the offset of the segment's first record, where the expected sequence
  // was due.
  static constexpr std::uint64_t offset = kSegmentHeaderSize;
};

// Nothing if a segment beginning at `first_sequence` continues a segment whose records end before
// `previous_end` (kUnknownSequence: nothing is judged); otherwise the break. A segment that begins
// earlier than previous_end (records repeated) breaks the sequence as much as one that begins later
// (records lost).
constexpr std::optional<SequenceBreak> segment_break(std::uint64_t previous_end,
                                                     std::uint64_t first_sequence) noexcept {
  if (previous_end == kUnknownSequence || first_sequence == previous_end) return std::nullopt;
  return SequenceBreak{previous_end, first_sequence};
}

}  // namespace shmbus::journal
