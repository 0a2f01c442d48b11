// "unix-socket": a socketpair(AF_UNIX, SOCK_STREAM), non-blocking, both sides spinning. A stream
// socket may move part of a message per call; fd_io handles that (messages have a fixed size).
// One socket pair carries both directions of the round trip.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "bench/harness/transport.hpp"

namespace shmbus::bench {

class UnixSocketPingPong final : public PingPongTransport {
 public:
  std::string name() const override { return "unix-socket"; }
  void prepare(const BenchConfig& config) override;
  void as_initiator() override;
  void as_responder() override;
  void send(std::uint64_t seq) override;
  std::uint64_t receive() override;
  void send_back(std::uint64_t seq) override;
  std::uint64_t receive_back() override;
  void cleanup() override;

 private:
  int fds_[2] = {-1, -1};  // [0] the initiator's end, [1] the responder's end
  std::vector<char> message_;
};

class UnixSocketThroughput final : public ThroughputTransport {
 public:
  std::string name() const override { return "unix-socket"; }
  void prepare(const BenchConfig& config) override;
  void as_producer() override;
  void as_consumer() override;
  void send(std::uint64_t seq) override;
  std::uint64_t receive() override;
  void cleanup() override;

 private:
  int fds_[2] = {-1, -1};  // [0] the producer's end, [1] the consumer's end
  std::vector<char> message_;
};

}  // namespace shmbus::bench
