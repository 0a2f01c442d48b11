// Results of `shmbus bench group` and the two ways they are printed: a table for people and JSON
// for scripts. The JSON shape is a contract (fields may be added, never renamed):
//   {"bench":"group","size":64,"count":1000000,"rounds":3,"publisher_cpu":0,"consumer_cpu":1,
//    "wait_spin_ns":50000,"window":4096,"ack_timeout_ns":60000000000,
//    "results":[{"consumer":"subscriber","members":1,"ack":"none","records":..,
//                "records_per_s":..,"ns_per_record":..,"ratio_to_subscriber":..,
//                "extra_ns_per_record":..,"consumed_per_member":[..],"redelivered":0,
//                "p50_ns":..,"p90_ns":..,"p99_ns":..,"p999_ns":..,"max_ns":..,
//                "spread":{..},"distribution":[..]}, ...],
//    "ack_cost":{"ack_each_minus_ack_through_ns_per_record":..,
//                "group_minus_subscriber_ns_per_record":..}}
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

// One configuration: the plain subscriber, or a group of N members acking one way.
struct GroupBenchResult {
  std::string consumer;  // "subscriber", "group-1", "group-1-ack-through", "group-2"
  std::size_t members = 1;  // consumer processes
  std::string ack;          // "none" (subscriber), "each" (ack per record), "through" (per poll)
  std::uint64_t records = 0;  // consumed in a round, all consumers together (= the round's count)
  // records over the span from the publisher's first claim to the last consumer's last ack (or
  // last poll, for the subscriber), and its inverse.
  double records_per_s = 0;
  double ns_per_record = 0;
  double ratio_to_subscriber = 0;   // records_per_s over the subscriber's (1 for it)
  double extra_ns_per_record = 0;   // ns_per_record minus the subscriber's (0 for it)
  std::vector<std::uint64_t> consumed_per_member;  // in the median round, by process
  std::uint64_t redelivered = 0;    // in the median round (0 unless something went wrong)
  // Publish to delivery over every record of every round: the consumer's CLOCK_REALTIME when poll
  // handed it over minus its timestamp. A group copies each record out before handing it over.
  LatencyStats latency;
  LatencyDetail latency_detail;
  std::vector<FigureSpread> spread;  // records_per_s, then the latency figures
};

struct GroupBenchReport {
  std::size_t size = 0;
  std::uint64_t count = 0;  // records published per round
  int rounds = 0;
  int publisher_cpu = -1;  // -1: not pinned (one CPU)
  int consumer_cpu = -1;   // every consumer process
  std::uint64_t wait_spin_ns = 0;
  std::uint32_t window = 0;
  std::int64_t ack_timeout_ns = 0;
  std::vector<GroupBenchResult> results;
  // What acking costs, per record, from the medians: group-1 acking each record minus group-1
  // acking once per poll, and group-1 acking each record minus the subscriber.
  double ack_each_minus_through_ns = 0;
  double group_minus_subscriber_ns = 0;
};

// An aligned text table, one line per configuration, then the ack cost; ends with a newline.
std::string format_table(const GroupBenchReport& report);
nlohmann::ordered_json to_json(const GroupBenchReport& report);

}  // namespace shmbus::bench
