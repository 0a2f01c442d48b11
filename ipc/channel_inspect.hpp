// inspect_channel: everything `shmbus inspect` shows about one channel, as a report. The channel is
// mapped read-only (ipc/channel_view.hpp) and never changed. Its ring and control headers are read
// once into plain fields and judged here (magic, ready marker, flags, the exclusive producer), so
// that a text page and a JSON document printed from one report show the same values; the ring is
// walked (core/ring_walk.hpp) and the walk is run again while producers overtake it.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "core/ring_walk.hpp"
#include "shmbus/result.hpp"

namespace shmbus::detail {

// A walk overtaken by producers is run again this many times; the last walk is then reported with
// `overtaken` set (a busy channel, not a fault).
inline constexpr int kInspectWalkRetries = 3;

// The ring segment's header (core/layout.hpp RingHeader).
struct RingHeaderReport {
  std::uint64_t magic = 0;
  bool magic_ok = false;  // magic is core::kRingMagic ("HMBSRING")
  std::uint32_t layout_version = 0;
  std::uint32_t header_size = 0;
  std::uint64_t layout_fingerprint = 0;
  std::uint64_t capacity = 0;  // data bytes
  std::uint32_t max_message = 0;
  std::uint32_t flags = 0;
  bool single_producer = false;  // flags has core::kFlagSingleProducer
  bool unknown_flags = false;    // flags has bits besides core::kFlagSingleProducer
  std::uint64_t incarnation = 0;
  std::string name;  // as stored, up to its NUL (or the whole field without one)
  std::int64_t created_ns = 0;  // CLOCK_REALTIME
  std::uint32_t creator_pid = 0;
  std::uint64_t creator_start_time = 0;
  std::uint32_t ready_marker = 0;  // as stored
  bool ready = false;              // ready_marker is core::kReadyMarker
  std::uint64_t tail_position = 0;       // the claim word's position
  std::uint64_t tail_next_sequence = 0;  // the sequence the next claim takes
  // The pid of the process allowed to publish on a single-producer channel; nothing: nobody.
  std::optional<std::uint32_t> exclusive_pid;
  std::uint64_t repaired_through = 0;  // the end of the furthest range repaired as abandoned
};

// The control segment's header (ipc/control_layout.hpp ControlHeader), its identity part and
// its high-water marks.
struct ControlHeaderReport {
  std::uint64_t magic = 0;
  bool magic_ok = false;  // magic is kControlMagic ("HMBSCTRL")
  std::uint32_t version = 0;
  std::uint32_t header_size = 0;
  std::uint64_t layout_fingerprint = 0;
  std::uint64_t incarnation = 0;
  std::uint32_t slot_count = 0;  // subscriber slots
  std::uint32_t producer_slot_count = 0;
  bool ready = false;
  // Every slot ever taken lies below these (as stored; the scans clamp them to the counts).
  std::uint32_t subscriber_slots_high_water = 0;
  std::uint32_t producer_slots_high_water = 0;
};

// Where the two segments are and how they are laid out.
struct ChannelLayoutReport {
  std::string ring_path;
  std::size_t ring_segment_bytes = 0;
  std::size_t ring_header_bytes = 0;  // the ring header, checkpoints included
  std::size_t checkpoints = 0;
  std::size_t data_offset = 0;  // of the records, from the start of the ring segment
  std::size_t data_bytes = 0;   // the capacity
  std::string control_path;
  std::size_t control_segment_bytes = 0;
  std::size_t control_header_bytes = 0;
  std::size_t subscriber_slots = 0;
  std::size_t producer_slots = 0;
  // Where the arrays start, from the start of the control segment.
  std::size_t subscriber_slots_offset = 0;
  std::size_t producer_slots_offset = 0;
  std::size_t latency_offset = 0;  // the subscribers' latency histograms
};

struct ChannelInspection {
  std::string channel;
  RingHeaderReport ring;
  ControlHeaderReport control;
  ChannelLayoutReport layout;
  // The last walk run: its `last` holds the last `last_records` record headers walked, oldest
  // first; `problems` is empty on a healthy ring.
  core::RingWalk walk;
  int walk_attempts = 0;  // walks run: 1, plus one per retry while overtaken

  // No problem found: an overtaken walk and a walk stopped at a pending claim are healthy.
  bool healthy() const noexcept { return walk.problems.empty(); }
};

// Inspects `channel`, keeping the last `last_records` record headers the walk passes. Errors:
// those of ChannelView::open (not_found, permission_denied, version_mismatch, corrupt).
Result<ChannelInspection> inspect_channel(std::string_view channel, std::size_t last_records);

}  // namespace shmbus::detail
