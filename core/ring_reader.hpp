// Reading a ring from one position. Two ways, chosen by whether the reader gates the producers:
//  - poll_inplace (gating readers): records are handed to the caller where they lie in the ring;
//    the producers cannot overwrite them until the reader's published position passes them.
//  - poll_copy (non-gating readers): a batch of frames is copied out, then the claim position is
//    checked once; if the producers may have reached the batch, the whole batch is discarded and
//    reported as lapped. Nothing torn is ever handed on.
// Both allocate nothing, lock nothing and make no system call.
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <cstring>

#include "layout.hpp"
#include "ring_ref.hpp"

namespace shmbus::core {

// What a reader saw at its position.
enum class ReadState : std::uint8_t {
  ready,      // a committed record is there
  empty,      // nothing committed yet (or a claim still being written)
  lapped,     // the producers have overwritten it (only non-gating readers)
  corrupt,    // a committed header failed validation
};

// A record as the reader hands it on. `payload` and `key` point into the ring (in-place polls) or
// into the reader's copy buffer (copying polls); valid until the next poll call. For a tagged
// record `payload` and `length` are the application's bytes, after the tag.
struct RecordView {
  std::uint64_t sequence;
  std::int64_t timestamp_ns;
  std::uint32_t length;
  RecordType type;  // data or tagged
  const std::byte* payload;
  std::uint64_t lost_before;  // sequences lost immediately before this one (0 if none)
  const std::byte* key = nullptr;  // tagged: key_length bytes; null when there is no key
  std::uint16_t key_length = 0;
  std::uint16_t message_type = 0;  // 0: none
};

// Moves a tagged record's view (payload and length still covering the whole record) past its tag,
// filling in key and message_type. False when the prefix is garbage: the reserved word is set, or
// the key is longer than kMaxKeyLength or than the record. Nothing is read beyond `length` bytes.
inline bool open_tag(RecordView& view) noexcept {
  if (view.length < sizeof(TagPrefix)) return false;
  TagPrefix prefix;
  std::memcpy(&prefix, view.payload, sizeof prefix);  // once: a hostile peer may rewrite it
  if (!tag_fits(prefix, view.length)) return false;
  const std::uint32_t tag = tag_size(prefix.key_length);
  view.key = prefix.key_length == 0 ? nullptr : view.payload + sizeof prefix;
  view.key_length = prefix.key_length;
  view.message_type = prefix.message_type;
  view.payload += tag;
  view.length -= tag;
  return true;
}


// Functions that read what a producer may be overwriting at the same time. The race is by design
// (what they read is validated afterwards, seqlock style), so ThreadSanitizer is told not to look.
#if defined(__SANITIZE_THREAD__)
#define SHMBUS_SEQLOCK_READER __attribute__((no_sanitize("thread"), noinline))
#else
#define SHMBUS_SEQLOCK_READER
#endif

// Copies bytes that a producer may be overwriting at the same time.
#if defined(__SANITIZE_THREAD__)
SHMBUS_SEQLOCK_READER inline void racy_copy(
    std::byte* dst, const std::byte* src, std::size_t n) noexcept {
  auto* d = reinterpret_cast<volatile unsigned char*>(dst);
  auto* s = reinterpret_cast<const volatile unsigned char*>(src);
  for (std::size_t i = 0; i < n; ++i) d[i] = s[i];
}
#else
inline void racy_copy(std::byte* dst, const std::byte* src, std::size_t n) noexcept {
  std::memcpy(dst, src, n);
}
#endif

// A place in the ring read from shared memory (the claim word, a checkpoint, a slot's saved
// position) is only a claim until checked. The ring starts at {position 0, sequence 1} and every
// sequence takes at least one frame (padding takes none), so a genuine place is frame aligned and
// carries a sequence between 1 and position / kFrameAlignment + 1. A garbage word (a stray write,
// a hostile peer) almost never is: its sequence is far above what its position can hold.
constexpr bool plausible_place(TailWord place) noexcept {
  return is_frame_aligned(place.position) && place.next_sequence >= 1 &&
         place.next_sequence - 1 <= place.position / kFrameAlignment;
}

// Whether a reader at `from` may move forward to `to` (both frame aligned): not backwards, and no
// more sequences between them than frames fit in the bytes between. `from.next_sequence` may be
// ahead of the sequence of the record at `from.position` (a spill reader that caught up from the
// journal): that only tightens the bound. A jump that fails this is corruption, not loss: counted
// as lost, it would report billions of messages that were never published.
constexpr bool plausible_move(TailWord from, TailWord to) noexcept {
  return is_frame_aligned(to.position) && to.position >= from.position &&
         to.next_sequence >= from.next_sequence &&
         to.next_sequence - from.next_sequence <= (to.position - from.position) / kFrameAlignment;
}

class RingReader {
 public:
  RingReader() = default;
  RingReader(RingRef ring, std::uint64_t position, std::uint64_t next_sequence) noexcept
      : ring_(ring), position_(position), next_sequence_(next_sequence) {}

