// The two roles of a fanout round, run in forked children, and the shared memory they report in.
//
//   publisher (one process):    waits until every subscriber is registered, then claims, fills
//                               and commits `size`-byte messages one at a time for the duration,
//                               then stores the last sequence it published.
//   subscribers (threads, spread over a few processes): each opens its own Subscriber, then
//                               loops Subscriber::wait (short spin, then futex sleep) and poll,
//                               checks every record, records its latency, and stops once it has
//                               read past the publisher's last sequence.
//
// Every record is checked as bench/fanout/record_check.hpp says, and at the end each subscriber's
// received (+ lost, for drop) must equal what was published and its Subscriber::lost() must agree;
// a wrong record or count fails the round with a message naming the subscriber.
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <limits>
#include <span>
#include <string>

#include "bench/harness/process.hpp"
#include "core/latency_histogram.hpp"
#include "shmbus/options.hpp"

namespace shmbus::bench {

// Subscriber processes at most: see subscriber_processes (fanout_bench.cpp) for why.
inline constexpr std::size_t kMaxSubscriberProcesses = 4;

// What one round does; the same in every process.
struct FanoutPlan {
  std::string channel;
  Policy policy = Policy::block;
  std::size_t subscribers = 1;
  std::size_t size = 64;
  double duration_s = 1.0;
  std::uint64_t wait_spin_ns = 5'000;
};

// final_sequence while the publisher is still streaming.
inline constexpr std::uint64_t kStillStreaming = std::numeric_limits<std::uint64_t>::max();

// In an anonymous shared mapping made before fork, followed by one SubscriberTally per subscriber.
// Plain fields are written by one child before it exits and read by the parent after reaping it
// (exit and wait order them).
struct alignas(64) FanoutShared {
  // release (subscriber) / acquire (publisher): a subscriber counts itself in once registered, so
  // the publisher's first message reaches every subscriber.
  alignas(64) std::atomic<std::uint32_t> subscribers_ready{0};
  // release (publisher) / acquire (subscribers): stored after the last commit, so a subscriber
  // that reads it and has read past that sequence has received everything.
  alignas(64) std::atomic<std::uint64_t> final_sequence{kStillStreaming};
  alignas(64) std::int64_t start_ns = 0;  // publisher: CLOCK_REALTIME before its first claim
  std::int64_t end_ns = 0;                // publisher: CLOCK_REALTIME after its last commit
  std::uint64_t published = 0;
  ErrorSlot publisher_error{};
  ErrorSlot subscriber_errors[kMaxSubscriberProcesses]{};
};

// One subscriber's figures, written by its thread only.
struct alignas(64) SubscriberTally {
  std::uint64_t received = 0;
  std::uint64_t lost = 0;
  std::int64_t last_delivery_ns = 0;  // CLOCK_REALTIME of the poll that delivered its last record
  core::LatencyHistogram latency{};   // delivery latencies; this thread is its single writer
};

// Publisher child: throws on any failure (the runner reports the text).
void run_fanout_publisher(const FanoutPlan& plan, FanoutShared& shared);

// Subscriber child: one thread per tally, subscriber indices first_index... (for messages).
void run_fanout_subscribers(const FanoutPlan& plan, FanoutShared& shared,
                            std::span<SubscriberTally> tallies, std::size_t first_index);

}  // namespace shmbus::bench
