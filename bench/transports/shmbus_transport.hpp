// shmbus itself as a transport of the cross-process harness, measured beside the baselines.
#pragma once

#include <memory>

#include "bench/harness/transport.hpp"

namespace shmbus::bench {

// Pingpong over two channels (one each way), block subscribers, zero-copy claim/commit.
// "shmbus" uses default (multi-producer) channels, "shmbus-sp" single-producer ones.
std::unique_ptr<PingPongTransport> shmbus_pingpong_transport(bool single_producer);
// One channel, one producer, one block subscriber that copies each payload out.
std::unique_ptr<ThroughputTransport> shmbus_throughput_transport(bool single_producer);

}  // namespace shmbus::bench
