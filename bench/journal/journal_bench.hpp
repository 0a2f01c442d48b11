// `shmbus bench journal`: what journaling costs, measured side by side in one run.
//  - direct_write: the plain sequential write bandwidth of the journal's directory (one O_DIRECT
//    writer, 1 MiB writes): the ceiling any journal on that disk can reach.
//  - throughput: a producer (CPU 0) publishes as fast as it can into a channel while the journaler
//    (CPU 1) records it, for 64 B and 1 KiB messages (or --size); msgs/s and MB/s of journal bytes,
//    and that MB/s as a fraction of direct_write.
//  - publisher cost: the publisher's own try_claim..commit time per message at a paced rate, with
//    and without a journaler on the channel, the subscriber polling in a loop; p99 ratio
//    (bench/journal/publisher_cost.hpp). What a journaler costs the producer.
//  - latency: publisher-to-subscriber one-way latency (the publisher's CLOCK_MONOTONIC carried in
//    the payload) at a paced rate, with and without a journaler on the channel; p99 ratio. Three
//    processes (publisher, subscriber, journaler thread) on two cores, the subscriber and the
//    publisher sleeping between messages: scheduling noise dominates it (milliseconds), not
//    shmbus. Kept for comparison with earlier runs.
// Rounds are interleaved (every configuration's round 1, then round 2...) and each figure is the
// median over rounds, as in the other benches.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include <nlohmann/json_fwd.hpp>

#include "bench/harness/report.hpp"

namespace shmbus::bench {

struct JournalBenchConfig {
  std::string dir = "/var/tmp";     // where the journal (and the direct-write file) go
  std::vector<std::size_t> sizes = {64, 1024};  // message payload bytes for the throughput runs
  std::uint64_t bytes = 512ull << 20;  // journal bytes per throughput round (sets the count)
  bool direct = true;               // journaler with O_DIRECT, like the baseline
  std::uint64_t latency_count = 100'000;  // messages per latency and publisher-cost round
  double latency_rate = 20'000;     // messages per second in those rounds
  std::size_t latency_size = 64;
  int rounds = 3;
  double timeout_s = 120;
};

struct JournalThroughput {
  std::size_t size = 0;
  std::uint64_t messages = 0;
  double seconds = 0;         // first publish to last record written (median round)
  double msgs_per_s = 0;
  double mb_per_s = 0;        // journal bytes (headers and padding included) per second
  double payload_mb_per_s = 0;
  double of_direct = 0;       // mb_per_s / direct_write mb_per_s
  std::vector<FigureSpread> spread;  // msgs_per_s over the rounds
};

struct JournalBenchReport {
  JournalBenchConfig config;
  int initiator_cpu = -1;  // the producer's and publisher's CPU; -1: not pinned
  int responder_cpu = -1;  // the journaler's and subscriber's CPU
  double direct_write_mb_per_s = 0;
  std::vector<FigureSpread> direct_write_spread;  // mb_per_s over the rounds
  std::vector<JournalThroughput> throughput;
  // The publisher's try_claim..commit time per message, without and with a journaler.
  LatencyStats publisher_without;
  LatencyStats publisher_with;
  LatencyDetail publisher_without_detail;  // spreads over the rounds and every message's time
  LatencyDetail publisher_with_detail;
  double publisher_p99_ratio = 0;  // with / without
  std::string publisher_clock;     // what timed it: "tsc" or "clock_monotonic"
  // One-way publisher-to-subscriber latency (scheduling noise dominates; see above).
  LatencyStats latency_without;
  LatencyStats latency_with;
  LatencyDetail latency_without_detail;
  LatencyDetail latency_with_detail;
  double p99_ratio = 0;  // with / without
};

// Runs everything; progress lines go to `progress` (may be empty). Returns the report or what
// went wrong.
struct JournalBenchResult {
  std::string error;  // empty on success
  JournalBenchReport report;
};
JournalBenchResult run_journal_bench(const JournalBenchConfig& config,
                                     const std::function<void(const std::string&)>& progress);

// The JSON document (docs/performance.md lists its fields). Besides the figures: "spread" objects
// (each figure's (max - min) / median over the rounds) on direct_write, every throughput entry and
// every latency side, and "distribution" (percentile lines of every message of every round,
// bench/harness/latency_distribution.hpp) on the four latency sides.
nlohmann::json to_json(const JournalBenchReport& report);
std::string format_table(const JournalBenchReport& report);

}  // namespace shmbus::bench
