#include "bench/harness/baselines.hpp"

#include "bench/harness/boost_mq_transport.hpp"
#include "bench/harness/pipe_transport.hpp"
#include "bench/harness/raw_seq_ring.hpp"
#include "bench/harness/raw_shm_pingpong.hpp"
#include "bench/harness/raw_shm_ring.hpp"
#include "bench/harness/unix_socket_transport.hpp"

namespace shmbus::bench {

std::vector<std::unique_ptr<PingPongTransport>> baseline_pingpong_transports() {
  std::vector<std::unique_ptr<PingPongTransport>> v;
  v.push_back(std::make_unique<RawShmPingPong>());
  v.push_back(std::make_unique<PipePingPong>());
  v.push_back(std::make_unique<UnixSocketPingPong>());
  v.push_back(std::make_unique<BoostMqPingPong>());
  return v;
}

std::vector<std::unique_ptr<ThroughputTransport>> baseline_throughput_transports() {
  std::vector<std::unique_ptr<ThroughputTransport>> v;
  v.push_back(std::make_unique<RawSeqRing>());
  v.push_back(std::make_unique<RawShmRing>());
  v.push_back(std::make_unique<PipeThroughput>());
  v.push_back(std::make_unique<UnixSocketThroughput>());
  v.push_back(std::make_unique<BoostMqThroughput>());
  return v;
}

}  // namespace shmbus::bench
