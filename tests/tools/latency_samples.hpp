// Latency histograms with known contents, for the tests of what `stat` prints about them.
#pragma once

#include <algorithm>
#include <cstdint>
#include <vector>

#include "core/latency_histogram.hpp"

namespace shmbus::test {

// A snapshot that recorded exactly `values` (nanoseconds).
inline core::LatencySnapshot latency_snapshot_of(const std::vector<std::uint64_t>& values) {
  core::LatencySnapshot s;
  for (std::uint64_t v : values) {
    ++s.buckets[core::latency_bucket(v)];
    ++s.count;
    s.sum_ns += v;
    s.max_ns = std::max(s.max_ns, v);
  }
  return s;
}

}  // namespace shmbus::test
