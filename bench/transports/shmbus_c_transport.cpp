#include "bench/transports/shmbus_c_transport.hpp"

#include <fmt/format.h>
#include <unistd.h>

#include <cstring>
#include <stdexcept>
#include <string>
#include <vector>

#include "bench/harness/spin.hpp"
#include "shmbus/shmbus.h"

namespace shmbus::bench {
namespace {

constexpr std::uint64_t kCapacity = 1 << 16;  // as the C++ pingpong: a small ring stays in cache

void check(int rc, const char* what) {
  if (rc < 0) throw std::runtime_error(fmt::format("shmbus-c: {}: {}", what, shmbus_last_error()));
}

shmbus_publisher* open_publisher(const std::string& name) {
  shmbus_channel_options options;
  shmbus_channel_options_init(&options);
  options.capacity = kCapacity;
  options.max_message = 4096;
  options.single_producer = 1;
  shmbus_publisher* publisher = nullptr;
  check(shmbus_publisher_open(name.c_str(), &options, &publisher), "opening a publisher");
  return publisher;
}

shmbus_subscriber* open_subscriber(const std::string& name) {
  shmbus_subscriber_options options;
  shmbus_subscriber_options_init(&options);
  options.policy = SHMBUS_POLICY_BLOCK;
  options.start = SHMBUS_START_EARLIEST;
  shmbus_subscriber* subscriber = nullptr;
  check(shmbus_subscriber_open(name.c_str(), &options, &subscriber), "opening a subscriber");
  return subscriber;
}

class CPingPong final : public PingPongTransport {
 public:
  ~CPingPong() override { detach(); }
  std::string name() const override { return "shmbus-c"; }
  void prepare(const BenchConfig& config) override {
    size_ = config.size;
    ping_ = fmt::format("bench.cping.{}", ::getpid());
    pong_ = fmt::format("bench.cpong.{}", ::getpid());
    // Created by the parent so that both children find them.
    shmbus_publisher_close(open_publisher(ping_));
    shmbus_publisher_close(open_publisher(pong_));
  }
  void as_initiator() override { attach(ping_, pong_, std::byte{0x5a}); }
  void as_responder() override { attach(pong_, ping_, std::byte{0xa5}); }
  void send(std::uint64_t seq) override { send_message(seq); }
  void send_back(std::uint64_t seq) override { send_message(seq); }
  std::uint64_t receive() override { return take(); }
  std::uint64_t receive_back() override { return take(); }
  void detach() override {
    shmbus_subscriber_close(subscriber_);
    shmbus_publisher_close(publisher_);
    subscriber_ = nullptr;
    publisher_ = nullptr;
  }
  void cleanup() override {
    (void)shmbus_channel_remove(ping_.c_str());
    (void)shmbus_channel_remove(pong_.c_str());
  }

 private:
  void attach(const std::string& out, const std::string& in, std::byte fill) {
    publisher_ = open_publisher(out);
    subscriber_ = open_subscriber(in);
    message_.assign(size_, fill);
  }

  // As the C++ variant: the message is built in a local buffer, claimed, copied in, committed.
  void send_message(std::uint64_t seq) {
    write_seq(message_.data(), seq);
    shmbus_claim_ticket claim;
    while (shmbus_claim(publisher_, static_cast<std::uint32_t>(size_), nullptr, 0, &claim) != 0) {
      spin_relax();
    }
    std::memcpy(claim.data, message_.data(), size_);
    check(shmbus_commit(publisher_, &claim), "commit");
  }

  static void on_message(const shmbus_message* m, void* context) {
    auto* self = static_cast<CPingPong*>(context);
    std::memcpy(self->message_.data(), m->payload, m->length);
    self->seq_ = read_seq(self->message_.data());
  }

  std::uint64_t take() {
    std::int64_t n;
    while ((n = shmbus_poll(subscriber_, on_message, this, 1)) == 0) spin_relax();
    check(static_cast<int>(n), "poll");
    return seq_;
  }

  std::size_t size_ = 64;
  std::string ping_, pong_;
  shmbus_publisher* publisher_ = nullptr;
  shmbus_subscriber* subscriber_ = nullptr;
  std::vector<std::byte> message_;
  std::uint64_t seq_ = 0;
};

}  // namespace

std::unique_ptr<PingPongTransport> shmbus_c_pingpong_transport() {
  return std::make_unique<CPingPong>();
}

}  // namespace shmbus::bench
