// The roles of a `shmbus bench group` round, run in forked children, and the shared memory they
// report in.
//
//   publisher (one process):  waits until every consumer has attached, then claims, fills and
//                             commits `count` records of `size` bytes one at a time (a block
//                             channel: it waits whenever the consumers are a ring behind), then
//                             stores the last sequence it published.
//   consumers (one process each): either one plain block Subscriber, or one member of the
//                             round's consumer group (GroupConsumer, created by whichever member
//                             opens first). Each loops wait (a short spin, then a futex sleep) and
//                             poll, checks every record (bench/fanout/record_check.hpp's content),
//                             marks its sequence, records its latency and, as a member, acks it:
//                             per record, or once per poll with ack_through. It stops once
//                             everything up to the publisher's last sequence is consumed (a
//                             member: retired by the group, whoever acked it).
//
// The parent then checks every sequence was consumed exactly once across the consumers, by its
// mark, and that the consumers' counts add up to `count`.
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <limits>
#include <string>

#include "bench/harness/process.hpp"
#include "core/latency_histogram.hpp"

namespace shmbus::bench {

// Consumer processes at most (a group of this many members).
inline constexpr std::size_t kMaxGroupBenchMembers = 8;

// How the records are consumed in one configuration.
enum class GroupBenchMode : std::uint8_t {
  subscriber,     // one plain block Subscriber: the reference
  ack_each,       // group members, ack(sequence) after each record
  ack_per_batch,  // group members, ack_through(last) after each poll
};

// What one round does; the same in every process.
struct GroupPlan {
  std::string channel;
  std::string group = "bench";
  GroupBenchMode mode = GroupBenchMode::subscriber;
  std::size_t consumers = 1;  // processes; 1 for the subscriber
  std::size_t size = 64;
  std::uint64_t count = 0;  // records published in the round
  std::uint64_t wait_spin_ns = 50'000;
  std::uint32_t window = 4096;
};

// final_sequence while the publisher is still publishing.
inline constexpr std::uint64_t kGroupStillPublishing = std::numeric_limits<std::uint64_t>::max();

// In an anonymous shared mapping made before fork, followed by `count` marks (one byte each, the
// number of times that record was consumed). Plain fields are written by one child before it
// exits and read by the parent after reaping it (exit and wait order them).
struct alignas(64) GroupBenchShared {
  // release (consumer) / acquire (publisher): a consumer counts itself in once attached, so the
  // publisher's first record reaches the group (and the subscriber) with every member in it.
  alignas(64) std::atomic<std::uint32_t> consumers_ready{0};
  // release (publisher) / acquire (consumers): stored after the last commit.
  alignas(64) std::atomic<std::uint64_t> final_sequence{kGroupStillPublishing};
  alignas(64) std::int64_t start_ns = 0;  // publisher: CLOCK_REALTIME before its first claim
  std::int64_t end_ns = 0;                // publisher: CLOCK_REALTIME after its last commit
  std::uint64_t first_sequence = 0;       // publisher: the sequence of its first record
  std::uint64_t published = 0;
  ErrorSlot publisher_error{};
  ErrorSlot consumer_errors[kMaxGroupBenchMembers]{};
};

// One consumer's figures, written by its process only.
struct alignas(64) GroupConsumerTally {
  std::uint64_t consumed = 0;     // records it checked and (as a member) acked
  std::uint64_t redelivered = 0;  // of those, redeliveries (none expected: see the ack timeout)
  std::uint64_t fenced = 0;       // acks refused (none expected)
  std::int64_t last_done_ns = 0;  // CLOCK_REALTIME after its last record was done (acked)
  core::LatencyHistogram latency{};  // publish to delivery; this process is its single writer
};

// The ack timeout of the bench's groups: far beyond a round, so nothing is redelivered and every
// record is delivered once.
inline constexpr std::int64_t kGroupBenchAckTimeoutNs = 60'000'000'000;

// Publisher child: throws on any failure (the runner reports the text).
void run_group_publisher(const GroupPlan& plan, GroupBenchShared& shared);

// Consumer child `index`: marks[i] counts the deliveries of first_sequence + i.
void run_group_consumer(const GroupPlan& plan, GroupBenchShared& shared, GroupConsumerTally& tally,
                        std::atomic<std::uint8_t>* marks);

}  // namespace shmbus::bench
