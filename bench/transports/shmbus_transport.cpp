#include "bench/transports/shmbus_transport.hpp"

#include <fmt/format.h>
#include <unistd.h>

#include <cstring>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

#include "bench/harness/spin.hpp"
#include "shmbus/shmbus.hpp"

namespace shmbus::bench {
namespace {

std::string unique_name(const char* what) {
  return fmt::format("bench.{}.{}", what, ::getpid());
}

Publisher open_publisher(const std::string& name, std::uint64_t capacity, std::size_t size,
                         bool single_producer, bool counters = true) {
  ChannelOptions co;
  co.capacity = capacity;
  co.single_producer = single_producer;
  co.counters = counters;
  // Room for a whole batch of streamed messages in one claim (a batch is at most one maximum
  // frame), within the channel's limit of a quarter ring.
  const std::size_t batch_bytes = 32 * shmbus::core::frame_size(size);
  co.max_message = static_cast<std::uint32_t>(
      std::min<std::size_t>(std::max<std::size_t>(batch_bytes, 4096), capacity / 4 - 32));
  auto p = Publisher::open(name, co);
  if (!p) throw std::runtime_error(fmt::format("shmbus: {}", p.error().message));
  return std::move(*p);
}

Subscriber open_subscriber(const std::string& name, bool latency_histogram = false) {
  SubscriberOptions so;
  so.latency_histogram = latency_histogram;
  so.policy = Policy::block;
  so.start = StartFrom::earliest;
  auto s = Subscriber::open(name, so);
  if (!s) throw std::runtime_error(fmt::format("shmbus: {}", s.error().message));
  return std::move(*s);
}

// Claims, copies the message in (it was built in a local buffer, as an application would), commits.
void send_message(Publisher& pub, std::vector<std::byte>& message, std::uint64_t seq) {
  write_seq(message.data(), seq);
  Claim c;
  while (pub.try_claim(static_cast<std::uint32_t>(message.size()), c) != PublishStatus::ok) {
    spin_relax();
  }
  std::memcpy(c.data(), message.data(), message.size());
  if (pub.commit(c) != PublishStatus::ok) throw std::runtime_error("shmbus: commit failed");
}

class PingPong final : public PingPongTransport {
 public:
  explicit PingPong(const ShmbusVariant& variant)
      : variant_(variant), single_producer_(variant.single_producer) {}
  std::string name() const override { return variant_.name(); }
  void prepare(const BenchConfig& config) override {
    size_ = config.size;
    ping_ = unique_name("ping");
    pong_ = unique_name("pong");
    // Created by the parent so both children find them; a small ring stays in cache.
    open_publisher(ping_, kCapacity, size_, single_producer_);
    open_publisher(pong_, kCapacity, size_, single_producer_);
  }
  void as_initiator() override {
    pub_.emplace(open_publisher(ping_, kCapacity, size_, single_producer_, variant_.counters));
    sub_.emplace(open_subscriber(pong_, variant_.latency_histogram));
    message_.assign(size_, std::byte{0x5a});
  }
  void as_responder() override {
    pub_.emplace(open_publisher(pong_, kCapacity, size_, single_producer_, variant_.counters));
    sub_.emplace(open_subscriber(ping_, variant_.latency_histogram));
    message_.assign(size_, std::byte{0xa5});
  }
  void send(std::uint64_t seq) override { send_message(*pub_, message_, seq); }
  void send_back(std::uint64_t seq) override { send_message(*pub_, message_, seq); }
  std::uint64_t receive() override { return take(); }
  std::uint64_t receive_back() override { return take(); }
  void detach() override {
    sub_.reset();
    pub_.reset();
  }
  void cleanup() override {
    (void)remove_channel(ping_);
    (void)remove_channel(pong_);
  }

 private:
  static constexpr std::uint64_t kCapacity = 1 << 16;

  std::uint64_t take() {
    std::uint64_t seq = 0;
    while (sub_->poll([&](const Message& m) {
             std::memcpy(message_.data(), m.payload.data(), m.payload.size());
             seq = read_seq(message_.data());
           }, 1) == 0) {
      spin_relax();
    }
    return seq;
  }

  ShmbusVariant variant_;
  bool single_producer_;
  std::size_t size_ = 64;
  std::string ping_, pong_;
  std::optional<Publisher> pub_;
  std::optional<Subscriber> sub_;
  std::vector<std::byte> message_;
};

// What both throughput styles share: a fresh channel per round (created by the parent so both
// children find it), a publisher in the producer, a block subscriber in the consumer, and the
// process-local message each side copies in or out.
class ChannelStream : public ThroughputTransport {
 public:
  ChannelStream(bool single_producer, const char* batched_name, const char* sp_name)
      : single_producer_(single_producer), name_(single_producer ? sp_name : batched_name) {}
  std::string name() const override { return name_; }
  void prepare(const BenchConfig& config) override {
    size_ = config.size;
    channel_ = unique_name(name_.c_str());
    open_publisher(channel_, kCapacity, size_, single_producer_);
  }
  void as_producer() override {
    pub_.emplace(open_publisher(channel_, kCapacity, size_, single_producer_));
    message_.assign(size_, std::byte{0x5a});
  }
  void as_consumer() override {
    sub_.emplace(open_subscriber(channel_));
    message_.assign(size_, std::byte{0});
  }
  void detach() override {
    sub_.reset();
    pub_.reset();
  }
  void cleanup() override { (void)remove_channel(channel_); }

