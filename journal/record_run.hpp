// A run of data records laid straight into the journal writer's current write buffer, for a caller
// that appends many records in a row (the journaler, once per poll of its channel). Per record it
// does only what a run can fail on and the copy with the checksum in one pass (stream_record,
// non-temporal stores that end_run fences); the writer's bookkeeping (counters,
// the newest timestamp, where the last record ends, handing a full buffer to a write) happens once
// for the whole run, in JournalWriter::end_run.
//
// A run covers the room that needs none of the writer's decisions: the rest of the current buffer,
// short of the segment's size limit, for records that start before the segment's next index
// boundary (the record there gets an index entry). A record the run cannot take (not the sequence
// due, a gap, too big, at the boundary) is refused and nothing is written: the caller ends the
// run, appends that record with JournalWriter::append, which decides all of it, and begins another.
//
// Between JournalWriter::begin_run and end_run nothing else may be called on the writer: the run
// holds a pointer into the current buffer, whose bytes only end_run hands to writes.
#pragma once

#include <cstddef>
#include <cstdint>
#include <limits>
#include <span>

#include "journal/format.hpp"

namespace shmbus::journal {

class RecordRun {
 public:
  RecordRun() = default;  // an empty run: takes nothing

  // Lays a data record after the run's last one if it carries the sequence due and fits; false
  // (and nothing written) otherwise.
  bool append(std::uint64_t sequence, std::int64_t timestamp_ns,
              std::span<const std::byte> payload) noexcept {
    const std::uint64_t size = padded_record_size(payload.size());
    if (sequence != next_sequence_ || at_ >= starts_before_ ||
        size > static_cast<std::uint64_t>(end_ - at_)) {
      return false;
    }
    at_ += stream_record(at_, RecordType::data, sequence, timestamp_ns, payload);
    ++next_sequence_;
    if (timestamp_ns > newest_time_ns_) newest_time_ns_ = timestamp_ns;
    return true;
  }

  std::uint64_t records() const noexcept { return next_sequence_ - first_sequence_; }
  // The sequence the next record must carry (0 for an empty run: sequences start at 1, so an
  // empty run refuses every record).
  std::uint64_t next_sequence() const noexcept { return next_sequence_; }

 private:
  friend class JournalWriter;

  RecordRun(std::byte* at, std::byte* end, std::byte* starts_before,
            std::uint64_t first_sequence) noexcept
      : begin_(at),
        at_(at),
        end_(end),
        starts_before_(starts_before),
        first_sequence_(first_sequence),
        next_sequence_(first_sequence) {}

  std::byte* begin_ = nullptr;          // where the run's first record goes
  std::byte* at_ = nullptr;             // where the next record goes
  std::byte* end_ = nullptr;            // no record may end past this
  std::byte* starts_before_ = nullptr;  // no record may start at or past this
  std::uint64_t first_sequence_ = 0;
  std::uint64_t next_sequence_ = 0;
  std::int64_t newest_time_ns_ = std::numeric_limits<std::int64_t>::min();
};

}  // namespace shmbus::journal
