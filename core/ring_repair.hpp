// Claims that are never committed. A producer that dies (or stalls past the abandon timeout)
// between claim and commit leaves readers waiting at its record. Whoever notices (a reader that has
// waited longer than the timeout at a claimed position) analyses what the claim covered and either
// repairs it in shared memory (writers: the record becomes `abandoned`, readers skip it and count
// its sequence lost) or, on a read-only mapping, skips it locally.
//
// What the claim covered is read from its pending header when the producer got that far; when it
// died between the claim CAS and its header stores, from the next valid header (or the tail): the
// hole's bytes and, by the sequence found after it and the reader's expected one, how many
// sequences it held (a batch claim holds several). Nobody will ever read the dead claim's bytes,
// so the repair may lay its sequences out as it likes: header-only records, the last one taking
// the rest of the hole.
#pragma once

#include <cstdint>
#include <optional>

#include "layout.hpp"
#include "ring_reader.hpp"
#include "ring_ref.hpp"

namespace shmbus::core {

// A run of `count` abandoned records covering `bytes` from `position`, with sequences
// first_sequence...; count 0 is padding.
struct StallPiece {
  std::uint64_t position;
  std::uint64_t bytes;
  std::uint64_t first_sequence;
  std::uint64_t count;
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

// Moves `reader` past the analysed claim without writing (read-only mappings cannot repair it in
// place); its sequences are reported as lost before the next record.
inline void skip_stall(RingReader& reader, const StallAnalysis& analysis) noexcept {
  for (int i = 0; i < analysis.count; ++i) {
    const StallPiece& p = analysis.pieces[i];
    if (p.count == 0) {
      reader.skip_padding(p.bytes);
    } else {
      reader.skip_abandoned(p.bytes, p.first_sequence + p.count - 1);
    }
  }
}

}  // namespace shmbus::core
