// A consistency walk over a ring: every record from the earliest retained one to the head, checked
// as a reader would check it, for `shmbus inspect`. Reads only (works on a read-only mapping) and
// tolerates a live channel: records overwritten while it walks end the walk as `overtaken`, which is
// not a fault. Everything else that no shmbus writer produces is reported as a problem.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "core/ring.hpp"

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
  std::uint64_t from_position = 0;  // where the walk started (the earliest retained record)
  std::uint64_t to_position = 0;    // where it stopped (the head, unless it stopped early)
  std::uint64_t head_position = 0;  // the claim word's position when the walk began
  std::uint64_t first_sequence = 0; // of the first record walked (0: none)
  std::uint64_t last_sequence = 0;  // of the last record walked (0: none)
  std::uint64_t data_records = 0;
  std::uint64_t padding_records = 0;
  std::uint64_t abandoned_records = 0;
  std::uint64_t pending_records = 0;  // claims not committed yet (at the head, or stalled)
  bool overtaken = false;  // producers overwrote records ahead of the walk: run it again
  std::vector<WalkedRecord> last;     // the last `keep` records walked, oldest first
  std::vector<WalkProblem> problems;  // malformed headers, sequence breaks; empty when healthy
};

// Walks [earliest retained, head) once. Keeps the last `keep` headers. Stops at the first problem
// it cannot step over (it cannot find the next record without a valid length).
RingWalk walk_ring(const RingRef& ring, std::size_t keep);

}  // namespace shmbus::core
