#include "bench/harness/latency_distribution.hpp"

#include <algorithm>
#include <cmath>

#include <nlohmann/json.hpp>

#include "bench/harness/stats.hpp"

namespace shmbus::bench {

namespace {

// HdrHistogram's default: five reporting steps per halving of the distance to 100%.
constexpr int kTicksPerHalfDistance = 5;
// Halvings of the distance to 100% before the lines stop regardless: 2^-64 is past any count.
constexpr int kMaxHalvings = 64;

// The level of step `tick` in halving `halving`: halving k covers [1 - 2^-k, 1 - 2^-(k+1)) in
// kTicksPerHalfDistance equal steps, as HdrHistogram's percentile iterator steps. Computed from
// the two indices rather than by adding steps up, so that no rounding error crosses a halving.
double level_at(int halving, int tick) {
  const double distance = std::ldexp(1.0, -halving);  // 2^-halving
  return 1.0 - distance + tick * distance / (2.0 * kTicksPerHalfDistance);
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
  bool last_sample_reached = false;
  for (int halving = 0; halving < kMaxHalvings && !last_sample_reached; ++halving) {
    for (int tick = 0; tick < kTicksPerHalfDistance && !last_sample_reached; ++tick) {
      const double level = level_at(halving, tick);
      const std::uint64_t rank = rank_at(level, histogram.count);
      while (seen < rank && bucket + 1 < core::kLatencyBuckets) {
        seen += histogram.buckets[++bucket];
      }
      lines.push_back(
          {level, std::min(core::latency_bucket_midpoint(bucket), histogram.max_ns), seen});
      last_sample_reached = rank >= histogram.count;  // only the closing line remains
    }
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
