#include "ring_walk.hpp"

#include <atomic>
#include <cstring>
#include <deque>
#include <optional>
#include <string>

#include <fmt/format.h>

#include "ring_reader.hpp"

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

// A claim position past `p + capacity` means the producers may have reused `p` for a later lap
// since the walk read it. Producers claim before they write (a release fence follows every
// claim), so what the walk read there (a commit word, or header fields stored before a commit
// word that is still the old one) may be half of their record: the walk is overtaken.
bool overwritten(const RingRef& ring, std::uint64_t p) {
  // acquire: the header reads before this fence come before the claim position load below.
  std::atomic_thread_fence(std::memory_order_acquire);
  // acquire: as every reader's claim check (ring_ref.hpp).
  return ring.claimed_position(std::memory_order_acquire) > p + ring.capacity;
}

enum class HeaderRead {
  stable,     // `copy` holds the header its commit word vouches for, in state `state`
  overtaken,  // a later lap's record, or one being written over: the producers passed us
  pending,    // a claim whose header carries no length to step over (or a repair under way)
  changed,    // a pending header changed while it was read: read it again
};

// Reads the header at `position` and says whether the copy can be trusted.
HeaderRead read_header(const RingRef& ring, std::uint64_t position, RecordHeader& copy,
                       std::uint64_t& state) {
  const RecordHeader* h = ring.header_at(position);
  // acquire: pairs with the producer's release store of the commit word (or a repairer's); the
  // fields copied after it are that record's.
  const std::uint64_t word = h->commit.load(std::memory_order_acquire);
  state = word & kCommitStateMask;
  const std::uint64_t word_position = (word & ~kCommitStateMask) ^ ring.key;
  if (word_position != position) {
    if (overwritten(ring, position) ||
        (word_position > position && ((word_position - position) & ring.mask) == 0)) {
      return HeaderRead::overtaken;
    }
    // Claimed, header not written yet (commit_with_header writes it with the commit): the slot
    // still holds what the previous lap left there (its header, or its payload when that lap was
    // framed otherwise), so the length is unknown and the walk cannot step over it. Commits are
    // not in position order, so records after it may be committed already; a damaged word looks
    // the same, and readers repair both as abandoned in time.
    return HeaderRead::pending;
  }
  // A repairer won the word first and writes length, type and sequence after it: the fields may
  // still be the claim's old ones. As good as uncommitted until it commits.
  if (state == kStateRepairing) return HeaderRead::pending;
  std::memcpy(static_cast<void*>(&copy), h, sizeof copy);
  // acquire: as above. An unchanged word is not enough: a producer lapping us stores the fields
  // before the word, so the claim position decides whether the copy may be torn.
  const std::uint64_t again = h->commit.load(std::memory_order_acquire);
  if (overwritten(ring, position)) return HeaderRead::overtaken;
  // A pending header may be committed, or taken by a repairer, while we read it.
  return again == word ? HeaderRead::stable : HeaderRead::changed;
}

// What is wrong with a stable header, if anything: only garbage has an unknown state or fails
// check_record.
std::optional<std::string> header_problem(const RingRef& ring, std::uint64_t position,
                                          std::uint64_t state, const RecordHeader& copy) {
  if (state != kStateCommitted && state != kStatePending) {
    return fmt::format("record at position {} has an unknown commit state {}", position, state);
  }
  return check_record(ring, position, copy);
}

// The last `keep` records walked, oldest first.
class LastRecords {
 public:
  explicit LastRecords(std::size_t keep) : keep_(keep) {}
  void add(const WalkedRecord& r) {
    if (keep_ == 0) return;
    if (records_.size() == keep_) records_.pop_front();
    records_.push_back(r);
  }
  std::vector<WalkedRecord> take() const { return {records_.begin(), records_.end()}; }

 private:
  std::size_t keep_;
  std::deque<WalkedRecord> records_;
};

}  // namespace

RingWalk walk_ring(const RingRef& ring, std::size_t keep) {
  RingWalk w;
  const TailWord head = ring.load_tail();
  w.head_position = head.position;
  // The margin readers use: a start a capacity / 8 ahead of the overwrite front is overtaken less
  // often on a busy ring.
  w.start_margin = ring.capacity / 8;
  if (!plausible_place(head)) {
    // Garbage in the claim word: nothing behind it can be found or trusted.
    w.from_position = w.to_position = head.position;
    w.problems.push_back(
        {head.position,
         fmt::format("the claim word holds position {} and sequence {}, which no writer "
                     "produces (a position must be a multiple of {} and the sequence at most "
                     "position / {} + 1)",
                     head.position, head.next_sequence, kFrameAlignment, kFrameAlignment)});
    return w;
  }
  const TailWord start = earliest_retained(ring, w.start_margin);
  std::uint64_t position = start.position;
  std::uint64_t expected = start.next_sequence;
  w.from_position = position;
  LastRecords last(keep);

  // Where the walk stops at a claim whose header it cannot trust for a length.
  auto stop_pending = [&](std::uint64_t p) {
    ++w.pending_records;
    w.stopped_at_pending = p;
    w.committed_beyond_pending = committed_after(ring, p, head.position);
  };

  // A word that keeps changing without any claim passing it is no writer's: stop there.
  constexpr int kMaxRereads = 1000;
  int rereads = 0;
  while (position < head.position) {
    RecordHeader copy;
    std::uint64_t state = 0;
    const HeaderRead read = read_header(ring, position, copy, state);
    if (read == HeaderRead::changed && ++rereads < kMaxRereads) continue;
    if (read == HeaderRead::overtaken) {
      w.overtaken = true;
      break;
    }
    if (read != HeaderRead::stable) {
      stop_pending(position);
      break;
    }
    rereads = 0;
    if (auto problem = header_problem(ring, position, state, copy)) {
      w.problems.push_back({position, *problem});
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
    last.add(r);
    if (copy.type == static_cast<std::uint16_t>(RecordType::padding)) {
      ++w.padding_records;
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
    position += frame_size(copy.length);
  }
  w.to_position = position;
  w.last = last.take();
  return w;
}

}  // namespace shmbus::core
