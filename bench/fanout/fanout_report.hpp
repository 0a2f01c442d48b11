// Results of `shmbus bench fanout` and the two ways they are printed: a table for people and JSON
// for scripts. The JSON shape is a contract (fields may be added, never renamed):
//   {"bench":"fanout","size":64,"duration_s":2.0,"rounds":3,"publisher_cpu":0,"subscriber_cpu":1,
//    "wait_spin_ns":5000,"max_subscriber_processes":4,
//    "results":[{"policy":"block","subscribers":8,"published":..,"publisher_msgs_per_s":..,
//                "ratio_to_one_subscriber":..,"delivered_min_msgs_per_s":..,
//                "delivered_median_msgs_per_s":..,"lost":..,"lost_fraction":..,
//                "p50_ns":..,"p90_ns":..,"p99_ns":..,"p999_ns":..,"max_ns":..}, ...]}
// Every figure is the median over the rounds, each taken separately. Keys keep the order shown.
// Each result ends with "spread" (each figure's (max - min) / median over the rounds) and
// "distribution" (percentile lines of every delivery of every round, latency_distribution.hpp).
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include <nlohmann/json_fwd.hpp>

#include "bench/harness/report.hpp"

namespace shmbus::bench {

// One configuration (a policy and a subscriber count).
struct FanoutResult {
  std::string policy;  // "block" or "drop"
  std::size_t subscribers = 0;
  std::uint64_t published = 0;      // messages the publisher committed in a round
  double publisher_msgs_per_s = 0;  // published over the publisher's own span
  // publisher_msgs_per_s over the same policy's one-subscriber figure (1 for that one).
  double ratio_to_one_subscriber = 0;
  // Per subscriber: messages it received over the span from the publisher's first publish to its
  // own last delivery; the slowest subscriber's and the median subscriber's.
  double delivered_min_msgs_per_s = 0;
  double delivered_median_msgs_per_s = 0;
  std::uint64_t lost = 0;    // sequences the subscribers skipped, summed (block: always 0)
  double lost_fraction = 0;  // lost / (published * subscribers)
  // Delivery latency over every message every subscriber received: the subscriber's
  // CLOCK_REALTIME when poll handed the message over minus the message's timestamp_ns (the
  // publisher's clock at claim; a negative difference counts as 0). Percentiles come from a
  // log-linear histogram (core/latency_histogram.hpp): within 1/64 of the true value.
  LatencyStats latency;
  LatencyDetail latency_detail;  // the latency figures' spreads and every delivery's latency
  // Over the rounds: the three rates, then the latency figures (as in latency_detail).
  std::vector<FigureSpread> spread;
};

struct FanoutReport {
  std::size_t size = 0;
  double duration_s = 0;  // how long the publisher streamed in each round
  int rounds = 0;
  int publisher_cpu = -1;   // -1: not pinned (one CPU)
  int subscriber_cpu = -1;  // every subscriber process
  std::uint64_t wait_spin_ns = 0;  // Subscriber::wait's spin before it sleeps
  std::size_t max_subscriber_processes = 0;
  std::vector<FanoutResult> results;  // by policy, then by subscriber count
};

// An aligned text table, one line per configuration, ending with a newline.
std::string format_table(const FanoutReport& report);
nlohmann::ordered_json to_json(const FanoutReport& report);

}  // namespace shmbus::bench
