#include "ipc/channel_inspect.hpp"

#include <atomic>
#include <cstring>

#include "ipc/channel_view.hpp"
#include "ipc/process.hpp"

namespace shmbus::detail {
namespace {

RingHeaderReport read_ring_header(const core::RingRef& ring) {
  const core::RingHeader& header = *ring.header;
  RingHeaderReport r;
  r.magic = header.magic;
  r.magic_ok = header.magic == core::kRingMagic;
  r.layout_version = header.layout_version;
  r.header_size = header.header_size;
  r.layout_fingerprint = header.layout_fingerprint;
  r.capacity = header.capacity;
  r.max_message = header.max_message;
  r.flags = header.flags;
  r.single_producer = (header.flags & core::kFlagSingleProducer) != 0;
  r.unknown_flags = (header.flags & ~core::kFlagSingleProducer) != 0;
  r.incarnation = header.incarnation;
  r.name.assign(header.name, strnlen(header.name, sizeof(header.name)));
  r.created_ns = header.created_ns;
  r.creator_pid = header.creator_pid;
  r.creator_start_time = header.creator_start_time;
  // acquire/relaxed as any reader: these are statistics here, nothing is read through them.
  r.ready_marker = header.ready.load(std::memory_order_acquire);
  r.ready = r.ready_marker == core::kReadyMarker;
  const core::TailWord tail = ring.load_tail();
  r.tail_position = tail.position;
  r.tail_next_sequence = tail.next_sequence;
  // relaxed: shown only
  const std::uint64_t exclusive = header.exclusive_pid.load(std::memory_order_relaxed);
  if (exclusive != 0) r.exclusive_pid = unpack_process(exclusive).pid;
  // relaxed: shown only
  r.repaired_through = header.repaired_through.load(std::memory_order_relaxed);
  return r;
}

ControlHeaderReport read_control_header(const ControlHeader& header) {
  ControlHeaderReport c;
  c.magic = header.magic;
  c.magic_ok = header.magic == kControlMagic;
  c.version = header.version;
  c.header_size = header.header_size;
  c.layout_fingerprint = header.layout_fingerprint;
  c.incarnation = header.incarnation;
  c.slot_count = header.slot_count;
  c.producer_slot_count = header.producer_slot_count;
  c.ready = header.ready.load(std::memory_order_acquire) != 0;  // acquire: as any opener
  // relaxed (both): shown only.
  c.subscriber_slots_high_water =  // relaxed: shown only
      header.subscriber_slots_high_water.load(std::memory_order_relaxed);
  c.producer_slots_high_water =
      header.producer_slots_high_water.load(std::memory_order_relaxed);  // relaxed: shown only
  return c;
}

ChannelLayoutReport describe_layout(const ChannelView& view) {
  ChannelLayoutReport l;
  l.ring_path = view.ring_path();
  l.ring_segment_bytes = view.ring_segment_size();
  l.ring_header_bytes = sizeof(core::RingHeader);
  l.checkpoints = core::kCheckpoints;
  l.data_offset = core::kRingDataOffset;
  l.data_bytes = view.ring().capacity;
  l.control_path = view.control_path();
  l.control_segment_bytes = view.control_segment_size();
  l.control_header_bytes = sizeof(ControlHeader);
  const ControlLayout& control = view.control_ref().layout();
  l.subscriber_slots = control.subscriber_slots;
  l.producer_slots = control.producer_slots;
  l.subscriber_slots_offset = control.subscriber_slots_offset;
  l.producer_slots_offset = control.producer_slots_offset;
  l.latency_offset = control.latency_offset;
  return l;
}

}  // namespace

Result<ChannelInspection> inspect_channel(std::string_view channel, std::size_t last_records) {
  auto view = ChannelView::open(channel);
  if (!view) return tl::unexpected(view.error());
  ChannelInspection report;
  report.channel = view->name();
  report.ring = read_ring_header(view->ring());
  report.control = read_control_header(view->control());
  report.layout = describe_layout(*view);
  // A walk that found a problem is final; one only overtaken is worth another try, as the
  // producers may have moved on by then.
  do {
    report.walk = core::walk_ring(view->ring(), last_records);
    ++report.walk_attempts;
  } while (report.walk.overtaken && report.walk.problems.empty() &&
           report.walk_attempts <= kInspectWalkRetries);
  return report;
}

}  // namespace shmbus::detail
