// Fuzz target "control": the input is a control segment (ipc/control_layout.hpp) as a hostile or
// broken peer may leave it. Covers check_control over the bytes as they are, then, over the input
// made to pass it, the slot scans that read the segment: ControlRef's high-water clamps, the
// producers' gate-floor scan and dead-slot eviction (ChannelMapping), the statistics reader
// (read_channel_stats: every subscriber and producer slot, the journal section, and what `shmbus
// stat` prints of them as text, JSON and Prometheus lines) and inspect, each
// through the files an opener maps in /dev/shm, beside a valid ring holding a few records.
//
// The coercion keeps the input's slot counts when they are small (1..8 subscriber and 1..4
// producer slots, else 1), makes the identity fields, offsets and size the ones those counts give,
// and leaves every other byte (slots, marks, block hints, the journal section) as the input has it.
#pragma once

#include <chrono>
#include <cstdint>
#include <cstdlib>

#include "fuzz/targets/channel_files.hpp"
#include "fuzz/targets/fuzz_support.hpp"
#include "ipc/channel.hpp"
#include "ipc/channel_inspect.hpp"
#include "ipc/control_segment.hpp"
#include "ipc/journal_link.hpp"
#include "shmbus/stats.hpp"
#include "tools/observe_format.hpp"

namespace shmbus::fuzz {
namespace control_target {

// The incarnation of the ring the coerced segments belong to.
inline constexpr std::uint64_t kIncarnation = 0x5eed'f00d'1234'5678ULL;
inline constexpr std::uint32_t kMaxSubscriberSlots = 8;
inline constexpr std::uint32_t kMaxProducerSlots = 4;

inline AlignedBytes coerce(Input input) {
  using detail::ControlHeader;
  const auto declared_subscribers = read_le<std::uint32_t>(input, offsetof(ControlHeader, slot_count));
  const auto declared_producers =
      read_le<std::uint32_t>(input, offsetof(ControlHeader, producer_slot_count));
  const std::uint32_t subscribers =
      declared_subscribers >= 1 && declared_subscribers <= kMaxSubscriberSlots ? declared_subscribers : 1;
  const std::uint32_t producers =
      declared_producers >= 1 && declared_producers <= kMaxProducerSlots ? declared_producers : 1;
  const detail::ControlLayout layout = detail::control_layout(subscribers, producers);
  AlignedBytes segment(layout.segment_size, input);
  auto* header = segment.as<ControlHeader>();
  header->magic = detail::kControlMagic;
  header->version = detail::kControlVersion;
  header->header_size = sizeof(ControlHeader);
  header->layout_fingerprint = detail::control_fingerprint();
  header->incarnation = kIncarnation;
  header->role = static_cast<std::uint32_t>(detail::ControlRole::control);
  detail::declare_layout(*header, layout);
  // relaxed: the segment is this thread's own buffer until the target writes it to a file.
  header->ready.store(core::kReadyMarker, std::memory_order_relaxed);
  return segment;
}

// What every reader of a control segment does with one check_control accepted.
inline void exercise(const ChannelFiles& files) {
  if (auto stats = read_channel_stats(files.channel())) {
    for (const SubscriberStats& s : stats->subscribers) consume(s.name);
    if (stats->journal) consume(stats->journal->dir);
  } else {
    consume(stats.error().message);
  }
  if (auto report = detail::inspect_channel(files.channel(), 2)) {
    consume(report->layout.control_path);
  }
  // A producer's view: the gate floor, and the slow path that frees dead processes' slots.
  auto mapping = detail::ChannelMapping::open(files.channel(), false, std::chrono::milliseconds(0),
                                              false);
  if (!mapping) return;
  (void)(*mapping)->scan_gate_floor();
  if (auto link = detail::find_journal(**mapping)) consume(link->dir);
  (void)(*mapping)->evict_dead_subscribers();
  (void)(*mapping)->scan_gate_floor();
}

}  // namespace control_target

inline int run_control_input(Input input) {
  using namespace control_target;
  {
    AlignedBytes as_given(input.size(), input);
    const auto own = read_le<std::uint64_t>(input, offsetof(detail::ControlHeader, incarnation));
    for (const std::uint64_t incarnation : {own, kIncarnation}) {
      auto layout = detail::check_control(as_given.data(), as_given.size(), incarnation);
      if (!layout) {
        consume(layout.error());
        continue;
      }
      const detail::ConstControlRef control(as_given.data(), *layout);
      for (const detail::SubscriberSlot& slot : control.subscriber_slots_taken()) {
        consume(std::as_bytes(std::span(slot.name)));
      }
      (void)control.producer_slots_taken();
    }
  }
  AlignedBytes segment = coerce(input);
  if (!detail::check_control(segment.data(), segment.size(), kIncarnation)) {
    std::abort();  // the coercion exists to pass check_control: failing it is this target's bug
  }
  static ChannelFiles files("control");
  static const AlignedBytes ring = valid_ring(core::kMinCapacity, kIncarnation, 5, 40);
  if (files.write({ring.data(), ring.size()}, {segment.data(), segment.size()}, kIncarnation)) {
    exercise(files);
  }
  files.remove();
  return 0;
}

}  // namespace shmbus::fuzz
