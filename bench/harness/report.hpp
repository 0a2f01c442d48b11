// Results of a benchmark run and the two ways they are printed: a table for people and JSON for
// scripts. The JSON shape is a contract (fields may be added, never renamed):
//   {"bench":"pingpong","size":64,"count":200000,"rounds":3,
//    "results":[{"transport":"shmbus","p50_ns":..,"p90_ns":..,"p99_ns":..,"p999_ns":..,
//                "max_ns":..}, ...]}
//   {"bench":"throughput","size":64,"count":N,"rounds":3,"duration_s":2.0,
//    "results":[{"transport":"shmbus","msgs_per_s":..,"mb_per_s":..}, ...]}
// Every figure is the median over the rounds. Ratios to the "raw-shm" baseline are added when it
// is among the results ("ratio_p50_to_raw", "ratio_p999_to_raw"; throughput: "ratio_to_raw"), and
// throughput results also get "ratio_to_raw_seq" when the "raw-seq" baseline (one cache line per
// message) is among them. Keys keep the order shown (ordered_json), so the text reads as above.
// After those, each result has "spread" (each figure's (max - min) / median over the rounds,
// round_spread.hpp) and, for pingpong, "distribution" (the percentile lines of every timed round
// trip of every round, latency_distribution.hpp). The command adds "metadata" and "warnings"
// (run_record.hpp).
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include <nlohmann/json_fwd.hpp>

#include "bench/harness/latency_distribution.hpp"
#include "bench/harness/latency_stats.hpp"
#include "bench/harness/round_spread.hpp"

namespace shmbus::bench {

struct PingPongResult {
  std::string transport;
  LatencyStats latency;  // round-trip times: the median of each figure over the rounds
  LatencyDetail detail;  // each figure's spread over the rounds, and every round trip's time
};

struct PingPongReport {
  std::size_t size = 0;      // bytes per message
  std::uint64_t count = 0;   // timed round trips per round
  std::uint64_t warmup = 0;  // untimed round trips before them
  int rounds = 0;
  int initiator_cpu = -1;  // -1: not pinned
  int responder_cpu = -1;
  std::vector<PingPongResult> results;  // in the order the transports were given
};

struct ThroughputResult {
  std::string transport;
  std::uint64_t messages = 0;  // received in the median round
  double seconds = 0;          // first message to end marker in the median round
  double msgs_per_s = 0;       // median over rounds
  double mb_per_s = 0;         // msgs_per_s * size / 1e6: message bytes, sequence number included
  std::vector<FigureSpread> spread;  // msgs_per_s over the rounds (set on the median result)
};

struct ThroughputReport {
  std::size_t size = 0;
  double duration_s = 0;  // how long the producer streamed in each round
  int rounds = 0;
  int producer_cpu = -1;
  int consumer_cpu = -1;
  std::vector<ThroughputResult> results;
};

// Aligned text tables, one line per transport, ending with a newline.
std::string format_table(const PingPongReport& report);
std::string format_table(const ThroughputReport& report);

// The JSON documents described above. Top-level "count" of a throughput report is the message
// count of the first transport's median round (the one under test); each result has its own.
nlohmann::ordered_json to_json(const PingPongReport& report);
nlohmann::ordered_json to_json(const ThroughputReport& report);

}  // namespace shmbus::bench
