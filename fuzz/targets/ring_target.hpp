// Fuzz target "ring": the input is a ring segment (header page, then the data area) as a hostile
// or broken peer may leave it in shared memory. Covers core/ (check_ring, RingRef::attach,
// check_record, poll_inplace, poll_copy, the stall analysis and repair, walk_ring, find_boundary,
// earliest_retained, boundary_for_sequence) and ipc/channel_inspect (inspect_channel, over the
// segment written to /dev/shm beside a valid control segment).
//
// The input is used twice: as it is (check_ring decides; most inputs stop there), and coerced into
// a segment check_ring accepts: its identity fields (magic, version, fingerprint, ready, commit
// key's state bits) and geometry are made valid, everything else (the claim word, the boundary
// hints, every record header and payload) stays as the input has it. The readers then run over
// bytes that only the record checks stand between and a crash.
#pragma once

#include <atomic>
#include <bit>
#include <cstdint>
#include <cstdlib>
#include <vector>

#include "core/ring.hpp"
#include "core/ring_reader.hpp"
#include "core/ring_repair.hpp"
#include "core/ring_walk.hpp"
#include "fuzz/targets/channel_files.hpp"
#include "fuzz/targets/fuzz_support.hpp"
#include "ipc/channel_inspect.hpp"

namespace shmbus::fuzz {
namespace ring_target {

// The largest data area a coerced segment gets: enough for several laps' worth of structure,
// small enough that each input costs microseconds.
inline constexpr std::uint64_t kMaxCoercedCapacity = 64 * 1024;

// Reads from `start` with both kinds of poll, as a gating and a copying subscriber would, repairing
// (on `writable` segments) or skipping claims that stay uncommitted, for a bounded number of polls.
inline void read_from(const core::RingRef& ring, core::TailWord start, bool writable) {
  std::vector<std::byte> copy_buffer(ring.capacity);
  // A tagged record's key is read too: open_tag must have kept it inside the record.
  auto on_record = [](const core::RecordView& view) {
    consume(std::span<const std::byte>(view.payload, view.length));
    if (view.key != nullptr) consume(std::span<const std::byte>(view.key, view.key_length));
  };
  for (const bool copying : {false, true}) {
    core::RingReader reader(ring, start.position, start.next_sequence);
    for (int poll = 0; poll < 64; ++poll) {
      std::size_t delivered = 0;
      const core::ReadState state =
          copying ? reader.poll_copy(on_record, 16, copy_buffer.data(), copy_buffer.size(),
                                     delivered)
                  : reader.poll_inplace(on_record, 16, delivered);
      if (state == core::ReadState::ready) continue;
      if (state == core::ReadState::corrupt) break;
      if (state == core::ReadState::lapped) {
        reader.skip_to(core::earliest_retained(ring, ring.capacity / 8));
        continue;
      }
      // empty: nothing committed here. Below the claim position that is a claim a producer holds:
      // what a reader does once the abandon timeout passed.
      if (reader.position() >= ring.claimed_position(std::memory_order_relaxed)) break;
      (void)reader.current_commit_word();
      const auto stall = core::analyze_stall(ring, reader.position(), reader.next_sequence());
      if (!stall) break;
      if (writable) {
        (void)core::repair_stall(ring, *stall);
      } else {
        const std::uint64_t before = reader.position();
        core::skip_stall(reader, *stall);
        if (reader.position() == before) break;
      }
    }
  }
}

// Everything a reader or a tool does with a segment check_ring accepted.
inline void exercise(const core::RingRef& ring, bool writable) {
  // check_record at every frame of one lap, over whatever the header there holds.
  for (std::uint64_t position = 0; position < ring.capacity; position += core::kFrameAlignment) {
    const auto problem = core::check_record(ring, position, *ring.header_at(position));
    if (problem) consume(*problem);
  }
  const core::RingWalk walk = core::walk_ring(ring, 4);
  for (const core::WalkProblem& problem : walk.problems) consume(problem.what);

  const core::TailWord tail = ring.load_tail();
  (void)core::find_boundary(ring, 0);
  (void)core::find_boundary(ring, tail.position > ring.capacity ? tail.position - ring.capacity : 0);
  read_from(ring, core::earliest_retained(ring, ring.capacity / 8), false);
  read_from(ring, core::boundary_for_sequence(ring, tail.next_sequence - 1, ring.capacity / 8),
            false);
  read_from(ring, core::boundary_for_sequence(ring, 1), false);
  read_from(ring, core::earliest_retained(ring, 0), writable);
}

// The segment made valid where check_ring looks, the input everywhere else.
inline AlignedBytes coerce(Input input) {
  const std::uint64_t declared = read_le<std::uint64_t>(input, offsetof(core::RingHeader, capacity));
  const std::uint64_t capacity =
      std::has_single_bit(declared) && declared >= core::kMinCapacity &&
              declared <= kMaxCoercedCapacity
          ? declared
          : core::kMinCapacity;
  AlignedBytes segment(core::ring_segment_size(capacity), input);
  auto* header = segment.as<core::RingHeader>();
  header->magic = core::kRingMagic;
  header->layout_version = core::kLayoutVersion;
  header->header_size = sizeof(core::RingHeader);
  header->layout_fingerprint = core::layout_fingerprint();
  header->capacity = capacity;
  const std::uint32_t largest = static_cast<std::uint32_t>(capacity / 4 - core::kRecordHeaderSize);
  if (header->max_message == 0 || header->max_message > largest) {
    header->max_message = 1 + header->max_message % largest;
  }
  header->commit_key &= ~core::kCommitStateMask;
  // relaxed: the segment is this thread's own buffer until the target hands it on.
  header->ready.store(core::kReadyMarker, std::memory_order_relaxed);
  return segment;
}

// `shmbus inspect` over the segment, through the files an opener maps.
inline void inspect(const AlignedBytes& segment) {
  static ChannelFiles files("ring");
  const std::uint64_t incarnation = segment.as<core::RingHeader>()->incarnation;
  const AlignedBytes control = valid_control(incarnation);
  if (!files.write({segment.data(), segment.size()}, {control.data(), control.size()},
                   incarnation)) {
    return;
  }
  auto report = detail::inspect_channel(files.channel(), 4);
  if (report) {
    consume(report->ring.name);
    for (const core::WalkProblem& problem : report->walk.problems) consume(problem.what);
  } else {
    consume(report.error().message);
  }
  files.remove();
}

}  // namespace ring_target

inline int run_ring_input(Input input) {
  using namespace ring_target;
  {
    AlignedBytes as_given(input.size(), input);
    if (!core::check_ring(as_given.data(), as_given.size())) {
      exercise(core::RingRef::attach(as_given.data()), false);
    }
  }
  AlignedBytes segment = coerce(input);
  if (auto problem = core::check_ring(segment.data(), segment.size())) {
    // The coercion exists to pass check_ring: failing it is a bug of this target.
    std::abort();
  }
  inspect(segment);
  exercise(core::RingRef::attach(segment.data()), true);
  return 0;
}

}  // namespace shmbus::fuzz
