// Which segments retention deletes: a pure decision over sizes and times, so that it is tested
// without files. The writer applies it after every segment roll.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <span>

namespace shmbus::journal {

struct RetainedSegment {
  std::uint64_t first_sequence = 0;
  std::uint64_t bytes = 0;
  // The newest record's timestamp (an upper bound is fine: it only delays deletion); 0: unknown,
  // which age-based retention never deletes.
  std::int64_t newest_ns = 0;
};

// How many of `closed` (oldest first; the segment being written is not among them, but its
// `current_bytes` count toward the total) to delete, oldest first: while the total exceeds
// `retain_bytes` (0: no size limit) or the oldest's newest record is older than `retain_age`
// before `now_ns` (0 s: no age limit). Only a prefix is deleted, so the journal stays one
// contiguous run of sequences.
std::size_t segments_to_delete(std::span<const RetainedSegment> closed, std::uint64_t current_bytes,
                               std::uint64_t retain_bytes, std::chrono::seconds retain_age,
                               std::int64_t now_ns) noexcept;

}  // namespace shmbus::journal
