// The publisher's own cost of one message, with and without a journaler on the channel: the time
// from try_claim to the end of commit (the payload written in between), timed inside the
// publishing process with SpanTimer (bench/journal/span_timer.hpp: the TSC where it is invariant).
//
//  - The publisher (initiator CPU) publishes at a paced rate, waiting for each send time by
//    spinning on the clock: a core that slept wakes with cold caches, and that, not the publish,
//    would be what gets timed.
//  - A subscriber (responder CPU) polls in a loop and takes every message, napping a few
//    microseconds (nanosleep, never the channel's futex, so commits pay no wake-up) when a poll
//    finds nothing: see publisher_cost.cpp for why it does not spin flat out.
//  - With a journaler: it runs as `shmbus record` does (naps when idle, flushes every
//    millisecond), in the subscriber's process on the responder CPU, so on two cores the
//    publisher keeps one to itself and what is measured is what the journaler costs the publish
//    path (the gate it holds, the ring lines it reads), not the scheduler.
#pragma once

#include <string>

#include "bench/harness/process.hpp"
#include "bench/harness/report.hpp"
#include "bench/journal/journal_bench.hpp"

namespace shmbus::bench {

struct PublisherCostRound {
  LatencyRound claim_commit;  // nanoseconds per message
  std::string clock;          // "tsc" or "clock_monotonic"
};

// One round of config.latency_count messages of config.latency_size bytes at config.latency_rate.
// Throws std::runtime_error on failure.
PublisherCostRound publisher_cost_round(const JournalBenchConfig& config, bool with_journal,
                                        int round, const CpuPlan& cpus);

}  // namespace shmbus::bench
