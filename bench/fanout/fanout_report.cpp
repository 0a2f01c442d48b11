#include "bench/fanout/fanout_report.hpp"

#include <fmt/format.h>

#include <nlohmann/json.hpp>

namespace shmbus::bench {

namespace {

std::string placement(const FanoutReport& report) {
  if (report.publisher_cpu < 0) return "not pinned (one CPU)";
  return fmt::format("publisher CPU {}, subscribers CPU {}", report.publisher_cpu,
                     report.subscriber_cpu);
}

}  // namespace

std::string format_table(const FanoutReport& report) {
  std::string out = fmt::format(
      "fanout: {} B messages, {:g} s per round, median of {} round(s), {} (threads in up to {} "
      "processes), subscribers wait with a {} us spin\n",
      report.size, report.duration_s, report.rounds, placement(report),
      report.max_subscriber_processes, double(report.wait_spin_ns) / 1e3);
  out += fmt::format("{:<8}{:>6}{:>14}{:>9}{:>14}{:>14}{:>12}{:>11}{:>11}{:>11}{:>12}\n", "policy",
                     "subs", "pub msgs/s", "x 1 sub", "sub min/s", "sub median/s", "lost",
                     "p50 ns", "p99 ns", "p99.9 ns", "max ns");
  for (const FanoutResult& r : report.results) {
    const LatencyStats& l = r.latency;
    out += fmt::format(
        "{:<8}{:>6}{:>13.3f}M{:>8.2f}x{:>13.3f}M{:>13.3f}M{:>12}{:>11}{:>11}{:>11}{:>12}\n",
        r.policy, r.subscribers, r.publisher_msgs_per_s / 1e6, r.ratio_to_one_subscriber,
        r.delivered_min_msgs_per_s / 1e6, r.delivered_median_msgs_per_s / 1e6, r.lost, l.p50_ns,
        l.p99_ns, l.p999_ns, l.max_ns);
  }
  return out;
}

nlohmann::ordered_json to_json(const FanoutReport& report) {
  nlohmann::ordered_json results = nlohmann::ordered_json::array();
  for (const FanoutResult& r : report.results) {
    const LatencyStats& l = r.latency;
    results.push_back({{"policy", r.policy},
                       {"subscribers", r.subscribers},
                       {"published", r.published},
                       {"publisher_msgs_per_s", r.publisher_msgs_per_s},
                       {"ratio_to_one_subscriber", r.ratio_to_one_subscriber},
                       {"delivered_min_msgs_per_s", r.delivered_min_msgs_per_s},
                       {"delivered_median_msgs_per_s", r.delivered_median_msgs_per_s},
                       {"lost", r.lost},
                       {"lost_fraction", r.lost_fraction},
                       {"p50_ns", l.p50_ns},
                       {"p90_ns", l.p90_ns},
                       {"p99_ns", l.p99_ns},
                       {"p999_ns", l.p999_ns},
                       {"max_ns", l.max_ns},
                       {"spread", to_json(r.spread)},
                       {"distribution", distribution_json(r.latency_detail.distribution)}});
  }
  return {{"bench", "fanout"},
          {"size", report.size},
          {"duration_s", report.duration_s},
          {"rounds", report.rounds},
          {"publisher_cpu", report.publisher_cpu},
          {"subscriber_cpu", report.subscriber_cpu},
          {"wait_spin_ns", report.wait_spin_ns},
          {"max_subscriber_processes", report.max_subscriber_processes},
          {"results", std::move(results)}};
}

}  // namespace shmbus::bench
