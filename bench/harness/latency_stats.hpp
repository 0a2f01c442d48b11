// The five latency figures every bench prints, in its own header so that the helpers that compute
// them (stats, spreads, distributions) and the reports that print them can all include it.
#pragma once

#include <cstdint>

namespace shmbus::bench {

// Latencies in nanoseconds, nearest-rank percentiles of the timed samples.
struct LatencyStats {
  std::uint64_t p50_ns = 0;
  std::uint64_t p90_ns = 0;
  std::uint64_t p99_ns = 0;
  std::uint64_t p999_ns = 0;
  std::uint64_t max_ns = 0;
};

}  // namespace shmbus::bench
