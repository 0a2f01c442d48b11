// The transports every shmbus benchmark runs beside shmbus itself, so that each run carries its
// own reference figures: the same machine gives different absolute figures from one run to the
// next, so shmbus is compared with baselines measured in the same run, never with old numbers.
#pragma once

#include <memory>
#include <vector>

#include "bench/harness/transport.hpp"

namespace shmbus::bench {

// raw-shm (one cache line: the floor), pipe, unix-socket, boost-mq; in that order.
std::vector<std::unique_ptr<PingPongTransport>> baseline_pingpong_transports();

// raw-seq (one cache line per message: the floor), raw-shm (a minimal SPSC ring with shared
// indices), pipe, unix-socket, boost-mq; in that order.
std::vector<std::unique_ptr<ThroughputTransport>> baseline_throughput_transports();

}  // namespace shmbus::bench
