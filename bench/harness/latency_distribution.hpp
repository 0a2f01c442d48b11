// Full latency distributions for the bench reports, HdrHistogram style.
//
// There is no C or C++ HdrHistogram in Debian 12 (only the Java and Go ones), so the samples go
// into the project's own log-linear histogram (core/latency_histogram.hpp), here in its private
// form core::LatencySnapshot: 1024 buckets over [0, 68.7 s), a reported value within 1/64 of the
// true sample. The percentile lines follow HdrHistogram's outputPercentileDistribution: five lines
// per halving of the distance to 100% (0, 10, ..., 50, 55, ..., 75, 77.5, ...), each with the value
// at that percentile and the count of samples at or below it, up to the last sample and a closing
// line at percentile 1 with the exact maximum. A plot of value against 1/(1 - percentile) on a log
// axis shows the whole tail.
#pragma once

#include <cstdint>
#include <span>
#include <vector>

#include <nlohmann/json_fwd.hpp>

#include "bench/harness/latency_stats.hpp"
#include "bench/harness/round_spread.hpp"
#include "core/latency_histogram.hpp"

namespace shmbus::bench {

// Adds one sample of `ns` nanoseconds to a private histogram.
void add_sample(core::LatencySnapshot& histogram, std::uint64_t ns) noexcept;

// Adds every sample of `from` to `into` (bucket by bucket; max is the larger one).
void merge(core::LatencySnapshot& into, const core::LatencySnapshot& from) noexcept;

// One round's latencies: exact nearest-rank percentiles and the distribution.
struct LatencyRound {
  LatencyStats stats;
  core::LatencySnapshot histogram;
};

// Sorts `samples_ns` in place (see latency_stats) and histograms them.
LatencyRound measure_latency(std::span<std::uint64_t> samples_ns);

// What the report keeps of a latency measured over rounds besides the median figures: how far each
// figure moved between rounds, and the distribution of every sample of every round.
struct LatencyDetail {
  std::vector<FigureSpread> spread;    // latency_spreads of the rounds
  core::LatencySnapshot distribution;  // the rounds' histograms merged
};

// The median figures (median_latency) and the detail of the rounds.
struct LatencySummary {
  LatencyStats median;
  LatencyDetail detail;
};
LatencySummary summarize(std::span<const LatencyRound> rounds);

// One line of a percentile distribution.
struct PercentileLine {
  double percentile = 0;     // a fraction in [0, 1]
  std::uint64_t value_ns = 0;
  std::uint64_t count = 0;   // samples at or below value_ns's bucket
};

// The HdrHistogram-style lines described at the top of the file; empty for an empty histogram.
std::vector<PercentileLine> percentile_lines(const core::LatencySnapshot& histogram);

// [{"percentile":0.5,"value_ns":812,"count":100234}, ...]: percentile_lines as JSON.
nlohmann::ordered_json distribution_json(const core::LatencySnapshot& histogram);

}  // namespace shmbus::bench
