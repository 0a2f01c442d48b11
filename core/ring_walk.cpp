#include "ring_walk.hpp"

#include <atomic>
#include <cstring>
#include <deque>

#include <fmt/format.h>

namespace shmbus::core {
namespace {

// Whether a record in (position, end) is committed in this lap (its commit word is its own
// position, committed): records after an uncommitted claim were committed first.
bool committed_after(const RingRef& ring, std::uint64_t position, std::uint64_t end) {
  for (std::uint64_t q = position + kFrameAlignment; q < end; q += kFrameAlignment) {
    // relaxed: only the word is compared; nothing is read through it.
    if (ring.header_at(q)->commit.load(std::memory_order_relaxed) == ring.committed(q)) {
      return true;
    }
  }
  return false;
}

}  // namespace

RingWalk walk_ring(const RingRef& ring, std::size_t keep) {
  RingWalk w;
  const TailWord head = ring.load_tail();
  w.head_position = head.position;
  // The margin readers use: a start a capacity / 8 ahead of the overwrite front is overtaken less
  // often on a busy ring.
  w.start_margin = ring.capacity / 8;
  const TailWord start = earliest_retained(ring, w.start_margin);
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

  // Where the walk stops at a claim whose header it cannot trust for a length.
  auto stop_pending = [&](std::uint64_t p) {
    ++w.pending_records;
    w.stopped_at_pending = p;
    w.committed_beyond_pending = committed_after(ring, p, head.position);
  };

  constexpr int kMaxRereads = 1000;
  int rereads = 0;
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
      } else {
        // Claimed, header not written yet (commit_with_header writes it with the commit): the
        // slot still holds what the previous lap left there (its header, or its payload when
        // that lap was framed otherwise), so the length is unknown and the walk cannot step over
        // it. Commits are not in position order, so records after it may be committed already;
        // a damaged word looks the same, and readers repair both as abandoned in time.
        stop_pending(position);
      }
      break;
    }
    if (state == kStateRepairing) {
      // A repairer won the word first and writes length, type and sequence after it: the fields
      // may still be the claim's old ones. As good as uncommitted until it commits.
      stop_pending(position);
      break;
    }
    RecordHeader copy;
    std::memcpy(static_cast<void*>(&copy), h, sizeof copy);
    // acquire: as above. An unchanged word is not enough: a producer lapping us stores the
    // fields before the word, so the claim position decides whether the copy may be torn.
    const std::uint64_t again = h->commit.load(std::memory_order_acquire);
    if (overwritten(position)) {
      w.overtaken = true;
      break;
    }
    if (again != word) {
      // A pending header changed meanwhile (committed, or taken by a repairer): look again. A
      // word that keeps changing without any claim passing it is no writer's: stop there.
      if (++rereads < kMaxRereads) continue;
      stop_pending(position);
      break;
    }
    rereads = 0;
    if (state != kStateCommitted && state != kStatePending) {
      w.problems.push_back(
          {position, fmt::format("record at position {} has an unknown commit state {}",
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
    // Pending: write_header() stores length and sequence before its pending word (release), so
    // they are valid and the walk steps over the claim.
    r.pending = state == kStatePending;
    if (copy.type == static_cast<std::uint16_t>(RecordType::padding)) {
      ++w.padding_records;
      keep_record(r);
      position += kRecordHeaderSize + copy.length;
      continue;
    }
    if (copy.sequence != expected) {
      w.problems.push_back(
          {position, fmt::format("record at position {} has sequence {} where {} was expected",
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
