#include "bench/bridge/bridge_run.hpp"

#include <algorithm>
#include <atomic>
#include <cstring>
#include <mutex>
#include <stdexcept>
#include <thread>
#include <vector>

#include <fmt/format.h>

#include "bench/bridge/bench_stream.hpp"
#include "bench/harness/latency_distribution.hpp"
#include "shmbus/bridge.hpp"
#include "shmbus/shmbus.hpp"

namespace shmbus::bench {

namespace {

using namespace std::chrono_literals;

constexpr const char* kOutHost = "bench-out";
constexpr const char* kInHost = "bench-in";

std::int64_t now_ns() noexcept {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(
             std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

std::uint8_t pattern_byte(std::uint64_t index, std::size_t at) noexcept {
  return static_cast<std::uint8_t>(index * 131 + at);
}

// What the bridges report while they run (reconnects, recoveries, gaps), kept for the message of
// a failed run. Called from the bridges' threads.
class BridgeNotices {
 public:
  void add(std::string line) {
    const std::lock_guard lock(mutex_);
    if (lines_.size() < kKept) lines_.push_back(std::move(line));
  }
  std::string text() const {
    const std::lock_guard lock(mutex_);
    std::string out;
    for (const std::string& line : lines_) out += "\n  " + line;
    return out.empty() ? std::string() : "; the bridges reported:" + out;
  }

 private:
  static constexpr std::size_t kKept = 20;
  mutable std::mutex mutex_;
  std::vector<std::string> lines_;
};

// What the threads share. Each error string is written by its own thread only and read after
// that thread is joined.
struct RunShared {
  // relaxed is enough for both flags: each is a request to stop, polled in a loop; what a thread
  // leaves behind (its error, its tally) is read only after join(), which orders it.
  std::atomic<bool> stop_bridges{false};
  std::atomic<bool> failed{false};
  // Records received and checked (index 0 included). release by the subscriber after each
  // batch, acquire by the publisher waiting for the first record: only a count is passed on.
  std::atomic<std::uint64_t> received{0};
  std::string out_error, in_error, subscriber_error;
  BridgeNotices notices;
};

// The subscriber's side of the run: checks every record and keeps the timings.
struct SubscriberTally {
  std::int64_t first_send_ns = 0;  // of index 1
  std::int64_t last_receive_ns = 0;
  core::LatencySnapshot latency{};
};

// Removes the run's channels and deletes its stream however the run ends (declared before every
// object that uses them, so it runs after they are closed).
class RunCleanup {
 public:
  explicit RunCleanup(const BridgeRunPlan& plan) : plan_(plan) { remove(); }
  ~RunCleanup() {
    remove();
    (void)delete_bench_stream(plan_.nats_url, plan_.stream);
  }
  RunCleanup(const RunCleanup&) = delete;
  RunCleanup& operator=(const RunCleanup&) = delete;

 private:
  void remove() {
    (void)remove_channel(plan_.source_channel);
    (void)remove_channel(plan_.destination_channel);
  }
  const BridgeRunPlan& plan_;
};

void subscribe(Subscriber& subscriber, const BridgeRunPlan& plan, RunShared& shared,
               SubscriberTally& tally) {
  std::uint64_t expected = 0;  // the next index
  std::uint64_t first_sequence = 0;
  auto last_progress = std::chrono::steady_clock::now();
  std::string& error = shared.subscriber_error;
  while (expected <= plan.count && error.empty()) {
    // relaxed: a stop request only (see RunShared).
    if (shared.failed.load(std::memory_order_relaxed)) return;
    (void)subscriber.wait(100ms);
    const std::size_t delivered = subscriber.poll([&](const Message& m) {
      if (!error.empty()) return;
      const std::int64_t receive_ns = now_ns();
      if (m.lost_before != 0) {
        error = fmt::format("record {} (sequence {}) came after {} lost sequence(s)", expected,
                            m.sequence, m.lost_before);
        return;
      }
      if (expected == 0) first_sequence = m.sequence;
      if (m.sequence != first_sequence + expected) {
        error = fmt::format("record {} has sequence {}, expected {}", expected, m.sequence,
                            first_sequence + expected);
        return;
      }
      std::int64_t send_ns = 0;
      error = check_bridge_record(m.payload.data(), m.payload.size(), plan.size, expected,
                                  &send_ns);
      if (!error.empty()) return;
      if (expected == 1) tally.first_send_ns = send_ns;
      if (expected >= 1) {
        add_sample(tally.latency, static_cast<std::uint64_t>(std::max<std::int64_t>(
                                      receive_ns - send_ns, 0)));
      }
      tally.last_receive_ns = receive_ns;
      ++expected;
    });
    if (subscriber.status() != PollStatus::ok) {
      error = fmt::format("the subscriber of {} stopped: {}", plan.destination_channel,
                          subscriber.last_error());
    }
    // release: see RunShared::received.
    shared.received.store(expected, std::memory_order_release);
    const auto now = std::chrono::steady_clock::now();
    if (delivered > 0) {
      last_progress = now;
    } else if (error.empty() && now - last_progress > plan.stall_timeout) {
      error = fmt::format("stalled: {} of {} records received, none for {} s", expected,
                          plan.count + 1, plan.stall_timeout.count());
    }
  }
  // Records past the last one would be duplicates: one more look.
  if (error.empty()) {
    std::this_thread::sleep_for(50ms);
    (void)subscriber.poll([&](const Message& m) {
      if (error.empty()) {
        error = fmt::format("an extra record arrived after the last one (sequence {})",
                            m.sequence);
      }
    });
  }
}

// Publishes record `index`, waiting while the ring is full (bridge out's block subscriber holds
// what the stream has not acknowledged). False when the run failed or stalled meanwhile.
bool publish_record(Publisher& publisher, const BridgeRunPlan& plan, RunShared& shared,
                    std::uint64_t index, std::string& error) {
  const auto give_up = std::chrono::steady_clock::now() + plan.stall_timeout;
  Claim claim;
  while (true) {
    const PublishStatus s = publisher.claim(static_cast<std::uint32_t>(plan.size), claim, 100ms);
    if (s == PublishStatus::ok) break;
    if (s != PublishStatus::timed_out && s != PublishStatus::back_pressured) {
      error = fmt::format("claiming record {}: {}", index, to_string(s));
      return false;
    }
    // relaxed: a stop request only (see RunShared).
    if (shared.failed.load(std::memory_order_relaxed)) return false;
    if (std::chrono::steady_clock::now() > give_up) {
      error = fmt::format("record {}: the ring stayed full for {} s", index,
                          plan.stall_timeout.count());
      return false;
    }
  }
  fill_bridge_record(claim.data(), plan.size, index, now_ns());
  const PublishStatus committed = publisher.commit(claim);
  if (committed != PublishStatus::ok) {
    error = fmt::format("committing record {}: {}", index, to_string(committed));
    return false;
  }
  return true;
}

// Waits until the subscriber has received the first record; false when the run failed first.
bool wait_for_first_record(const BridgeRunPlan& plan, RunShared& shared, std::string& error) {
  const auto give_up = std::chrono::steady_clock::now() + plan.stall_timeout;
  // acquire: pairs with the subscriber's release of received (a count only).
  while (shared.received.load(std::memory_order_acquire) == 0) {
    // relaxed: a stop request only (see RunShared).
    if (shared.failed.load(std::memory_order_relaxed)) return false;
    if (std::chrono::steady_clock::now() > give_up) {
      error = fmt::format("the first record did not come through within {} s",
                          plan.stall_timeout.count());
      return false;
    }
    std::this_thread::sleep_for(1ms);
  }
  return true;
}

void publish_all(Publisher& publisher, const BridgeRunPlan& plan, RunShared& shared,
                 std::string& error) {
  if (!publish_record(publisher, plan, shared, 0, error)) return;
  if (!wait_for_first_record(plan, shared, error)) return;
  const auto start = std::chrono::steady_clock::now();
  const double period_ns = plan.rate > 0 ? 1e9 / plan.rate : 0;
  for (std::uint64_t i = 1; i <= plan.count; ++i) {
    if (period_ns > 0) {
      // On a fixed schedule from the start: a late record does not delay the ones after it.
      std::this_thread::sleep_until(
          start + std::chrono::nanoseconds(static_cast<std::int64_t>(double(i - 1) * period_ns)));
    }
    if (!publish_record(publisher, plan, shared, i, error)) return;
  }
}

std::string describe_failure(const RunShared& shared, const std::string& publisher_error) {
  std::string what;
  const auto add = [&what](const char* who, const std::string& e) {
    if (e.empty()) return;
    if (!what.empty()) what += "; ";
    what += fmt::format("{}: {}", who, e);
  };
  add("subscriber", shared.subscriber_error);
  add("publisher", publisher_error);
  add("bridge out", shared.out_error);
  add("bridge in", shared.in_error);
  return what.empty() ? what : what + shared.notices.text();
}

}  // namespace

void fill_bridge_record(std::byte* payload, std::size_t size, std::uint64_t index,
                        std::int64_t send_ns) noexcept {
  std::memcpy(payload, &send_ns, 8);
  std::memcpy(payload + 8, &index, 8);
  for (std::size_t j = kBridgeRecordHeaderBytes; j < size; ++j) {
    payload[j] = static_cast<std::byte>(pattern_byte(index, j));
  }
}

std::string check_bridge_record(const std::byte* payload, std::size_t payload_size,
                                std::size_t size, std::uint64_t index, std::int64_t* send_ns) {
  if (payload_size != size) {
    return fmt::format("record {} has {} bytes, expected {}", index, payload_size, size);
  }
  std::uint64_t got_index = 0;
  std::memcpy(&got_index, payload + 8, 8);
  if (got_index != index) return fmt::format("record {} arrived where {} was due", got_index, index);
  for (std::size_t j = kBridgeRecordHeaderBytes; j < size; ++j) {
    if (payload[j] != static_cast<std::byte>(pattern_byte(index, j))) {
      return fmt::format("record {}: payload byte {} is {:#04x}, expected {:#04x}", index, j,
                         std::to_integer<unsigned>(payload[j]), pattern_byte(index, j));
    }
  }
  std::memcpy(send_ns, payload, 8);
  return {};
}

BridgeRunResult run_bridge_once(const BridgeRunPlan& plan) {
  if (plan.size < kBridgeRecordHeaderBytes) {
    throw std::runtime_error(fmt::format("record size {} is below {} bytes", plan.size,
                                         kBridgeRecordHeaderBytes));
  }
  const RunCleanup cleanup(plan);
  ChannelOptions channel;
  channel.max_message = std::max<std::uint32_t>(channel.max_message,
                                                static_cast<std::uint32_t>(plan.size));
  auto publisher = Publisher::open(plan.source_channel, channel);
  if (!publisher) {
    throw std::runtime_error(
        fmt::format("create channel {}: {}", plan.source_channel, publisher.error().message));
  }
  RunShared shared;

  bridge::OutOptions out_options;
  out_options.channel = plan.source_channel;
  out_options.nats_url = plan.nats_url;
  out_options.stream = plan.stream;
  out_options.subject = plan.subject;
  out_options.host = kOutHost;
  out_options.notice = [&shared](const std::string& line) { shared.notices.add("out: " + line); };
  auto out = bridge::Out::open(out_options);
  if (!out) throw std::runtime_error(fmt::format("bridge out: {}", out.error().message));

  bridge::InOptions in_options;
  in_options.channel = plan.destination_channel;
  in_options.nats_url = plan.nats_url;
  in_options.stream = plan.stream;
  in_options.subject = plan.subject;
  in_options.host = kInHost;
  in_options.report = [&shared](std::string_view line) {
    shared.notices.add("in: " + std::string(line));
  };
  auto in = bridge::In::open(in_options);
  if (!in) throw std::runtime_error(fmt::format("bridge in: {}", in.error().message));

  SubscriberOptions subscriber_options;
  subscriber_options.policy = Policy::block;
  subscriber_options.start = StartFrom::earliest;
  auto subscriber = Subscriber::open(plan.destination_channel, subscriber_options);
  if (!subscriber) {
    throw std::runtime_error(fmt::format("subscribe to {}: {}", plan.destination_channel,
                                         subscriber.error().message));
  }

  // A bridge that returns before it is asked to failed, whatever it returned.
  const auto run_bridge = [&shared](auto& bridge, std::string& error) {
    try {
      auto done = bridge.run(shared.stop_bridges);
      if (!done) error = done.error().message;
    } catch (const std::exception& e) {
      error = e.what();
    }
    // relaxed: stop requests only (see RunShared).
    if (!shared.stop_bridges.load(std::memory_order_relaxed)) {
      if (error.empty()) error = "returned before it was stopped";
      shared.failed.store(true, std::memory_order_relaxed);  // relaxed: a stop request
    }
  };
  SubscriberTally tally;
  std::thread out_thread([&] { run_bridge(*out, shared.out_error); });
  std::thread in_thread([&] { run_bridge(*in, shared.in_error); });
  std::thread subscriber_thread([&] {
    subscribe(*subscriber, plan, shared, tally);
    // relaxed: a stop request only (see RunShared).
    if (!shared.subscriber_error.empty()) shared.failed.store(true, std::memory_order_relaxed);
  });
  std::string publisher_error;
  publish_all(*publisher, plan, shared, publisher_error);
  // relaxed: a stop request only (see RunShared).
  if (!publisher_error.empty()) shared.failed.store(true, std::memory_order_relaxed);
  subscriber_thread.join();
  shared.stop_bridges.store(true, std::memory_order_relaxed);  // relaxed: see RunShared
  out_thread.join();
  in_thread.join();

  const std::string failure = describe_failure(shared, publisher_error);
  if (!failure.empty()) throw std::runtime_error(failure);
  BridgeRunResult result;
  result.received = plan.count;
  result.seconds = double(std::max<std::int64_t>(tally.last_receive_ns - tally.first_send_ns, 1)) /
                   1e9;
  result.records_per_s = double(plan.count) / result.seconds;
  result.latency = tally.latency;
  return result;
}

}  // namespace shmbus::bench
