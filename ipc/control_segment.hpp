// A control segment in memory: formatting a new one, checking a mapped one against the layout its
// header declares, and ControlRef, the only way to its arrays. ipc/control_layout.hpp holds the
// bytes; this file holds the rules for reaching them safely.
#pragma once

#include <algorithm>
#include <atomic>
#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <type_traits>

#include <tl/expected.hpp>

#include "ipc/control_layout.hpp"

namespace shmbus::detail {

// The slot counts, offsets and size a header declares, as they are (unchecked: check_control
// checks them), and writing them (the creator; tests that damage a header on purpose).
ControlLayout declared_layout(const ControlHeader& header) noexcept;
void declare_layout(ControlHeader& header, const ControlLayout& layout) noexcept;

// Formats a new, zero-filled segment of layout.segment_size bytes at `base` (creator only) and
// release-stores `ready` last.
void format_control(void* base, const ControlLayout& layout, std::uint64_t incarnation,
                    ControlRole role = ControlRole::control) noexcept;

// The layout a mapped control segment of `size` bytes declares, if this build can use it for the
// ring's `incarnation`: the identity (magic, version and fingerprint, ready, incarnation), then
// every count within its bounds, every offset and the segment size equal to what control_layout()
// computes from the counts, and the mapping at least that large. Nothing past the fixed header is
// read, so a hostile or corrupt header gets a message (naming what is wrong), never an access out
// of bounds. A message mentions "version" exactly when the layout version is what differs. The
// segment must also declare `role`: a readers' registry is never taken for the control segment.
tl::expected<ControlLayout, std::string> check_control(const void* base, std::size_t size,
                                                       std::uint64_t incarnation,
                                                       ControlRole role = ControlRole::control);

// A validated view of one mapped control segment (after check_control): its header, and its
// arrays where the validated layout puts them. It keeps that layout and never re-reads the
// counts or offsets from shared memory, where a peer could change them. `Header` is ControlHeader
// (read-write mappings) or const ControlHeader (tools' read-only ones). Cheap to copy; does not
// own the memory.
template <typename Header>
class BasicControlRef {
  template <typename T>
  using Like = std::conditional_t<std::is_const_v<Header>, const T, T>;
  using Byte = Like<std::byte>;

 public:
  BasicControlRef() = default;
  BasicControlRef(Like<void>* base, const ControlLayout& layout) noexcept
      : base_(static_cast<Byte*>(base)), layout_(layout) {}

  Header& header() const noexcept { return *reinterpret_cast<Header*>(base_); }
  const ControlLayout& layout() const noexcept { return layout_; }

  // Every slot the channel has.
  std::span<Like<SubscriberSlot>> subscriber_slots() const noexcept {
    return {reinterpret_cast<Like<SubscriberSlot>*>(base_ + layout_.subscriber_slots_offset),
            layout_.subscriber_slots};
  }
  std::span<Like<ProducerSlot>> producer_slots() const noexcept {
    return {reinterpret_cast<Like<ProducerSlot>*>(base_ + layout_.producer_slots_offset),
            layout_.producer_slots};
  }
  // The slots below the high-water mark: every slot ever taken, as far as the mark's load shows
  // (acquire, see ControlHeader::subscriber_slots_high_water). A mark beyond the count (garbage)
  // is clamped to it.
  std::span<Like<SubscriberSlot>> subscriber_slots_taken() const noexcept {
    return subscriber_slots().first(subscriber_slots_high_water());
  }
  std::span<Like<ProducerSlot>> producer_slots_taken() const noexcept {
    return producer_slots().first(producer_slots_high_water());
  }
  std::uint32_t subscriber_slots_high_water() const noexcept {
    // acquire: the caller's loads of the slots below it are not made before it. The mark was
    // raised before the slot was taken, so what shows a registration (scan_gate_floor says what)
    // shows the mark that covers it.
    return std::min(header().subscriber_slots_high_water.load(std::memory_order_acquire),
                    layout_.subscriber_slots);
  }
  std::uint32_t producer_slots_high_water() const noexcept {
    // acquire: as subscriber_slots_high_water.
    return std::min(header().producer_slots_high_water.load(std::memory_order_acquire),
                    layout_.producer_slots);
  }

  // The index of a slot of this segment (one of subscriber_slots()).
  std::uint32_t index_of(const SubscriberSlot& slot) const noexcept {
    return static_cast<std::uint32_t>(&slot - subscriber_slots().data());
  }
  std::uint32_t index_of(const ProducerSlot& slot) const noexcept {
    return static_cast<std::uint32_t>(&slot - producer_slots().data());
  }
  // The latency histogram of subscriber slot `index` (index < layout().subscriber_slots).
  Like<core::LatencyHistogram>& latency_histogram(std::uint32_t index) const noexcept {
    return reinterpret_cast<Like<core::LatencyHistogram>*>(base_ + layout_.latency_offset)[index];
  }

  // Whether slot `index`'s latest registrant chose the block policy (ControlHeader::block_slots).
  // The hints of slots [64 * word, 64 * word + 64), as one word.
  std::uint64_t block_slot_hints(std::uint32_t word) const noexcept {
    // acquire: as subscriber_slots_high_water (a registrant sets its bit before it publishes its
    // slot), for the slot loads made after it.
    return header().block_slots[word].load(std::memory_order_acquire);
  }

  // Raises the high-water mark to cover slot `index`, before that slot is taken.
  void cover_subscriber_slot(std::uint32_t index) const noexcept
    requires(!std::is_const_v<Header>)
  {
    raise(header().subscriber_slots_high_water, index + 1);
  }
  void cover_producer_slot(std::uint32_t index) const noexcept
    requires(!std::is_const_v<Header>)
  {
    raise(header().producer_slots_high_water, index + 1);
  }
  // Sets (block) or clears slot `index`'s bit in block_slots. Only by the slot's holder, before
  // its owner word says active.
  void set_block_slot_hint(std::uint32_t index, bool block) const noexcept
    requires(!std::is_const_v<Header>)
  {
    std::atomic<std::uint64_t>& word = header().block_slots[index / 64];
    const std::uint64_t bit = std::uint64_t{1} << (index % 64);
    // relaxed (all three): the bit is published by the owner word's release store and the gate
    // epoch's bump that follow it in the holder's registration.
    if (block) {
      word.fetch_or(bit, std::memory_order_relaxed);  // relaxed: published as said above
    } else if ((word.load(std::memory_order_relaxed) & bit) != 0) {  // relaxed: above
      word.fetch_and(~bit, std::memory_order_relaxed);  // relaxed: above
    }
  }

 private:
  static void raise(std::atomic<std::uint32_t>& mark, std::uint32_t at_least) noexcept {
    // relaxed: the raise is sequenced before the slot's claim and the registration's release
    // stores (owner word, gate_epoch, a producer's in-flight bound); whoever synchronizes with
    // those and then loads the mark sees this value or a later, larger one (the mark only grows).
    std::uint32_t seen = mark.load(std::memory_order_relaxed);
    while (seen < at_least &&
           !mark.compare_exchange_weak(seen, at_least, std::memory_order_relaxed)) {  // relaxed: above
    }
  }

  Byte* base_ = nullptr;
  ControlLayout layout_;
};

using ControlRef = BasicControlRef<ControlHeader>;
using ConstControlRef = BasicControlRef<const ControlHeader>;

}  // namespace shmbus::detail
