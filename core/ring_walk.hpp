// A consistency walk over a ring, for `shmbus inspect`: every record from the earliest retained one
// (found with the margin readers use, capacity / 8, so that a busy ring overtakes the walk less
// often) to the head, checked as a reader would check it. Reads only (works on a read-only mapping)
// and tolerates a live channel:
//  - records overwritten while it walks end the walk as `overtaken`, which is not a fault;
//  - a position whose commit word is not this position's (a claim whose header is not written
//    yet: the slot holds whatever the previous lap left) or is being repaired ends the walk as a
//    pending claim, which is not a fault either. Commits are not in position order (other
//    producers, a batch's padding written at claim time, a producer that died mid-message), so
//    records after it may already be committed; from the ring alone a damaged commit word cannot
//    be told from such a claim, and readers too treat it as a stalled claim and repair it as
//    abandoned after their abandon_timeout. `stopped_at_pending` and `committed_beyond_pending`
//    say where and whether.
// Problems are what only garbage produces: a header carrying this position's word (committed or
// pending) that fails check_record, an unknown commit state, a sequence break.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "ring.hpp"

namespace shmbus::core {

// One record header as the walk found it.
struct WalkedRecord {
  std::uint64_t position = 0;
  std::uint64_t sequence = 0;      // 0 for padding
  std::uint32_t length = 0;        // payload bytes (padding: bytes up to the lap end)
  std::uint16_t type = 0;          // RecordType
  std::uint16_t producer = 0;      // producer tag
  std::int64_t timestamp_ns = 0;
  bool pending = false;            // claimed, not committed yet
};

struct WalkProblem {
  std::uint64_t position = 0;
  std::string what;
};

struct RingWalk {
  std::uint64_t from_position = 0;  // where the walk started (earliest retained, margin capacity/8)
  std::uint64_t start_margin = 0;   // that margin: bytes ahead of the overwrite front, capacity / 8
  std::uint64_t to_position = 0;    // where it stopped (the head, unless it stopped early)
  std::uint64_t head_position = 0;  // the claim word's position when the walk began
  std::uint64_t first_sequence = 0; // of the first record walked (0: none)
  std::uint64_t last_sequence = 0;  // of the last record walked (0: none)
  std::uint64_t data_records = 0;
  std::uint64_t padding_records = 0;
  std::uint64_t abandoned_records = 0;
  std::uint64_t pending_records = 0;  // claims not committed yet (at the head, or stalled)
  bool overtaken = false;  // producers overwrote records ahead of the walk: run it again
  // The position of the claim the walk stopped at because its header is not written (or is being
  // repaired), UINT64_MAX if it did not stop at one. Then to_position is this position.
  std::uint64_t stopped_at_pending = UINT64_MAX;
  // A record after that claim, before the head, is already committed: the claim is not simply the
  // newest one being written but one a slow or dead producer holds, or a damaged header (readers
  // repair it as abandoned after their abandon_timeout).
  bool committed_beyond_pending = false;
  std::vector<WalkedRecord> last;     // the last `keep` records walked, oldest first
  std::vector<WalkProblem> problems;  // malformed headers, sequence breaks; empty when healthy
};

// Walks [earliest retained with margin capacity / 8, head) once. Keeps the last `keep` headers.
// Stops at the first problem it cannot step over (it cannot find the next record without a valid
// length), at a pending claim without a valid header, or when overtaken.
RingWalk walk_ring(const RingRef& ring, std::size_t keep);

}  // namespace shmbus::core
