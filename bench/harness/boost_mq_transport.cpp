#include "bench/harness/boost_mq_transport.hpp"

#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <stdexcept>

#include <boost/interprocess/ipc/message_queue.hpp>
#include <fmt/format.h>

#include "bench/harness/spin.hpp"

namespace shmbus::bench {

namespace bip = boost::interprocess;

namespace {

// Deep enough that the producer rarely finds the queue full, bounded so a large message size does
// not exhaust /dev/shm.
constexpr std::size_t kThroughputDepthMax = 4096;
constexpr std::size_t kThroughputBytesMax = std::size_t{64} << 20;
constexpr std::size_t kPingPongDepth = 16;  // one message in flight; a little slack

// Unique per process and call, so concurrent benchmark runs and successive rounds never collide.
std::string unique_name(const char* direction) {
  static std::atomic<unsigned> counter{0};
  return fmt::format("shmbus-bench-mq-{}-{}-{}", getpid(), counter++, direction);
}

}  // namespace

struct BoostQueue::Impl {
  std::string name;
  std::unique_ptr<bip::message_queue> queue;
};

BoostQueue::BoostQueue() : impl_(std::make_unique<Impl>()) {}

BoostQueue::~BoostQueue() { remove(); }

void BoostQueue::create(const std::string& name, std::size_t depth, std::size_t message_size) {
  remove();
  bip::message_queue::remove(name.c_str());  // a stale queue left by a killed run
  impl_->queue = std::make_unique<bip::message_queue>(bip::create_only, name.c_str(), depth,
                                                      message_size);
  impl_->name = name;
}

void BoostQueue::send(const std::vector<char>& message) {
  while (!impl_->queue->try_send(message.data(), message.size(), 0)) spin_relax();
}

void BoostQueue::receive(std::vector<char>& message) {
  bip::message_queue::size_type received = 0;
  unsigned priority = 0;
  while (!impl_->queue->try_receive(message.data(), message.size(), received, priority)) {
    spin_relax();
  }
  if (received != message.size()) {
    throw std::runtime_error(
        fmt::format("boost-mq: received {} bytes, expected {}", received, message.size()));
  }
}

void BoostQueue::remove() {
  impl_->queue.reset();
  if (!impl_->name.empty()) bip::message_queue::remove(impl_->name.c_str());
  impl_->name.clear();
}

void BoostMqPingPong::prepare(const BenchConfig& config) {
  to_responder_.create(unique_name("ping"), kPingPongDepth, config.size);
  to_initiator_.create(unique_name("pong"), kPingPongDepth, config.size);
  message_.assign(config.size, '\x5a');
}

void BoostMqPingPong::send(std::uint64_t seq) {
  write_seq(message_.data(), seq);
  to_responder_.send(message_);
}

std::uint64_t BoostMqPingPong::receive() {
  to_responder_.receive(message_);
  return read_seq(message_.data());
}

void BoostMqPingPong::send_back(std::uint64_t seq) {
  write_seq(message_.data(), seq);
  to_initiator_.send(message_);
}

std::uint64_t BoostMqPingPong::receive_back() {
  to_initiator_.receive(message_);
  return read_seq(message_.data());
}

void BoostMqPingPong::cleanup() {
  to_responder_.remove();
  to_initiator_.remove();
}

void BoostMqThroughput::prepare(const BenchConfig& config) {
  std::size_t depth = std::clamp<std::size_t>(kThroughputBytesMax / config.size, 2,
                                              kThroughputDepthMax);
  queue_.create(unique_name("stream"), depth, config.size);
  message_.assign(config.size, '\x5a');
}

void BoostMqThroughput::send(std::uint64_t seq) {
  write_seq(message_.data(), seq);
  queue_.send(message_);
}

std::uint64_t BoostMqThroughput::receive() {
  queue_.receive(message_);
  return read_seq(message_.data());
}

void BoostMqThroughput::cleanup() { queue_.remove(); }

}  // namespace shmbus::bench
