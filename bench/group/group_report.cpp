#include "bench/group/group_report.hpp"

#include <fmt/format.h>

#include <nlohmann/json.hpp>

namespace shmbus::bench {

namespace {

std::string group_placement(const GroupBenchReport& report) {
  if (report.publisher_cpu < 0) return "not pinned (one CPU)";
  return fmt::format("publisher CPU {}, consumers CPU {}", report.publisher_cpu,
                     report.consumer_cpu);
}

}  // namespace

std::string format_table(const GroupBenchReport& report) {
  std::string out = fmt::format(
      "group: {} records of {} B per round, median of {} round(s), {}, consumers wait with a {} "
      "us spin, window {}\n",
      report.count, report.size, report.rounds, group_placement(report),
      double(report.wait_spin_ns) / 1e3, report.window);
  out += fmt::format("{:<22}{:>8}{:>14}{:>10}{:>11}{:>13}{:>10}{:>10}{:>11}{:>12}\n", "consumer",
                     "members", "records/s", "ns/rec", "x sub", "+ns/rec", "p50 ns", "p99 ns",
                     "p99.9 ns", "max ns");
  for (const GroupBenchResult& r : report.results) {
    const LatencyStats& l = r.latency;
    out += fmt::format("{:<22}{:>8}{:>13.3f}M{:>10.1f}{:>10.2f}x{:>13.1f}{:>10}{:>10}{:>11}{:>12}\n",
                       r.consumer, r.members, r.records_per_s / 1e6, r.ns_per_record,
                       r.ratio_to_subscriber, r.extra_ns_per_record, l.p50_ns, l.p99_ns,
                       l.p999_ns, l.max_ns);
  }
  out += fmt::format(
      "ack cost per record: {:.1f} ns acking each record rather than once per poll "
      "(ack_through); a group of 1 acking each record costs {:.1f} ns more than a block "
      "subscriber\n",
      report.ack_each_minus_through_ns, report.group_minus_subscriber_ns);
  return out;
}

nlohmann::ordered_json to_json(const GroupBenchReport& report) {
  nlohmann::ordered_json results = nlohmann::ordered_json::array();
  for (const GroupBenchResult& r : report.results) {
    const LatencyStats& l = r.latency;
    results.push_back({{"consumer", r.consumer},
                       {"members", r.members},
                       {"ack", r.ack},
                       {"records", r.records},
                       {"records_per_s", r.records_per_s},
                       {"ns_per_record", r.ns_per_record},
                       {"ratio_to_subscriber", r.ratio_to_subscriber},
                       {"extra_ns_per_record", r.extra_ns_per_record},
                       {"consumed_per_member", r.consumed_per_member},
                       {"redelivered", r.redelivered},
                       {"p50_ns", l.p50_ns},
                       {"p90_ns", l.p90_ns},
                       {"p99_ns", l.p99_ns},
                       {"p999_ns", l.p999_ns},
                       {"max_ns", l.max_ns},
                       {"spread", to_json(r.spread)},
                       {"distribution", distribution_json(r.latency_detail.distribution)}});
  }
  return {{"bench", "group"},
          {"size", report.size},
          {"count", report.count},
          {"rounds", report.rounds},
          {"publisher_cpu", report.publisher_cpu},
          {"consumer_cpu", report.consumer_cpu},
          {"wait_spin_ns", report.wait_spin_ns},
          {"window", report.window},
          {"ack_timeout_ns", report.ack_timeout_ns},
          {"results", std::move(results)},
          {"ack_cost",
           {{"ack_each_minus_ack_through_ns_per_record", report.ack_each_minus_through_ns},
            {"group_minus_subscriber_ns_per_record", report.group_minus_subscriber_ns}}}};
}

}  // namespace shmbus::bench
