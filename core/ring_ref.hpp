// A validated view of one mapped ring: where its header and data lie, and the only ways to read
// the tail word (the producers' claim word) outside the claim itself.
//
// The tail word {position, next_sequence} changes only as a whole: by a 16-byte compare-and-swap
// (shared producers), or by an exclusive producer's one 16-byte store where that store is atomic
// (ring.cpp; else by the same compare-and-swap). A load of either
// half is therefore a consistent 8-byte read of it; a consistent pair without writing is
// load_tail(). Every caller names the memory order it needs and says why at the call.
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>

#include "layout.hpp"

namespace shmbus::core {

// Cheap to copy; does not own the memory.
struct RingRef {
  RingHeader* header = nullptr;
  std::byte* data = nullptr;
  std::uint64_t capacity = 0;
  std::uint64_t mask = 0;
  std::uint32_t max_message = 0;
  std::uint64_t key = 0;

  // Only after check_ring() (ring.hpp) said the segment is usable.
  static RingRef attach(void* base) noexcept;

  RecordHeader* header_at(std::uint64_t position) const noexcept {
    return reinterpret_cast<RecordHeader*>(data + (position & mask));
  }
  std::uint64_t committed(std::uint64_t position) const noexcept {
    return commit_word(key, position, kStateCommitted);
  }

  // The highest position any producer has claimed. Acquire lets a reader that sees a claim also
  // see what was ordered before it (the release fence after a claim in ring.cpp).
  std::uint64_t claimed_position(std::memory_order order) const noexcept {
    return std::atomic_ref<std::uint64_t>(header->tail.position).load(order);
  }
  // The sequence the next claim will take, alone.
  std::uint64_t claimed_sequence(std::memory_order order) const noexcept {
    return std::atomic_ref<std::uint64_t>(header->tail.next_sequence).load(order);
  }
  // Both halves, consistent, without writing (read-only mappings cannot CAS): the sequence changes
  // with every claim, so an unchanged sequence around the position load means no claim between.
  TailWord load_tail() const noexcept;
};

}  // namespace shmbus::core
