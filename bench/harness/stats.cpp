#include "bench/harness/stats.hpp"

#include <algorithm>
#include <cmath>

namespace shmbus::bench {

namespace {

std::uint64_t nearest_rank(std::span<const std::uint64_t> sorted, double fraction) {
  auto rank = static_cast<std::size_t>(std::ceil(fraction * double(sorted.size())));
  return sorted[std::clamp<std::size_t>(rank, 1, sorted.size()) - 1];
}

std::uint64_t median_of(std::vector<std::uint64_t> values) {
  std::sort(values.begin(), values.end());
  const std::size_t n = values.size();
  if (n % 2 == 1) return values[n / 2];
  return (values[n / 2 - 1] + values[n / 2] + 1) / 2;  // rounded mean of the middle two
}

}  // namespace

LatencyStats latency_stats(std::span<std::uint64_t> samples_ns) {
  if (samples_ns.empty()) return {};
  std::sort(samples_ns.begin(), samples_ns.end());
  return LatencyStats{nearest_rank(samples_ns, 0.50), nearest_rank(samples_ns, 0.90),
                      nearest_rank(samples_ns, 0.99), nearest_rank(samples_ns, 0.999),
                      samples_ns.back()};
}

LatencyStats median_latency(std::span<const LatencyStats> rounds) {
  if (rounds.empty()) return {};
  auto median = [&](std::uint64_t LatencyStats::*field) {
    std::vector<std::uint64_t> values;
    for (const LatencyStats& r : rounds) values.push_back(r.*field);
    return median_of(std::move(values));
  };
  return LatencyStats{median(&LatencyStats::p50_ns), median(&LatencyStats::p90_ns),
                      median(&LatencyStats::p99_ns), median(&LatencyStats::p999_ns),
                      median(&LatencyStats::max_ns)};
}

ThroughputResult median_throughput(std::span<const ThroughputResult> rounds) {
  if (rounds.empty()) return {};
  std::vector<const ThroughputResult*> sorted;
  for (const ThroughputResult& r : rounds) sorted.push_back(&r);
  std::sort(sorted.begin(), sorted.end(),
            [](const auto* a, const auto* b) { return a->msgs_per_s < b->msgs_per_s; });
  return *sorted[(sorted.size() - 1) / 2];
}

}  // namespace shmbus::bench