  std::uint64_t position() const noexcept { return position_; }
  std::uint64_t next_sequence() const noexcept { return next_sequence_; }
  const RingRef& ring() const noexcept { return ring_; }

  // Moves to a boundary read from shared memory (a lapped or corrupt reader resynchronising);
  // the sequences skipped are reported as lost before the next record. Returns false, and the
  // reader stays put, unless the boundary is a genuine place (plausible_place), a plausible move
  // from here (plausible_move) and not beyond the claim word: anything else is garbage, and the
  // caller reports corruption instead of a loss.
  bool skip_to(TailWord boundary) noexcept {
    if (!plausible_place(boundary) ||
        !plausible_move(TailWord{position_, next_sequence_}, boundary)) {
      return false;
    }
    // acquire: as every reader's look at the claim word (ring_ref.hpp); the boundary came from a
    // claim word at least this old, and claims only grow.
    if (boundary.position > ring_.claimed_position(std::memory_order_acquire)) return false;
    pending_lost_ += boundary.next_sequence - next_sequence_;
    position_ = boundary.position;
    next_sequence_ = boundary.next_sequence;
    return true;
  }

  // Sequences known lost that the next record delivered will report (lost_before).
  std::uint64_t pending_lost() const noexcept { return pending_lost_; }
  // Adds sequences lost elsewhere (a spill subscriber's journal gap records) to that report.
  void note_lost(std::uint64_t count) noexcept { pending_lost_ += count; }

  // Skips `bytes` of padding (no sequence) at the current position.
  void skip_padding(std::uint64_t bytes) noexcept { position_ += bytes; }

  // Skips one claim whose producer never committed: `frame` bytes holding sequence `sequence`.
  void skip_abandoned(std::uint64_t frame_bytes, std::uint64_t sequence) noexcept {
    if (sequence >= next_sequence_) pending_lost_ += sequence - next_sequence_ + 1;
    position_ += frame_bytes;
    next_sequence_ = sequence + 1;
  }

  // The commit word at the current position (for stall detection on the slow path).
  std::uint64_t current_commit_word() const noexcept {
    // acquire: pairs with the producer's release of the pending/committed word, so the length and
    // sequence fields read after it are the ones written before it.
    return ring_.header_at(position_)->commit.load(std::memory_order_acquire);
  }

  // Hands up to max_records committed records to on_record(const RecordView&) in place.
  // Returns the state that stopped it; `delivered` counts the data records handed on.
  template <class OnRecord>
  ReadState poll_inplace(OnRecord&& on_record, std::size_t max_records,
                         std::size_t& delivered) noexcept {
    delivered = 0;
    if (!is_frame_aligned(position_)) [[unlikely]] return ReadState::corrupt;
    while (delivered < max_records) {
      const RecordHeader* h = ring_.header_at(position_);
      // acquire: pairs with the producer's release store in commit(); the fields and payload
      // read below are the ones written before it.
      if (h->commit.load(std::memory_order_acquire) != ring_.committed(position_)) {
        return ReadState::empty;
      }
      if (!valid_fields(h->type, h->length, position_)) return ReadState::corrupt;
      const auto type = static_cast<RecordType>(h->type);
      if (type == RecordType::padding) {
        position_ += kRecordHeaderSize + h->length;
        continue;
      }
      if (h->sequence != next_sequence_) return ReadState::corrupt;
      const std::uint64_t frame = frame_size(h->length);
      if (type == RecordType::abandoned) {
        skip_abandoned(frame, h->sequence);
        continue;
      }
      RecordView view{h->sequence, h->timestamp_ns, h->length, type,
                      reinterpret_cast<const std::byte*>(h + 1), pending_lost_};
      if (type == RecordType::tagged && !open_tag(view)) [[unlikely]] return ReadState::corrupt;
      pending_lost_ = 0;
      position_ += frame;
      ++next_sequence_;
      ++delivered;
      on_record(view);
    }
    return ReadState::ready;
  }

