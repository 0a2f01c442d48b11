// "pipe": anonymous pipes made non-blocking, both sides spinning on read/write (the kernel path
// without the cost of sleeping). Round trip uses one pipe each way; throughput uses one pipe.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "bench/harness/transport.hpp"

namespace shmbus::bench {

class PipePingPong final : public PingPongTransport {
 public:
  std::string name() const override { return "pipe"; }
  void prepare(const BenchConfig& config) override;
  void as_initiator() override;
  void as_responder() override;
  void send(std::uint64_t seq) override;
  std::uint64_t receive() override;
  void send_back(std::uint64_t seq) override;
  std::uint64_t receive_back() override;
  void cleanup() override;

 private:
  int to_responder_[2] = {-1, -1};  // [0] read end, [1] write end
  int to_initiator_[2] = {-1, -1};
  std::vector<char> message_;
};

class PipeThroughput final : public ThroughputTransport {
 public:
  std::string name() const override { return "pipe"; }
  void prepare(const BenchConfig& config) override;
  void as_producer() override;
  void as_consumer() override;
  void send(std::uint64_t seq) override;
  std::uint64_t receive() override;
  void cleanup() override;

 private:
  int fds_[2] = {-1, -1};
  std::vector<char> message_;
};

}  // namespace shmbus::bench
