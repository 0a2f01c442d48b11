// What the rounds of `shmbus bench journal` share: the block their child processes report through,
// a fresh channel and journal directory per round, and the journaler as the bench runs it.
#pragma once

#include <atomic>
#include <cstdint>
#include <string>

#include "bench/harness/process.hpp"
#include "bench/harness/report.hpp"
#include "shmbus/journaler.hpp"
#include "shmbus/shmbus.hpp"

namespace shmbus::bench {

// CLOCK_MONOTONIC in nanoseconds.
std::uint64_t monotonic_now_ns();

// What the children of one round share with the parent. Lives in an anonymous shared mapping
// created before fork; the atomics are lock-free, so they work across the processes.
struct RoundControl {
  // release/acquire: a child that sees `ready` reach a value sees what its peer did before
  // storing it (the journaler's subscription, the subscriber's registration).
  std::atomic<std::uint32_t> ready{0};
  std::uint64_t start_ns = 0;  // producer: first publish
  std::uint64_t done_ns = 0;   // journaler: last record written
  LatencyRound latency;
  ErrorSlot first_error;
  ErrorSlot second_error;
};

// Waits (yielding) until `ready` reaches `value`.
void wait_ready(const RoundControl& control, std::uint32_t value);

// A round's channel and journal directory (under `parent`), removed however the round ends.
struct RoundScratch {
  std::string channel;
  std::string dir;
  RoundScratch(const char* what, int round, const std::string& parent);
  ~RoundScratch();
  RoundScratch(const RoundScratch&) = delete;
  RoundScratch& operator=(const RoundScratch&) = delete;
};

// Creates the channel; the returned publisher keeps it alive in the parent.
Publisher create_channel(const std::string& name, std::uint64_t capacity,
                         std::uint32_t max_message);

// The journaler `shmbus record` would run (no fsync, 1 GiB segments), O_DIRECT when `direct`.
Journaler open_journaler(const std::string& channel, const std::string& dir, bool direct);

}  // namespace shmbus::bench
