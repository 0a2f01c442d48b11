// Results of `shmbus bench bridge` and the two ways they are printed: a table for people and JSON
// for scripts. The JSON shape is a contract (fields may be added, never renamed):
//   {"bench":"bridge","nats":"started"|"given","url":"nats://127.0.0.1:4222","count":..,
//    "rate":10000,"rounds":3,"cpus":2,"actors":5,"note":"..",
//    "results":[{"size":64,"records":..,
//                "throughput":{"records_per_s":..,"mb_per_s":..,"spread":{..}},
//                "paced":{"rate":10000,"records_per_s":..,"p50_ns":..,"p90_ns":..,"p99_ns":..,
//                         "p999_ns":..,"max_ns":..,"spread":{..},"distribution":[..]}}, ...]}
// Every figure is the median over the rounds, each taken separately. Keys keep the order shown.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include <nlohmann/json_fwd.hpp>

#include "bench/harness/latency_distribution.hpp"
#include "bench/harness/report.hpp"

namespace shmbus::bench {

// One record size: the throughput run and the paced run, side by side.
struct BridgeBenchResult {
  std::size_t size = 0;
  std::uint64_t records = 0;  // timed records per run, every one received and checked
  // Throughput run: records over the span from the first record's send time to the last one's
  // receive time (publisher to subscriber, through both bridges and the server).
  double records_per_s = 0;
  double mb_per_s = 0;  // payload bytes, 10^6 per second
  std::vector<FigureSpread> throughput_spread;
  // Paced run: the rate achieved end to end, and receive time minus send time of every record.
  double paced_records_per_s = 0;
  LatencyStats latency;
  LatencyDetail latency_detail;
  std::vector<FigureSpread> paced_spread;  // records_per_s, then the latency figures
};

struct BridgeBenchReport {
  bool server_started = true;  // false: a server given with --nats
  std::string url;
  std::uint64_t count = 0;
  double rate = 0;  // the paced runs' records per second
  int rounds = 0;
  unsigned cpus = 0;  // online CPUs of this machine
  int actors = 5;     // publisher, bridge out, nats-server, bridge in, subscriber
  std::vector<BridgeBenchResult> results;
};

// What the report says about where the actors ran, e.g. that 5 of them share 2 CPUs.
std::string machine_note(const BridgeBenchReport& report);

// An aligned text table, one line per record size; ends with a newline.
std::string format_table(const BridgeBenchReport& report);
nlohmann::ordered_json to_json(const BridgeBenchReport& report);

}  // namespace shmbus::bench
