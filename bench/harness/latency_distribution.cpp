#include "bench/harness/latency_distribution.hpp"

#include <algorithm>
#include <cmath>

#include <nlohmann/json.hpp>

#include "bench/harness/stats.hpp"

namespace shmbus::bench {

namespace {

// HdrHistogram's default: five reporting steps per halving of the distance to 100%.
constexpr double kTicksPerHalfDistance = 5;

// The next level after `level` (a fraction below 1), as HdrHistogram's percentile iterator steps.
double next_level(double level) {
  const double halvings = std::floor(std::log2(1.0 / (1.0 - level)));
  const double ticks = kTicksPerHalfDistance * std::exp2(halvings + 1);
  return level + 1.0 / ticks;
}

// The rank (1-based) of the sample at fraction `level` of `count` samples, nearest-rank.
std::uint64_t rank_at(double level, std::uint64_t count) {
  const double r = std::ceil(level * double(count));
  if (r <= 1) return 1;
  return r >= double(count) ? count : static_cast<std::uint64_t>(r);
}

}  // namespace

void add_sample(core::LatencySnapshot& histogram, std::uint64_t ns) noexcept {
  ++histogram.buckets[core::latency_bucket(ns)];
  ++histogram.count;
  histogram.sum_ns += ns;
  histogram.max_ns = std::max(histogram.max_ns, ns);
}

void merge(core::LatencySnapshot& into, const core::LatencySnapshot& from) noexcept {
  for (std::uint32_t b = 0; b < core::kLatencyBuckets; ++b) into.buckets[b] += from.buckets[b];
  into.count += from.count;
  into.sum_ns += from.sum_ns;
  into.max_ns = std::max(into.max_ns, from.max_ns);
}

LatencyRound measure_latency(std::span<std::uint64_t> samples_ns) {
  LatencyRound round;
  round.stats = latency_stats(samples_ns);
  for (const std::uint64_t ns : samples_ns) add_sample(round.histogram, ns);
  return round;
}

LatencySummary summarize(std::span<const LatencyRound> rounds) {
  std::vector<LatencyStats> stats;
  LatencySummary summary;
  for (const LatencyRound& r : rounds) {
    stats.push_back(r.stats);
    merge(summary.detail.distribution, r.histogram);
  }
  summary.median = median_latency(stats);
  summary.detail.spread = latency_spreads(stats);
  return summary;
}

std::vector<PercentileLine> percentile_lines(const core::LatencySnapshot& histogram) {
  std::vector<PercentileLine> lines;
  if (histogram.count == 0) return lines;
  std::uint32_t bucket = 0;
  std::uint64_t seen = histogram.buckets[0];
  for (double level = 0; level < 1.0; level = next_level(level)) {
    const std::uint64_t rank = rank_at(level, histogram.count);
    while (seen < rank && bucket + 1 < core::kLatencyBuckets) seen += histogram.buckets[++bucket];
    lines.push_back({level, std::min(core::latency_bucket_midpoint(bucket), histogram.max_ns),
                     seen});
    if (rank >= histogram.count) break;  // the last sample is reached: only the close remains
  }
  lines.push_back({1.0, histogram.max_ns, histogram.count});
  return lines;
}

nlohmann::ordered_json distribution_json(const core::LatencySnapshot& histogram) {
  nlohmann::ordered_json lines = nlohmann::ordered_json::array();
  for (const PercentileLine& l : percentile_lines(histogram)) {
    lines.push_back({{"percentile", l.percentile}, {"value_ns", l.value_ns}, {"count", l.count}});
  }
  return lines;
}

}  // namespace shmbus::bench
