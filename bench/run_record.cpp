#include "bench/run_record.hpp"

#include <fmt/format.h>

namespace shmbus::bench {

namespace {

template <class Report>
RunRecord record_of(const Report& report, std::vector<int> cpus_used, int rounds,
                    double max_spread) {
  RunRecord record;
  record.metadata = collect_run_metadata(cpus_used, rounds, max_spread);
  record.warnings = spread_warnings(round_spreads(report), max_spread);
  return record;
}

}  // namespace

std::vector<LabelledSpreads> round_spreads(const PingPongReport& report) {
  std::vector<LabelledSpreads> spreads;
  for (const PingPongResult& r : report.results) {
    spreads.push_back({fmt::format("pingpong {}", r.transport), r.detail.spread});
  }
  return spreads;
}

std::vector<LabelledSpreads> round_spreads(const ThroughputReport& report) {
  std::vector<LabelledSpreads> spreads;
  for (const ThroughputResult& r : report.results) {
    spreads.push_back({fmt::format("throughput {}", r.transport), r.spread});
  }
  return spreads;
}

std::vector<LabelledSpreads> round_spreads(const FanoutReport& report) {
  std::vector<LabelledSpreads> spreads;
  for (const FanoutResult& r : report.results) {
    spreads.push_back(
        {fmt::format("fanout {}, {} subscriber(s)", r.policy, r.subscribers), r.spread});
  }
  return spreads;
}

std::vector<LabelledSpreads> round_spreads(const JournalBenchReport& report) {
  std::vector<LabelledSpreads> spreads;
  spreads.push_back({"journal O_DIRECT write", report.direct_write_spread});
  for (const JournalThroughput& t : report.throughput) {
    spreads.push_back({fmt::format("journal throughput {} B", t.size), t.spread});
  }
  spreads.push_back({"journal publisher cost without journal",
                     report.publisher_without_detail.spread});
  spreads.push_back({"journal publisher cost with journal", report.publisher_with_detail.spread});
  spreads.push_back({"journal latency without journal", report.latency_without_detail.spread});
  spreads.push_back({"journal latency with journal", report.latency_with_detail.spread});
  return spreads;
}

std::vector<LabelledSpreads> round_spreads(const GroupBenchReport& report) {
  std::vector<LabelledSpreads> spreads;
  for (const GroupBenchResult& r : report.results) {
    spreads.push_back({fmt::format("group {}", r.consumer), r.spread});
  }
  return spreads;
}

std::vector<LabelledSpreads> round_spreads(const BridgeBenchReport& report) {
  std::vector<LabelledSpreads> spreads;
  for (const BridgeBenchResult& r : report.results) {
    spreads.push_back({fmt::format("bridge {} B throughput", r.size), r.throughput_spread});
    spreads.push_back({fmt::format("bridge {} B paced", r.size), r.paced_spread});
  }
  return spreads;
}

RunRecord run_record(const PingPongReport& report, double max_spread) {
  return record_of(report, {report.initiator_cpu, report.responder_cpu}, report.rounds,
                   max_spread);
}

RunRecord run_record(const ThroughputReport& report, double max_spread) {
  return record_of(report, {report.producer_cpu, report.consumer_cpu}, report.rounds, max_spread);
}

RunRecord run_record(const FanoutReport& report, double max_spread) {
  return record_of(report, {report.publisher_cpu, report.subscriber_cpu}, report.rounds,
                   max_spread);
}

RunRecord run_record(const JournalBenchReport& report, double max_spread) {
  return record_of(report, {report.initiator_cpu, report.responder_cpu}, report.config.rounds,
                   max_spread);
}

RunRecord run_record(const GroupBenchReport& report, double max_spread) {
  return record_of(report, {report.publisher_cpu, report.consumer_cpu}, report.rounds,
                   max_spread);
}

// The bridge bench pins nothing: five actors (two of them the bridges, with libnats' threads)
// share the machine's CPUs as the scheduler places them.
RunRecord run_record(const BridgeBenchReport& report, double max_spread) {
  return record_of(report, {}, report.rounds, max_spread);
}

}  // namespace shmbus::bench
