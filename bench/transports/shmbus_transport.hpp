// shmbus itself as a transport of the cross-process harness, measured beside the baselines.
#pragma once

#include <memory>

#include "bench/harness/transport.hpp"

namespace shmbus::bench {

// Pingpong over two channels (one each way), block subscribers, zero-copy claim/commit.
std::unique_ptr<PingPongTransport> shmbus_pingpong_transport();
// One channel, one producer, one block subscriber that copies each payload out.
std::unique_ptr<ThroughputTransport> shmbus_throughput_transport();

}  // namespace shmbus::bench
