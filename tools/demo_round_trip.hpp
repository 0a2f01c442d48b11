// The end of `shmbus demo`: the transport's own latency. Two processes, each busy-polling on a CPU
// of its own, bounce a message back and forth over shmbus and over raw shared memory (one cache
// line, the floor no transport beats), in the same run, through the benchmark harness behind
// `shmbus bench pingpong` (bench/harness/runner.hpp). The demo's earlier latency figures are of
// sleeping subscribers sharing the CPUs with four other processes; these are not.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>

#include <tl/expected.hpp>

#include "bench/harness/report.hpp"

namespace shmbus::tools {

struct DemoRoundTrip {
  bench::PingPongReport report;  // results: "shmbus" first, then "raw-shm"
  bench::LatencyStats shmbus;    // report's two rows, by name
  bench::LatencyStats raw;
  int cpus_available = 0;        // CPUs this process may run on
};

// The CPUs this process may run on (its affinity mask); 1 if that cannot be read.
int usable_cpu_count();

// Runs `round_trips` timed round trips of 64-byte messages (after min(round_trips, 10000) untimed
// ones) per round, three rounds interleaved, shmbus then raw-shm; figures are medians over the
// rounds. Pins the two sides to two different CPUs when this process may use two, else runs both
// unpinned on the one CPU, yielding on every empty poll. Forks: the caller must be single-threaded.
// An error says which transport and round failed (the harness checks every echoed sequence).
tl::expected<DemoRoundTrip, std::string> measure_demo_round_trip(std::uint64_t round_trips);

// The demo's closing section: what was measured, where it ran, the p50/p99/p99.9/max of both,
// shmbus's ratio to the floor for each, and what the figures mean. Ends with a newline.
std::string demo_round_trip_text(const DemoRoundTrip& round_trip);

// The one paragraph printed under the half-way `shmbus stat` of the demo: what its
// publish-to-delivery latencies include, given `processes` processes on `cpus` CPUs.
std::string demo_latency_caveat(std::size_t processes, int cpus);

}  // namespace shmbus::tools
