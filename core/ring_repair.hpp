// Claims that are never committed. A producer that dies (or stalls past the abandon timeout)
// between claim and commit leaves readers waiting at its record. Whoever notices (a reader that has
// waited longer than the timeout at a claimed position) analyses what the claim covered and either
// repairs it in shared memory (writers: the record becomes `abandoned`, readers skip it and count
// its sequence lost) or, on a read-only mapping, skips it locally.
//
// What the claim covered is read from its pending header when the producer got that far; when it
// died between the claim CAS and the pending store, from the next valid header (or the tail) and
// the reader's expected sequence, which tells a padded claim from two claims.
#pragma once

#include <cstdint>
#include <optional>

#include "core/layout.hpp"
#include "core/ring.hpp"

namespace shmbus::core {

struct StallPiece {
  std::uint64_t position;
  std::uint64_t frame;       // bytes
  RecordType type;           // padding or abandoned
  std::uint64_t sequence;    // 0 for padding
};

struct StallAnalysis {
  StallPiece pieces[2];
  int count = 0;
  std::uint64_t abandoned_sequences = 0;  // how many sequences the pieces carry
};

// Analyses the claim at `position` that a reader expecting `expected_sequence` waits for. Nothing
// when the position is not claimed, already committed, or the ring around it is inconsistent (then
// nothing is repaired: a guess could destroy a live record).
std::optional<StallAnalysis> analyze_stall(const RingRef& ring, std::uint64_t position,
                                           std::uint64_t expected_sequence) noexcept;

// Writes the analysis into the ring (needs a writable mapping). Returns the number of sequences
// this call marked abandoned (0 if the producer or another repairer got there first).
std::uint64_t repair_stall(const RingRef& ring, const StallAnalysis& analysis) noexcept;

}  // namespace shmbus::core