  // Copies a batch of committed frames into `buffer`, checks the claim position once, then hands
  // the copies to on_record. On lapped, nothing is handed on and the position is unchanged: the
  // caller resynchronises with skip_to(earliest_retained(...)).
  template <class OnRecord>
  ReadState poll_copy(OnRecord&& on_record, std::size_t max_records, std::byte* buffer,
                      std::size_t buffer_size, std::size_t& delivered) noexcept {
    delivered = 0;
    std::size_t used = 0;
    const ReadState stop = copy_batch(max_records, buffer, buffer_size, used);
    if (stop == ReadState::lapped) return stop;

    // The copies are now known intact; they are still shared-memory bytes, so they are validated
    // again before they are trusted (a hostile peer may have rewritten a committed record).
    std::size_t off = 0;
    while (off < used) {
      const auto* h = reinterpret_cast<const RecordHeader*>(buffer + off);
      if (!valid_fields(h->type, h->length, position_)) return ReadState::corrupt;
      const auto type = static_cast<RecordType>(h->type);
      const std::uint64_t frame = type == RecordType::padding ? kRecordHeaderSize + h->length
                                                              : frame_size(h->length);
      if (off + frame > used) return ReadState::corrupt;
      if (type != RecordType::padding && h->sequence != next_sequence_) return ReadState::corrupt;
      position_ += frame;
      off += frame;
      if (type == RecordType::padding) continue;
      if (type == RecordType::abandoned) {
        ++pending_lost_;
        ++next_sequence_;
        continue;
      }
      RecordView view{h->sequence, h->timestamp_ns, h->length, type,
                      reinterpret_cast<const std::byte*>(h + 1), pending_lost_};
      if (type == RecordType::tagged && !open_tag(view)) [[unlikely]] {
        // Not consumed: the reader stays at the record, as for any other failed validation.
        position_ -= frame;
        return ReadState::corrupt;
      }
      pending_lost_ = 0;
      ++next_sequence_;
      ++delivered;
      on_record(view);
    }
    return stop;
  }

 private:
  // The copying half of poll_copy: reads frames a lapping producer may be overwriting (the race is
  // by design and validated by the claim check at the end), so ThreadSanitizer is told not to look
  // here; what it copies is only trusted after that check. Returns lapped, or why it stopped.
  SHMBUS_SEQLOCK_READER ReadState copy_batch(std::size_t max_records, std::byte* buffer,
                                             std::size_t buffer_size, std::size_t& used) noexcept {
    const std::uint64_t batch_start = position_;
    if (!is_frame_aligned(batch_start)) [[unlikely]] return ReadState::corrupt;
    // No look at the claim position before copying: it is the line every producer writes per
    // message, and the look after the copy is the one that decides. A reader already lapped
    // copies frames that fail validation or get discarded below, never beyond the buffer.
    std::uint64_t pos = batch_start;
    std::size_t frames = 0;
    ReadState stop = ReadState::ready;
    while (frames < max_records) {
      const RecordHeader* h = ring_.header_at(pos);
      // acquire: as in poll_inplace; the copy below may still be torn by a lapping producer,
      // which the claim check after the batch detects.
      if (h->commit.load(std::memory_order_acquire) != ring_.committed(pos)) {
        stop = ReadState::empty;
        break;
      }
      RecordHeader copy;
      racy_copy(reinterpret_cast<std::byte*>(&copy), reinterpret_cast<const std::byte*>(h),
                sizeof copy);
      if (!valid_fields(copy.type, copy.length, pos)) {
        stop = ReadState::corrupt;  // confirmed or excused by the lap check below
        break;
      }
      const std::uint64_t frame = copy.type == static_cast<std::uint16_t>(RecordType::padding)
                                      ? kRecordHeaderSize + copy.length
                                      : frame_size(copy.length);
      if (used + frame > buffer_size) break;
      racy_copy(buffer + used, reinterpret_cast<const std::byte*>(h), frame);
      used += frame;
      pos += frame;
      if (copy.type != static_cast<std::uint16_t>(RecordType::padding)) ++frames;
    }
    // acquire fence: every byte copied above was read before the claim position below; if any of
    // them came from a producer that lapped us, that producer's claim (ordered before its writes
    // by the release fence after its claim) is visible here.
    std::atomic_thread_fence(std::memory_order_acquire);
    // relaxed: the fence above orders it after the copies.
    if (ring_.claimed_position(std::memory_order_relaxed) > batch_start + ring_.capacity) {
      return ReadState::lapped;
    }
    return stop;
  }

  // Bounds a header read from shared memory before anything is indexed by it.
  bool valid_fields(std::uint16_t type, std::uint32_t length,
                    std::uint64_t position) const noexcept {
    const std::uint64_t offset = position & ring_.mask;
    const std::uint64_t room = ring_.capacity - offset;  // bytes to the end of the lap
    switch (static_cast<RecordType>(type)) {
      case RecordType::padding:
        return std::uint64_t{length} + kRecordHeaderSize == room;
      case RecordType::data:
      case RecordType::tagged:  // the tag is checked where it is read (open_tag)
        return length <= ring_.max_message && frame_size(length) <= room;
      case RecordType::abandoned:  // a repair may round a dead claim's length up to its frame
        return frame_size(length) <= frame_size(ring_.max_message) && frame_size(length) <= room;
    }
    return false;
  }

  RingRef ring_;
  std::uint64_t position_ = 0;
  std::uint64_t next_sequence_ = 1;
  std::uint64_t pending_lost_ = 0;
};

}  // namespace shmbus::core
