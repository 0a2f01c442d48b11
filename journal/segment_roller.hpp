// The journal writer's segment files: the one being written, the retired ones still waiting for
// their writes or fdatasyncs, and the finished ones on disk that retention may delete. Starting a
// segment creates its files (synchronously: rare) and then applies retention; a retired segment's
// descriptors are closed once nothing refers to them any more.
#pragma once

#include <cstdint>
#include <memory>
#include <vector>

#include "journal/open_segment.hpp"
#include "journal/retention.hpp"
#include "journal/writer.hpp"
#include "journal/writer_errors.hpp"
#include "journal/writer_recovery.hpp"

namespace shmbus::journal {

class SegmentRoller {
 public:
  SegmentRoller(const WriterOptions& options, WriterErrors& errors, WriterStats& stats) noexcept
      : options_(options), errors_(errors), stats_(stats) {}
  SegmentRoller(const SegmentRoller&) = delete;
  SegmentRoller& operator=(const SegmentRoller&) = delete;

  // Takes over what recovery found: the finished segments, the number the next one gets, and the
  // newest segment when appending continues in it (its index file is rewritten from the scan).
  Result<void> adopt(RecoveredJournal& recovered);

  // The segment being written (null: the next append starts one).
  OpenSegment* current() const noexcept { return current_; }
  // Open segments, oldest first; the last is the current one unless it was retired.
  const std::vector<std::unique_ptr<OpenSegment>>& open_segments() const noexcept { return open_; }

  // Whether a record of `record_bytes` (padded) starts a new segment: there is none, or the
  // current one holds a record and would grow past segment_bytes. A record larger than a segment
  // gets a segment of its own.
  bool needs_new_segment(std::uint64_t record_bytes) const noexcept {
    return current_ == nullptr || (current_->end_offset > kSegmentHeaderSize &&
                                   current_->end_offset + record_bytes > options_.segment_bytes);
  }

  // Closes the current segment for appends (its last bytes were handed to writes) and counts it
  // among the finished segments retention looks at.
  void retire_current();
  // Creates the segment that starts at `first_sequence` (there is no current one) and applies
  // retention. A directory that cannot be fdatasynced stops the writer.
  Result<void> start_segment(std::uint64_t first_sequence);
  // Closes retired segments nothing refers to any more; under O_DIRECT first cuts the zero padding
  // of their last block and the space preallocated after it, so only the newest segment ever ends
  // in zeros (a failure is reported once by the next reap()).
  void close_finished();
  // At close, under O_DIRECT, once every write completed: cuts the current segment's padding and
  // preallocated space.
  void cut_current_padding();

 private:
  void apply_retention();

  const WriterOptions& options_;
  WriterErrors& errors_;
  WriterStats& stats_;
  std::vector<std::unique_ptr<OpenSegment>> open_;
  OpenSegment* current_ = nullptr;
  std::vector<RetainedSegment> finished_;  // finished segments still on disk, oldest first
  std::uint64_t next_segment_number_ = 0;
};

}  // namespace shmbus::journal
