#include "ring.hpp"
#include "ring_reader.hpp"

#include <immintrin.h>

#include <fmt/format.h>

#include <string>

namespace shmbus::core {
namespace {

constexpr bool is_power_of_two(std::uint64_t v) { return v != 0 && (v & (v - 1)) == 0; }

unsigned __int128 pack(TailWord t) noexcept {
  unsigned __int128 v;
  std::memcpy(&v, &t, sizeof v);
  return v;
}
TailWord unpack(unsigned __int128 v) noexcept {
  TailWord t;
  std::memcpy(&t, &v, sizeof t);
  return t;
}

}  // namespace

std::optional<std::string> check_params(const RingParams& p) {
  if (!is_power_of_two(p.capacity) || p.capacity < kMinCapacity || p.capacity > kMaxCapacity) {
    return fmt::format("capacity {} is not a power of two between {} and {} bytes", p.capacity,
                       kMinCapacity, kMaxCapacity);
  }
  // A record must fit in a quarter lap so that padding at the lap end never starves a claim.
  const std::uint64_t largest = p.capacity / 4 - kRecordHeaderSize;
  if (p.max_message == 0 || p.max_message > largest) {
    return fmt::format("max message {} must be between 1 and {} bytes for capacity {}",
                       p.max_message, largest, p.capacity);
  }
  if (std::strlen(p.name) >= sizeof(RingHeader::name)) {
    return fmt::format("channel name is longer than {} bytes", sizeof(RingHeader::name) - 1);
  }
  return std::nullopt;
}

void format_ring(void* base, const RingParams& p) {
  auto* h = static_cast<RingHeader*>(base);
  h->magic = kRingMagic;
  h->layout_version = kLayoutVersion;
  h->header_size = sizeof(RingHeader);
  h->layout_fingerprint = layout_fingerprint();
  h->capacity = p.capacity;
  h->max_message = p.max_message;
  h->flags = p.single_producer ? kFlagSingleProducer : 0;
  h->incarnation = p.incarnation;
  // Mix the incarnation so that keys of consecutive incarnations share no structure.
  std::uint64_t k = p.incarnation * 0x9E3779B97F4A7C15ULL;
  k ^= k >> 29;
  h->commit_key = (k | (1ULL << 63)) & ~kCommitStateMask;
  h->created_ns = p.created_ns;
  h->creator_pid = p.creator_pid;
  h->creator_start_time = p.creator_start_time;
  std::memset(h->name, 0, sizeof h->name);
  std::memcpy(h->name, p.name, std::strlen(p.name));
  h->tail = TailWord{0, 1};
  // Record 1 always starts at position 0: the first boundary hint.
  h->checkpoints[0].position.store(0, std::memory_order_relaxed);
  h->checkpoints[0].sequence.store(1, std::memory_order_relaxed);
  // release: everything above is visible to whoever acquire-loads the ready marker.
  h->ready.store(kReadyMarker, std::memory_order_release);
}

std::optional<std::string> check_ring(const void* base, std::size_t size) {
  if (size < kRingDataOffset) {
    return fmt::format(
        "segment is {} bytes, smaller than a ring header ({}): truncated by another process, or "
        "not a ring",
        size, kRingDataOffset);
  }
  const auto* h = static_cast<const RingHeader*>(base);
  if (h->magic != kRingMagic) {
    return fmt::format("not a shmbus ring (magic {:016x}, expected {:016x})", h->magic,
                       kRingMagic);
  }
  if (h->layout_version != kLayoutVersion) {
    return fmt::format("layout version {}, this build reads version {}", h->layout_version,
                       kLayoutVersion);
  }
  if (h->header_size != sizeof(RingHeader) || h->layout_fingerprint != layout_fingerprint()) {
    return fmt::format(
        "layout fingerprint {:016x} (header {} bytes) differs from this build's {:016x} ({} "
        "bytes): written by an incompatible build",
        h->layout_fingerprint, h->header_size, layout_fingerprint(), sizeof(RingHeader));
  }
  // acquire: pairs with format_ring's release; the identity fields above are final.
  if (h->ready.load(std::memory_order_acquire) != kReadyMarker) {
    return std::string("segment is not ready (its creator has not finished or died)");
  }
  RingParams p;
  p.capacity = h->capacity;
  p.max_message = h->max_message;
  p.name = "";
  if (auto err = check_params(p)) return fmt::format("header declares a bad geometry: {}", *err);
  if (ring_segment_size(h->capacity) != size) {
    // Creation allocates exactly the declared size: only an ftruncate by a process with write
    // access to the object changes it.
    return fmt::format(
        "segment is {} bytes but its header declares {}: truncated (or extended) by another "
        "process",
        size, ring_segment_size(h->capacity));
  }
  if ((h->commit_key & kCommitStateMask) != 0) return std::string("header has a bad commit key");
  return std::nullopt;
}

RingRef RingRef::attach(void* base) noexcept {
  auto* h = static_cast<RingHeader*>(base);
  RingRef r;
  r.header = h;
  r.data = static_cast<std::byte*>(base) + kRingDataOffset;
  r.capacity = h->capacity;
  r.mask = h->capacity - 1;
  r.max_message = h->max_message;
  r.key = h->commit_key;
  return r;
}

TailWord RingRef::load_tail() const noexcept {
  for (;;) {
    // acquire on all three: the two sequence loads bracket the position load in this thread's
    // order, so equal sequences mean no claim landed in between.
    const std::uint64_t s1 = claimed_sequence(std::memory_order_acquire);  // acquire: above
    const std::uint64_t p = claimed_position(std::memory_order_acquire);   // acquire: above
    const std::uint64_t s2 = claimed_sequence(std::memory_order_acquire);  // acquire: above
    if (s1 == s2) return TailWord{p, s1};
  }
}

namespace {

bool vector_store_is_atomic() noexcept {
#if defined(__SANITIZE_THREAD__)
  return false;  // ThreadSanitizer cannot see the vector store: use the CAS (see ring.hpp)
#else
  return __builtin_cpu_supports("avx");
#endif
}

}  // namespace

RingWriter::RingWriter(RingRef ring, std::uint16_t producer_tag, bool exclusive) noexcept
    : ring_(ring), producer_tag_(producer_tag), exclusive_(exclusive) {
  if (exclusive_) local_tail_ = ring_.load_tail();
  vector_tail_store_ = vector_store_is_atomic();
  checkpoint_shift_ = static_cast<std::uint32_t>(std::countr_zero(ring_.capacity / kCheckpoints));
}

bool RingWriter::cas_tail(TailWord& expected, TailWord want) noexcept {
  // Full barrier (lock cmpxchg16b); see ring.hpp.
  const unsigned __int128 seen = __sync_val_compare_and_swap(
      reinterpret_cast<unsigned __int128*>(&ring_.header->tail), pack(expected), pack(want));
  if (seen == pack(expected)) return true;
  expected = unpack(seen);
  return false;
}

ClaimStatus RingWriter::try_claim_batch(std::span<const std::uint32_t> lengths,
                                        std::uint64_t gate_floor,
                                        std::span<ClaimTicket> out) noexcept {
  std::uint64_t bytes = 0;
  for (std::uint32_t length : lengths) {
    if (length > ring_.max_message) return ClaimStatus::too_large;
    bytes += frame_size(length);
  }
  // A batch must fit in a quarter lap, like one maximum-size record.
  if (lengths.empty() || out.size() < lengths.size() ||
      bytes > frame_size(ring_.max_message)) {
    return ClaimStatus::too_large;
  }
  TailWord at;
  std::uint64_t pad;
  const ClaimStatus st =
      exclusive_ ? reserve<true>(bytes, lengths.size(), gate_floor, at.position, at.next_sequence, pad)
                 : reserve<false>(bytes, lengths.size(), gate_floor, at.position, at.next_sequence, pad);
  if (st != ClaimStatus::ok) return st;
  std::uint64_t position = at.position + pad;
  for (std::size_t i = 0; i < lengths.size(); ++i) {
    ClaimTicket& t = out[i];
    const std::uint64_t frame = frame_size(lengths[i]);
    t.payload = reinterpret_cast<std::byte*>(ring_.header_at(position) + 1);
    t.length = lengths[i];
    t.position = position;
    t.sequence = at.next_sequence + i;
    t.start = i == 0 ? at.position : position;  // the padding, if any, goes with the first
    t.end = position + frame;
    t.type = RecordType::data;  // `out` may be uninitialised storage (Publisher::try_claim_batch)
    position += frame;
  }
  return ClaimStatus::ok;
}

void RingWriter::write_header(const ClaimTicket& t, std::int64_t now_ns) noexcept {
  if (t.position != t.start) write_padding(t.start, t.position - t.start, now_ns);
  fill_header(t.position, t.length, t.sequence, t.type, now_ns);
  RecordHeader* h = ring_.header_at(t.position);
  // release: a peer that sees "pending" may trust length and sequence (it needs them to mark the
  // claim abandoned should we die before committing).
  h->commit.store(commit_word(ring_.key, t.position, kStatePending), std::memory_order_release);
  note_checkpoint(t.start, t.end, t.sequence + 1);
}

CommitStatus RingWriter::commit(const ClaimTicket& t) noexcept {
  RecordHeader* h = ring_.header_at(t.position);
  // acquire: pairs with the repairer's release of repaired_through, which it stores before it
  // rewrites any header; a repair that covered this claim (even one that could not tell where our
  // header would be) is seen here.
  if (ring_.header->repaired_through.load(std::memory_order_acquire) > t.position) {
    return CommitStatus::abandoned;
  }
  // relaxed: only this producer and a repairer write the word; a repairer moves it away from
  // "pending" only after the abandon timeout, long after any live producer has committed.
  if (h->commit.load(std::memory_order_relaxed) !=
      commit_word(ring_.key, t.position, kStatePending)) {
    return CommitStatus::abandoned;
  }
  // release: the payload and header written before are visible to a reader that acquires this.
  h->commit.store(ring_.committed(t.position), std::memory_order_release);
  return CommitStatus::ok;
}

void RingWriter::abandon(const ClaimTicket& t) noexcept {
  // Every field: after begin() (unlike write_header()) none is written yet.
  fill_header(t.position, t.length, t.sequence, RecordType::abandoned, t.timestamp_ns);
  RecordHeader* h = ring_.header_at(t.position);
  // release: readers that see the commit see the abandoned type and skip the payload.
  h->commit.store(ring_.committed(t.position), std::memory_order_release);
}

void RingWriter::write_padding(std::uint64_t position, std::uint64_t bytes,
                               std::int64_t now_ns) noexcept {
  RecordHeader* h = ring_.header_at(position);
  h->length = static_cast<std::uint32_t>(bytes - kRecordHeaderSize);
  h->type = static_cast<std::uint16_t>(RecordType::padding);
  h->producer = producer_tag_;
  h->sequence = 0;
  h->timestamp_ns = now_ns;
  // release: the padding's length is visible to whoever sees it committed.
  h->commit.store(ring_.committed(position), std::memory_order_release);
}

std::optional<std::string> check_record(const RingRef& ring, std::uint64_t position,
                                        const RecordHeader& h) {
  const std::uint64_t offset = position & ring.mask;
  const std::uint64_t room = ring.capacity - offset;
  switch (static_cast<RecordType>(h.type)) {
    case RecordType::padding:
      if (std::uint64_t{h.length} + kRecordHeaderSize != room) {
        return fmt::format("padding at position {} has length {}, expected {}", position,
                           h.length, room - kRecordHeaderSize);
      }
      return std::nullopt;
    case RecordType::data:
    case RecordType::tagged:  // the tag itself is checked by whoever reads the payload
    case RecordType::abandoned:
      // A repair may round a dead claim's length up to its frame (as RingReader::valid_fields).
      if (h.type != static_cast<std::uint16_t>(RecordType::abandoned)
              ? h.length > ring.max_message
              : frame_size(h.length) > frame_size(ring.max_message)) {
        return fmt::format("record at position {} has length {} above the maximum {}", position,
                           h.length, ring.max_message);
      }
      if (frame_size(h.length) > room) {
        return fmt::format("record at position {} (length {}) runs past the end of the ring",
                           position, h.length);
      }
      return std::nullopt;
  }
  return fmt::format("record at position {} has unknown type {}", position, h.type);
}

namespace {

// A place read from shared memory (a checkpoint) that the ring as the claim word `tail` describes
// can hold: genuine by itself, within one lap behind the claim word, and with no more sequences
// between it and the claim word than frames fit between (see plausible_move). A garbage claim
// word (a sequence its position cannot hold) therefore makes no checkpoint usable.
bool within_reach(const RingRef& ring, TailWord place, TailWord tail) noexcept {
  return plausible_place(place) && plausible_move(place, tail) &&
         tail.position - place.position <= ring.capacity;
}

// A checkpoint is usable if it is within reach of the claim word and the header it names is
// committed at that position and agrees with it (for padding: the record after it, at the next
// lap's start, carries the sequence). Read seqlock style: the header may be overwritten while we
// look, so the commit word is checked again after.
SHMBUS_SEQLOCK_READER bool checkpoint_valid(const RingRef& ring, std::uint64_t pos,
                                            std::uint64_t seq, TailWord tail,
                                            int depth = 0) noexcept {
  if (pos >= tail.position || !within_reach(ring, TailWord{pos, seq}, tail)) return false;
  const RecordHeader* h = ring.header_at(pos);
  // acquire: the fields read below were written before this commit.
  if (h->commit.load(std::memory_order_acquire) != ring.committed(pos)) return false;
  RecordHeader copy;
  racy_copy(reinterpret_cast<std::byte*>(&copy), reinterpret_cast<const std::byte*>(h),
            sizeof copy);
  // acquire: the copy above happened before this second look at the commit word.
  std::atomic_thread_fence(std::memory_order_acquire);
  // relaxed: ordered after the copy by the fence above.
  if (h->commit.load(std::memory_order_relaxed) != ring.committed(pos)) return false;
  if (check_record(ring, pos, copy)) return false;
  if (copy.type == static_cast<std::uint16_t>(RecordType::padding)) {
    return depth == 0 &&
           checkpoint_valid(ring, pos + kRecordHeaderSize + copy.length, seq, tail, 1);
  }
  return copy.sequence == seq;
}

std::optional<TailWord> find_boundary_below(const RingRef& ring, std::uint64_t min_position,
                                            TailWord tail) noexcept {
  std::optional<TailWord> best;
  for (const Checkpoint& cp : ring.header->checkpoints) {
    // relaxed: hints, validated against the claim word and the record header below.
    const std::uint64_t pos = cp.position.load(std::memory_order_relaxed);
    const std::uint64_t seq = cp.sequence.load(std::memory_order_relaxed);
    if (pos < min_position || (best && pos >= best->position)) continue;
    if (checkpoint_valid(ring, pos, seq, tail)) best = TailWord{pos, seq};
  }
  return best;
}

}  // namespace

std::optional<TailWord> find_boundary(const RingRef& ring, std::uint64_t min_position) noexcept {
  // load_tail acquires: checkpoints and headers read after it are at least as new as this claim.
  return find_boundary_below(ring, min_position, ring.load_tail());
}

TailWord earliest_retained(const RingRef& ring, std::uint64_t margin) noexcept {
  const TailWord tail = ring.load_tail();
  // A claim word no writer produces has no boundary behind it: the caller's plausibility checks
  // (RingReader::skip_to, plausible_place) refuse it.
  if (!plausible_place(tail)) return tail;
  // Nothing overwritten yet (with room to spare): record 1 at position 0 is still there.
  if (tail.position + margin <= ring.capacity) return TailWord{0, 1};
  if (auto b = find_boundary_below(ring, tail.position + margin - ring.capacity, tail)) return *b;
  return tail;
}

TailWord boundary_for_sequence(const RingRef& ring, std::uint64_t sequence,
                               std::uint64_t margin) noexcept {
  const TailWord tail = ring.load_tail();
  if (sequence >= tail.next_sequence || !plausible_place(tail)) return tail;
  const std::uint64_t floor = tail.position > ring.capacity ? tail.position - ring.capacity : 0;
  std::optional<TailWord> best;
  for (const Checkpoint& cp : ring.header->checkpoints) {
    // relaxed: hints, validated against the claim word and the record header.
    const std::uint64_t pos = cp.position.load(std::memory_order_relaxed);
    const std::uint64_t seq = cp.sequence.load(std::memory_order_relaxed);
    if (pos < floor || seq > sequence || (best && seq <= best->next_sequence)) continue;
    if (checkpoint_valid(ring, pos, seq, tail)) best = TailWord{pos, seq};
  }
  if (best) return *best;
  return earliest_retained(ring, margin);
}

}  // namespace shmbus::core
