#include "ipc/control_segment.hpp"

#include <fmt/format.h>

namespace shmbus::detail {

ControlLayout declared_layout(const ControlHeader& header) noexcept {
  ControlLayout declared;
  declared.subscriber_slots = header.slot_count;
  declared.producer_slots = header.producer_slot_count;
  declared.subscriber_slots_offset = header.subscriber_slots_offset;
  declared.producer_slots_offset = header.producer_slots_offset;
  declared.latency_offset = header.latency_offset;
  declared.segment_size = header.segment_size;
  return declared;
}

void declare_layout(ControlHeader& header, const ControlLayout& layout) noexcept {
  header.slot_count = layout.subscriber_slots;
  header.producer_slot_count = layout.producer_slots;
  header.subscriber_slots_offset = layout.subscriber_slots_offset;
  header.producer_slots_offset = layout.producer_slots_offset;
  header.latency_offset = layout.latency_offset;
  header.segment_size = layout.segment_size;
}

void format_control(void* base, const ControlLayout& layout, std::uint64_t incarnation,
                    ControlRole role) noexcept {
  ControlRef control(base, layout);
  ControlHeader& c = control.header();
  c.magic = kControlMagic;
  c.version = kControlVersion;
  c.header_size = sizeof(ControlHeader);
  c.layout_fingerprint = control_fingerprint();
  c.incarnation = incarnation;
  c.role = static_cast<std::uint32_t>(role);
  declare_layout(c, layout);
  for (ProducerSlot& p : control.producer_slots()) {
    p.in_flight.store(kNoClaim, std::memory_order_relaxed);  // relaxed: published by `ready`
  }
  // release: the identity above is visible to whoever acquire-loads `ready`.
  c.ready.store(core::kReadyMarker, std::memory_order_release);
}

tl::expected<ControlLayout, std::string> check_control(const void* base, std::size_t size,
                                                       std::uint64_t incarnation,
                                                       ControlRole role) {
  // The identity first (every version starts with it), so that an older build's segment is
  // reported as the version mismatch it is.
  if (size < offsetof(ControlHeader, gate_epoch)) {
    return tl::unexpected(fmt::format("control segment is too small ({} bytes)", size));
  }
  const auto* c = static_cast<const ControlHeader*>(base);
  if (c->magic != kControlMagic) return tl::unexpected(std::string("control segment has a bad magic"));
  if (c->version != kControlVersion || c->layout_fingerprint != control_fingerprint()) {
    return tl::unexpected(fmt::format(
        "control segment layout version {} (fingerprint {:016x}) differs from this build's {} "
        "({:016x})",
        c->version, c->layout_fingerprint, kControlVersion, control_fingerprint()));
  }
  if (size < sizeof(ControlHeader)) {
    return tl::unexpected(fmt::format("control segment is too small ({} bytes) for its header",
                                      size));
  }
  // acquire: pairs with the creator's release of `ready`; everything below was written before.
  if (c->ready.load(std::memory_order_acquire) != core::kReadyMarker) {
    return tl::unexpected(std::string("control segment is not ready"));
  }
  if (c->incarnation != incarnation) {
    return tl::unexpected(std::string("control segment belongs to another incarnation"));
  }
  if (c->role != static_cast<std::uint32_t>(role)) {
    return tl::unexpected(fmt::format("segment declares role {}, not the {} ({})", c->role,
                                      role == ControlRole::control ? "control segment"
                                                                   : "readers' registry",
                                      static_cast<std::uint32_t>(role)));
  }
  // Each declared value is read once, into `declared`, and only that copy is checked and used: a
  // peer rewriting the header meanwhile cannot make us use a value we did not check.
  const ControlLayout declared = declared_layout(*c);
  if (c->header_size != sizeof(ControlHeader)) {
    return tl::unexpected(fmt::format("control segment declares a {} byte header, not {}",
                                      c->header_size, sizeof(ControlHeader)));
  }
  if (declared.subscriber_slots < 1 || declared.subscriber_slots > kMaxSubscriberSlots ||
      declared.producer_slots < 1 || declared.producer_slots > kMaxProducerSlots) {
    return tl::unexpected(fmt::format(
        "control segment declares {} subscriber slots and {} producer slots (accepted: 1 to {} "
        "and 1 to {})",
        declared.subscriber_slots, declared.producer_slots, kMaxSubscriberSlots,
        kMaxProducerSlots));
  }
  const ControlLayout expected = control_layout(declared.subscriber_slots, declared.producer_slots);
  if (declared != expected) {
    return tl::unexpected(fmt::format(
        "control segment declares offsets {}, {}, {} and {} bytes for {} subscriber and {} "
        "producer slots, which take offsets {}, {}, {} and {} bytes",
        declared.subscriber_slots_offset, declared.producer_slots_offset, declared.latency_offset,
        declared.segment_size, declared.subscriber_slots, declared.producer_slots,
        expected.subscriber_slots_offset, expected.producer_slots_offset, expected.latency_offset,
        expected.segment_size));
  }
  if (size < declared.segment_size) {
    return tl::unexpected(fmt::format(
        "control segment is {} bytes, but its {} subscriber and {} producer slots take {}", size,
        declared.subscriber_slots, declared.producer_slots, declared.segment_size));
  }
  return declared;
}

}  // namespace shmbus::detail