 protected:
  static constexpr std::uint64_t kCapacity = 1 << 20;

  bool single_producer_;
  std::string name_;
  std::size_t size_ = 64;
  std::string channel_;
  std::optional<Publisher> pub_;
  std::optional<Subscriber> sub_;
  std::vector<std::byte> message_;
};

// "shmbus", "shmbus-sp": the producer claims batches, the consumer polls batches.
class Stream final : public ChannelStream {
 public:
  explicit Stream(bool single_producer) : ChannelStream(single_producer, "shmbus", "shmbus-sp") {}
  void as_producer() override {
    ChannelStream::as_producer();
    // As many as fit in one claim (a batch is at most one maximum frame).
    claim_batch_ = std::min<std::size_t>(
        kBatch, core::frame_size(pub_->info().max_message) / core::frame_size(size_));
    if (claim_batch_ == 0) claim_batch_ = 1;
    sizes_.assign(claim_batch_, static_cast<std::uint32_t>(size_));
    pending_.reserve(kBatch);
  }
  void as_consumer() override {
    ChannelStream::as_consumer();
    batch_.resize(kPollBatch);
  }
  // Messages go out in batches of kBatch (one claim, one timestamp), as a streaming application
  // would publish what it has; the end marker flushes.
  void send(std::uint64_t seq) override {
    pending_.push_back(seq);
    if (pending_.size() < claim_batch_ && seq != kEndMarker) return;
    Claim claims[kBatch];
    const std::span<const std::uint32_t> sizes(sizes_.data(), pending_.size());
    for (;;) {
      const PublishStatus st = pub_->try_claim_batch(sizes, claims);
      if (st == PublishStatus::ok) break;
      if (st != PublishStatus::back_pressured) {
        throw std::runtime_error(fmt::format("shmbus: batch claim failed: {}", to_string(st)));
      }
      spin_relax();
    }
    for (std::size_t i = 0; i < pending_.size(); ++i) {
      write_seq(message_.data(), pending_[i]);
      std::memcpy(claims[i].data(), message_.data(), message_.size());
      if (pub_->commit(claims[i]) != PublishStatus::ok) {
        throw std::runtime_error("shmbus: commit failed");
      }
    }
    pending_.clear();
  }
  std::uint64_t receive() override {
    // Poll a batch (one position store per batch), hand the sequences out one by one; every
    // payload is copied out as an application would.
    while (next_ == filled_) {
      std::size_t n = 0;
      sub_->poll([&](const Message& m) {
        std::memcpy(message_.data(), m.payload.data(), m.payload.size());
        batch_[n++] = read_seq(message_.data());
      }, kPollBatch);
      next_ = 0;
      filled_ = n;
      if (n == 0) spin_relax();
    }
    return batch_[next_++];
  }

 private:
  static constexpr std::size_t kBatch = 32;       // records per producer claim, at most
  static constexpr std::size_t kPollBatch = 256;  // records per consumer poll

  std::size_t claim_batch_ = kBatch;
  std::vector<std::uint64_t> batch_;
  std::vector<std::uint64_t> pending_;  // producer: sequences not yet published
  std::vector<std::uint32_t> sizes_;
  std::size_t next_ = 0;
  std::size_t filled_ = 0;
};

// "shmbus-single", "shmbus-sp-single": what a simple application does, one try_publish per
// message (retried while back-pressured) and one poll(handler, 1) per message that copies the
// payload out. Beside the batched Stream it shows what batching buys.
class SingleStream final : public ChannelStream {
 public:
  explicit SingleStream(bool single_producer)
      : ChannelStream(single_producer, "shmbus-single", "shmbus-sp-single") {}
  void send(std::uint64_t seq) override {
    write_seq(message_.data(), seq);
    PublishStatus st;
    while ((st = pub_->try_publish(message_)) == PublishStatus::back_pressured) spin_relax();
    if (st != PublishStatus::ok) {
      throw std::runtime_error(fmt::format("shmbus: publish failed: {}", to_string(st)));
    }
  }
  std::uint64_t receive() override {
    while (sub_->poll([&](const Message& m) {
             std::memcpy(message_.data(), m.payload.data(), m.payload.size());
           }, 1) == 0) {
      spin_relax();
    }
    return read_seq(message_.data());
  }
};

}  // namespace

std::string ShmbusVariant::name() const {
  std::string n = single_producer ? "shmbus-sp" : "shmbus";
  if (!counters) n += "-nocounters";
  if (latency_histogram) n += "-hist";
  return n;
}

std::unique_ptr<PingPongTransport> shmbus_pingpong_transport(const ShmbusVariant& variant) {
  return std::make_unique<PingPong>(variant);
}

std::unique_ptr<PingPongTransport> shmbus_pingpong_transport(bool single_producer) {
  return std::make_unique<PingPong>(ShmbusVariant{single_producer});
}
std::unique_ptr<ThroughputTransport> shmbus_throughput_transport(bool single_producer) {
  return std::make_unique<Stream>(single_producer);
}
std::unique_ptr<ThroughputTransport> shmbus_single_message_transport(bool single_producer) {
  return std::make_unique<SingleStream>(single_producer);
}

}  // namespace shmbus::bench
