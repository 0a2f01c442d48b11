// "boost-mq": boost::interprocess::message_queue (a named POSIX shared-memory segment holding a
// mutex-protected priority queue), with try_send/try_receive spinning instead of blocking, so it is
// compared with the other transports on equal terms. Queues get names unique to this process and
// round, are created by the parent before fork and removed in cleanup().
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "bench/harness/transport.hpp"

namespace shmbus::bench {

// One named queue: create (replacing a stale one of the same name), spin-send, spin-receive.
class BoostQueue {
 public:
  BoostQueue();
  ~BoostQueue();
  BoostQueue(const BoostQueue&) = delete;
  BoostQueue& operator=(const BoostQueue&) = delete;

  void create(const std::string& name, std::size_t depth, std::size_t message_size);
  void send(const std::vector<char>& message);
  void receive(std::vector<char>& message);  // message.size() bytes exactly, or throws
  void remove();                              // unmap and unlink the name; safe to repeat

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

class BoostMqPingPong final : public PingPongTransport {
 public:
  std::string name() const override { return "boost-mq"; }
  void prepare(const BenchConfig& config) override;
  void as_initiator() override {}
  void as_responder() override {}
  void send(std::uint64_t seq) override;
  std::uint64_t receive() override;
  void send_back(std::uint64_t seq) override;
  std::uint64_t receive_back() override;
  void cleanup() override;

 private:
  BoostQueue to_responder_;
  BoostQueue to_initiator_;
  std::vector<char> message_;
};

class BoostMqThroughput final : public ThroughputTransport {
 public:
  std::string name() const override { return "boost-mq"; }
  void prepare(const BenchConfig& config) override;
  void as_producer() override {}
  void as_consumer() override {}
  void send(std::uint64_t seq) override;
  std::uint64_t receive() override;
  void cleanup() override;

 private:
  BoostQueue queue_;
  std::vector<char> message_;
};

}  // namespace shmbus::bench
