#include "core/ring_walk.hpp"

#include <atomic>
#include <cstdio>
#include <cstring>
#include <deque>

namespace shmbus::core {
namespace {

std::string describe(const char* fmt, unsigned long long a, unsigned long long b = 0,
                     unsigned long long c = 0) {
  char buf[200];
  std::snprintf(buf, sizeof buf, fmt, a, b, c);
  return buf;
}

// Whether any header in (position, end) carries its own position in its commit word (committed,
// pending or being repaired): something of this lap was written after `position`.
bool written_after(const RingRef& ring, std::uint64_t position, std::uint64_t end) {
  for (std::uint64_t q = position + kFrameAlignment; q < end; q += kFrameAlignment) {
    // relaxed: only the word is compared; nothing is read through it.
    const std::uint64_t word = ring.header_at(q)->commit.load(std::memory_order_relaxed);
    if (((word & ~kCommitStateMask) ^ ring.key) == q) return true;
  }
  return false;
}

}  // namespace

RingWalk walk_ring(const RingRef& ring, std::size_t keep) {
  RingWalk w;
  const TailWord head = ring.load_tail();
  w.head_position = head.position;
  const TailWord start = earliest_retained(ring, 0);
  std::uint64_t position = start.position;
  std::uint64_t expected = start.next_sequence;
  w.from_position = position;
  // Producers claim before they write (a release fence follows every claim), so once what the
  // walk read at `p` may be theirs, the claim position shows it: the slot is claimed again for a
  // later lap, and what was read there (a commit word, or header fields stored before a commit
  // word that is still the old one) may be half of their record. That is being overtaken.
  auto overwritten = [&](std::uint64_t p) {
    // acquire: the header reads before this fence come before the claim position load below.
    std::atomic_thread_fence(std::memory_order_acquire);
    return ring.claimed_position() > p + ring.capacity;
  };
  std::deque<WalkedRecord> last;
  auto keep_record = [&](const WalkedRecord& r) {
    if (keep == 0) return;
    if (last.size() == keep) last.pop_front();
    last.push_back(r);
  };

  while (position < head.position) {
    const RecordHeader* h = ring.header_at(position);
    // acquire: pairs with the producer's release store of the commit word (or a repairer's); the
    // fields copied after it are that record's.
    const std::uint64_t word = h->commit.load(std::memory_order_acquire);
    const std::uint64_t state = word & kCommitStateMask;
    const std::uint64_t word_position = (word & ~kCommitStateMask) ^ ring.key;
    if (word_position != position) {
      if (overwritten(position) ||
          (word_position > position && ((word_position - position) & ring.mask) == 0)) {
        w.overtaken = true;  // a later lap's record: the producers passed us
      } else if (word == 0 ||
                 (word_position < position && ((position - word_position) & ring.mask) == 0) ||
                 !written_after(ring, position, head.position)) {
        // Claimed, header not written yet (the commit writes it): the length is unknown, so the
        // walk cannot step over it. The slot still holds what the previous lap left there: its
        // header, or its payload when that lap was framed otherwise; with nothing of this lap
        // written after it, this is a producer mid-message at the head, not garbage.
        ++w.pending_records;
      } else {
        w.problems.push_back({position, describe("commit word 0x%llx at position %llu belongs to "
                                                 "no record of this ring",
                                                 word, position)});
      }
      break;
    }
    RecordHeader copy;
    std::memcpy(static_cast<void*>(&copy), h, sizeof copy);
    // acquire: as above. An unchanged word is not enough: a producer lapping us stores the
    // fields before the word, so the claim position decides whether the copy may be torn.
    if (h->commit.load(std::memory_order_acquire) != word || overwritten(position)) {
      w.overtaken = true;
      break;
    }
    if (state != kStateCommitted && state != kStatePending && state != kStateRepairing) {
      w.problems.push_back(
          {position, describe("record at position %llu has an unknown commit state %llu",
                              position, state)});
      break;
    }
    if (auto err = check_record(ring, position, copy)) {
      w.problems.push_back({position, *err});
      break;
    }
    WalkedRecord r;
    r.position = position;
    r.sequence = copy.sequence;
    r.length = copy.length;
    r.type = copy.type;
    r.producer = copy.producer;
    r.timestamp_ns = copy.timestamp_ns;
    r.pending = state != kStateCommitted;
    if (copy.type == static_cast<std::uint16_t>(RecordType::padding)) {
      ++w.padding_records;
      keep_record(r);
      position += kRecordHeaderSize + copy.length;
      continue;
    }
    if (copy.sequence != expected) {
      w.problems.push_back(
          {position, describe("record at position %llu has sequence %llu where %llu was expected",
                              position, copy.sequence, expected)});
    }
    if (w.first_sequence == 0) w.first_sequence = copy.sequence;
    w.last_sequence = copy.sequence;
    expected = copy.sequence + 1;
    if (r.pending) {
      ++w.pending_records;
    } else if (copy.type == static_cast<std::uint16_t>(RecordType::abandoned)) {
      ++w.abandoned_records;
    } else {
      ++w.data_records;
    }
    keep_record(r);
    position += frame_size(copy.length);
  }
  w.to_position = position;
  w.last.assign(last.begin(), last.end());
  return w;
}

}  // namespace shmbus::core
