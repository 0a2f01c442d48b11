#include "core/ring_repair.hpp"

#include <cstring>

namespace shmbus::core {
namespace {

bool is_live_word(const RingRef& ring, std::uint64_t pos, std::uint64_t word) noexcept {
  return word == commit_word(ring.key, pos, kStateCommitted) ||
         word == commit_word(ring.key, pos, kStatePending) ||
         word == commit_word(ring.key, pos, kStateRepairing);
}

// The sequence of the record whose (committed, pending or repairing) header is at `pos`, looking
// through a padding record to the record at the next lap start. 0 when unknown.
std::uint64_t sequence_at(const RingRef& ring, std::uint64_t pos, int depth = 0) noexcept {
  const RecordHeader* h = ring.header_at(pos);
  // acquire: the fields read below were written before this word.
  if (!is_live_word(ring, pos, h->commit.load(std::memory_order_acquire))) return 0;
  RecordHeader copy;
  std::memcpy(static_cast<void*>(&copy), h, sizeof copy);
  if (check_record(ring, pos, copy)) return 0;
  if (copy.type == static_cast<std::uint16_t>(RecordType::padding)) {
    if (depth > 0) return 0;
    return sequence_at(ring, pos + kRecordHeaderSize + copy.length, depth + 1);
  }
  return copy.sequence;
}

// The first position after `from` (exclusive) and before `limit` with a live header, else limit.
std::uint64_t next_live(const RingRef& ring, std::uint64_t from, std::uint64_t limit) noexcept {
  for (std::uint64_t q = from + kFrameAlignment; q < limit; q += kFrameAlignment) {
    // acquire: as in sequence_at.
    if (is_live_word(ring, q, ring.header_at(q)->commit.load(std::memory_order_acquire))) return q;
  }
  return limit;
}

bool fits(const RingRef& ring, std::uint64_t frame) noexcept {
  return frame >= kRecordHeaderSize && frame <= frame_size(ring.max_message);
}

}  // namespace

std::optional<StallAnalysis> analyze_stall(const RingRef& ring, std::uint64_t position,
                                           std::uint64_t expected) noexcept {
  const TailWord tail = ring.load_tail();
  if (tail.position <= position) return std::nullopt;  // nothing claimed there: just idle
  const RecordHeader* h = ring.header_at(position);
  // acquire: a pending word makes the length and sequence written before it visible.
  const std::uint64_t word = h->commit.load(std::memory_order_acquire);
  if (word == ring.committed(position)) return std::nullopt;

  StallAnalysis a;
  if (word == commit_word(ring.key, position, kStatePending)) {
    RecordHeader copy;
    std::memcpy(static_cast<void*>(&copy), h, sizeof copy);
    if (check_record(ring, position, copy) || copy.sequence != expected) return std::nullopt;
    a.pieces[a.count++] = {position, frame_size(copy.length), RecordType::abandoned, expected};
    a.abandoned_sequences = 1;
    return a;
  }

  // The producer died before its pending store (or a repairer died mid-way): infer the extent.
  const std::uint64_t lap_end = (position | ring.mask) + 1;
  const std::uint64_t scan_limit = tail.position < lap_end ? tail.position : lap_end;
  const std::uint64_t q = next_live(ring, position, scan_limit);
  if (q < lap_end) {
    const std::uint64_t after = q == tail.position ? tail.next_sequence : sequence_at(ring, q);
    if (after != expected + 1 || !fits(ring, q - position)) return std::nullopt;
    a.pieces[a.count++] = {position, q - position, RecordType::abandoned, expected};
    a.abandoned_sequences = 1;
    return a;
  }
  // The hole reaches the lap end: continue at the next lap's start.
  std::uint64_t next = lap_end;
  const RecordHeader* first = ring.header_at(lap_end);
  // acquire: as above.
  if (!is_live_word(ring, lap_end, first->commit.load(std::memory_order_acquire))) {
    next = tail.position <= lap_end ? tail.position
                                    : next_live(ring, lap_end, tail.position);
  }
  const std::uint64_t after = next == tail.position ? tail.next_sequence : sequence_at(ring, next);
  if (after == expected + 1 && next == lap_end) {
    // One claim that ended exactly at the lap end.
    if (!fits(ring, lap_end - position)) return std::nullopt;
    a.pieces[a.count++] = {position, lap_end - position, RecordType::abandoned, expected};
    a.abandoned_sequences = 1;
  } else if (after == expected + 1 && next > lap_end) {
    // One claim with padding: the lap's end, then the record at the next lap's start.
    if (!fits(ring, next - lap_end)) return std::nullopt;
    a.pieces[a.count++] = {position, lap_end - position, RecordType::padding, 0};
    a.pieces[a.count++] = {lap_end, next - lap_end, RecordType::abandoned, expected};
    a.abandoned_sequences = 1;
  } else if (after == expected + 2 && next > lap_end) {
    // Two claims: one ending exactly at the lap end, one at the next lap's start.
    if (!fits(ring, lap_end - position) || !fits(ring, next - lap_end)) return std::nullopt;
    a.pieces[a.count++] = {position, lap_end - position, RecordType::abandoned, expected};
    a.pieces[a.count++] = {lap_end, next - lap_end, RecordType::abandoned, expected + 1};
    a.abandoned_sequences = 2;
  } else {
    return std::nullopt;
  }
  return a;
}

std::uint64_t repair_stall(const RingRef& ring, const StallAnalysis& a) noexcept {
  std::uint64_t marked = 0;
  for (int i = 0; i < a.count; ++i) {
    const StallPiece& p = a.pieces[i];
    RecordHeader* h = ring.header_at(p.position);
    std::uint64_t seen = h->commit.load(std::memory_order_acquire);  // acquire: see below
    if (seen == ring.committed(p.position)) continue;  // committed meanwhile
    // acq_rel: winning the move to "repairing" excludes the producer's commit (it checks for
    // "pending" first) and other repairers that saw the same word.
    const std::uint64_t repairing = commit_word(ring.key, p.position, kStateRepairing);
    if (seen != repairing &&
        !h->commit.compare_exchange_strong(seen, repairing, std::memory_order_acq_rel)) {
      continue;  // the producer or another repairer moved first
    }
    h->length = static_cast<std::uint32_t>(p.frame - kRecordHeaderSize);
    h->type = static_cast<std::uint16_t>(p.type);
    h->producer = 0;
    h->sequence = p.sequence;
    if (p.type == RecordType::abandoned) ++marked;
    // release: readers that see the commit see the fields above.
    h->commit.store(ring.committed(p.position), std::memory_order_release);
  }
  return marked;
}

}  // namespace shmbus::core
