#include "ring_repair.hpp"

#include <algorithm>
#include <cstring>

#include "ring.hpp"

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

// A run of `count` records fits `bytes` if each has its header and the last one's frame is a
// legal frame (abandoned frames may reach frame_size(max_message)).
bool fits(const RingRef& ring, std::uint64_t bytes, std::uint64_t count) noexcept {
  if (bytes % kFrameAlignment != 0) return false;
  if (count == 0) return bytes >= kRecordHeaderSize;
  // Divides rather than multiplies: `count` comes from sequences read from shared memory, and a
  // product that wraps would accept a garbage count (which repair_stall then loops over).
  if (count > bytes / kRecordHeaderSize) return false;
  return bytes - (count - 1) * kRecordHeaderSize <= frame_size(ring.max_message);
}

}  // namespace

std::optional<StallAnalysis> analyze_stall(const RingRef& ring, std::uint64_t position,
                                           std::uint64_t expected) noexcept {
  const TailWord tail = ring.load_tail();
  if (tail.position <= position) return std::nullopt;  // nothing claimed there: just idle
  // More than a lap ahead: lapped, or a garbage claim word; either way nothing here to infer, and
  // the scans below must stay within one lap.
  if (tail.position - position > ring.capacity) return std::nullopt;
  const RecordHeader* h = ring.header_at(position);
  // acquire: a pending word makes the length and sequence written before it visible.
  const std::uint64_t word = h->commit.load(std::memory_order_acquire);
  if (word == ring.committed(position)) return std::nullopt;

  StallAnalysis a;
  if (word == commit_word(ring.key, position, kStatePending)) {
    RecordHeader copy;
    std::memcpy(static_cast<void*>(&copy), h, sizeof copy);
    if (check_record(ring, position, copy) || copy.sequence != expected) return std::nullopt;
    a.pieces[a.count++] = {position, frame_size(copy.length), expected, 1};
    a.abandoned_sequences = 1;
    return a;
  }
  if ((tail.position & (kFrameAlignment - 1)) != 0) return std::nullopt;  // garbage tail

  // The producer died before its header stores (or a repairer died mid-way): infer the extent.
  const std::uint64_t lap_end = (position | ring.mask) + 1;
  const std::uint64_t scan_limit = tail.position < lap_end ? tail.position : lap_end;
  const std::uint64_t q = next_live(ring, position, scan_limit);
  if (q < lap_end) {
    const std::uint64_t after = q == tail.position ? tail.next_sequence : sequence_at(ring, q);
    if (after <= expected || !fits(ring, q - position, after - expected)) return std::nullopt;
    a.pieces[a.count++] = {position, q - position, expected, after - expected};
    a.abandoned_sequences = after - expected;
    return a;
  }
  // The hole reaches the lap end: continue at the next lap's start.
  std::uint64_t next = lap_end;
  const RecordHeader* first = ring.header_at(lap_end);
  // acquire: as above.
  if (!is_live_word(ring, lap_end, first->commit.load(std::memory_order_acquire))) {
    // Within one lap: a claim word from garbage may lie any distance ahead.
    next = tail.position <= lap_end
               ? tail.position
               : next_live(ring, lap_end, std::min(tail.position, lap_end + ring.capacity));
  }
  const std::uint64_t after = next == tail.position ? tail.next_sequence : sequence_at(ring, next);
  if (after <= expected) return std::nullopt;
  const std::uint64_t missing = after - expected;
  if (next <= lap_end) {
    // Claims that ended exactly at the lap end.
    if (!fits(ring, lap_end - position, missing)) return std::nullopt;
    a.pieces[a.count++] = {position, lap_end - position, expected, missing};
  } else {
    // Claims on both sides of the lap end (the first may be only padding). Which sequences were
    // on which side cannot be known and does not matter: put as many as fit after the lap start.
    const std::uint64_t before_bytes = lap_end - position;
    const std::uint64_t after_bytes = next - lap_end;
    const std::uint64_t after_count = std::min(missing, after_bytes / kRecordHeaderSize);
    const std::uint64_t before_count = missing - after_count;
    if (!fits(ring, before_bytes, before_count) || !fits(ring, after_bytes, after_count) ||
        after_count == 0) {
      return std::nullopt;
    }
    a.pieces[a.count++] = {position, before_bytes, expected, before_count};
    a.pieces[a.count++] = {lap_end, after_bytes, expected + before_count, after_count};
  }
  a.abandoned_sequences = missing;
  return a;
}

namespace {

// Rewrites one record header as a committed padding or abandoned record, unless its producer (or
// another repairer) got there first. Returns whether this call wrote it.
bool repair_record(const RingRef& ring, std::uint64_t position, std::uint64_t frame,
                   RecordType type, std::uint64_t sequence) noexcept {
  RecordHeader* h = ring.header_at(position);
  // acquire: a committed word means the record is final; leave it.
  std::uint64_t seen = h->commit.load(std::memory_order_acquire);
  if (seen == ring.committed(position)) return false;
  // acq_rel: winning the move to "repairing" excludes the producer's commit (it checks for
  // "pending" first) and other repairers that saw the same word.
  const std::uint64_t repairing = commit_word(ring.key, position, kStateRepairing);
  if (seen != repairing &&
      !h->commit.compare_exchange_strong(seen, repairing,
                                         std::memory_order_acq_rel)) {  // acq_rel: see above
    return false;
  }
  h->length = static_cast<std::uint32_t>(frame - kRecordHeaderSize);
  h->type = static_cast<std::uint16_t>(type);
  h->producer = 0;
  h->sequence = sequence;
  // release: readers that see the commit see the fields above.
  h->commit.store(ring.committed(position), std::memory_order_release);
  return true;
}

}  // namespace

std::uint64_t repair_stall(const RingRef& ring, const StallAnalysis& a) noexcept {
  if (a.count == 0) return 0;
  // Announce the repaired range before touching a header, so that a stalled producer whose claim
  // lies inside it learns at commit that it was skipped.
  const StallPiece& last_piece = a.pieces[a.count - 1];
  const std::uint64_t end = last_piece.position + last_piece.bytes;
  // relaxed load, then acq_rel CAS: a monotonic maximum; the release orders it before the header
  // rewrites below for a producer that acquire-loads it in commit().
  std::uint64_t seen = ring.header->repaired_through.load(std::memory_order_relaxed);
  while (seen < end && !ring.header->repaired_through.compare_exchange_weak(
                           seen, end, std::memory_order_acq_rel,  // acq_rel: see above
                           std::memory_order_relaxed)) {         // relaxed: retry only
  }
  std::uint64_t marked = 0;
  for (int i = 0; i < a.count; ++i) {
    const StallPiece& p = a.pieces[i];
    if (p.count == 0) {
      repair_record(ring, p.position, p.bytes, RecordType::padding, 0);
      continue;
    }
    // Header-only records for all but the last sequence; the last takes the rest of the run.
    std::uint64_t pos = p.position;
    for (std::uint64_t k = 0; k < p.count; ++k) {
      const bool last = k + 1 == p.count;
      const std::uint64_t frame = last ? p.position + p.bytes - pos : kRecordHeaderSize;
      if (repair_record(ring, pos, frame, RecordType::abandoned, p.first_sequence + k)) ++marked;
      pos += frame;
    }
  }
  return marked;
}

}  // namespace shmbus::core
