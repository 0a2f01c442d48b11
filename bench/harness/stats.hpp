// Turning samples into the figures the report prints: percentiles of one round, medians of rounds.
#pragma once

#include <cstdint>
#include <span>
#include <vector>

#include "bench/harness/report.hpp"

namespace shmbus::bench {

// Sorts `samples_ns` in place and returns nearest-rank percentiles: the p-th percentile is the
// smallest sample with at least p% of the samples at or below it. All zero if there are none.
LatencyStats latency_stats(std::span<std::uint64_t> samples_ns);

// Each figure is the median of that figure over the rounds, taken separately (so the result need
// not be any single round). Middle value; mean of the two middle values for an even count.
LatencyStats median_latency(std::span<const LatencyStats> rounds);

// The round with the median msgs_per_s (the lower middle one for an even count): its count and
// seconds come with it, so the printed figures belong to one real round.
ThroughputResult median_throughput(std::span<const ThroughputResult> rounds);

}  // namespace shmbus::bench
