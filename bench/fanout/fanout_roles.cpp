#include "bench/fanout/fanout_roles.hpp"

#include <time.h>

#include <chrono>
#include <mutex>
#include <stdexcept>
#include <thread>
#include <vector>

#include <fmt/format.h>

#include "bench/fanout/record_check.hpp"
#include "bench/harness/spin.hpp"
#include "shmbus/shmbus.hpp"

namespace shmbus::bench {

namespace {

// The publisher checks the clock once per this many messages (a read costs about a message).
constexpr std::uint64_t kMessagesPerClockRead = 256;
// How long a subscriber sleeps at most before it looks whether the publisher has finished: only
// the end of a round waits for it, never a delivery.
constexpr auto kWaitTimeout = std::chrono::milliseconds(1);

// CLOCK_REALTIME, the clock of Message::timestamp_ns, so latencies and rates use one clock.
std::int64_t realtime_ns() {
  timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);  // vDSO: no system call
  return std::int64_t(ts.tv_sec) * 1'000'000'000 + ts.tv_nsec;
}

// One message: claim, write the sequence and the fill, commit. Returns its sequence.
std::uint64_t publish_one(Publisher& pub, std::size_t size) {
  Claim claim;
  PublishStatus status;
  while ((status = pub.try_claim(static_cast<std::uint32_t>(size), claim)) ==
         PublishStatus::back_pressured) {
    spin_relax();
  }
  if (status != PublishStatus::ok) {
    throw std::runtime_error(fmt::format("publisher: claim failed: {}", to_string(status)));
  }
  const std::uint64_t sequence = claim.sequence();
  fill_record(claim.data(), size, sequence);
  status = pub.commit(claim);
  if (status != PublishStatus::ok) {
    throw std::runtime_error(fmt::format("publisher: commit failed: {}", to_string(status)));
  }
  return sequence;
}

void run_subscriber(const FanoutPlan& plan, FanoutShared& shared, SubscriberTally& tally,
                    const std::atomic<bool>& stop) {
  SubscriberOptions options;
  options.policy = plan.policy;
  options.start = StartFrom::earliest;
  auto opened = Subscriber::open(plan.channel, options);
  if (!opened) throw std::runtime_error(fmt::format("open: {}", opened.error().message));
  Subscriber& sub = *opened;
  RecordCheck check(plan.policy, plan.size, sub.next_sequence());
  // release: see FanoutShared::subscribers_ready.
  shared.subscribers_ready.fetch_add(1, std::memory_order_release);

  // The delivery time is read once per poll, at its first record, and again only for a record
  // published after that read (as SubscriberOptions::latency_histogram does).
  std::int64_t delivered_ns = 0;
  auto on_message = [&](const Message& m) {
    if (delivered_ns < m.timestamp_ns) delivered_ns = realtime_ns();
    core::record_latency(tally.latency, delivered_ns - m.timestamp_ns);
    check(m);
  };
  const auto spin = std::chrono::nanoseconds(plan.wait_spin_ns);
  // relaxed: a request to give up from a sibling thread that failed; nothing is published by it.
  while (!stop.load(std::memory_order_relaxed)) {
    if (sub.wait(kWaitTimeout, spin)) {
      delivered_ns = 0;
      if (sub.poll(on_message) > 0) tally.last_delivery_ns = delivered_ns;
      if (!check.failure().empty()) throw std::runtime_error(check.failure());
      if (sub.status() != PollStatus::ok) {
        throw std::runtime_error(fmt::format("poll: {}", sub.last_error()));
      }
    }
    // acquire: see FanoutShared::final_sequence.
    const std::uint64_t last = shared.final_sequence.load(std::memory_order_acquire);
    if (last != kStillStreaming && sub.next_sequence() > last) break;
  }
  tally.received = check.received();
  tally.lost = check.lost();
  if (sub.lost() != check.lost()) {
    throw std::runtime_error(fmt::format("the subscriber counts {} lost, its records said {}",
                                         sub.lost(), check.lost()));
  }
}

}  // namespace

void run_fanout_publisher(const FanoutPlan& plan, FanoutShared& shared) {
  auto opened = Publisher::open(plan.channel);
  if (!opened) throw std::runtime_error(fmt::format("publisher: {}", opened.error().message));
  Publisher& pub = *opened;
  // acquire: see FanoutShared::subscribers_ready.
  while (shared.subscribers_ready.load(std::memory_order_acquire) < plan.subscribers) {
    spin_relax();
  }
  const std::int64_t start = realtime_ns();
  const std::int64_t end = start + std::int64_t(plan.duration_s * 1e9);
  std::uint64_t published = 0;
  std::uint64_t last = 0;
  do {
    for (std::uint64_t k = 0; k < kMessagesPerClockRead; ++k) last = publish_one(pub, plan.size);
    published += kMessagesPerClockRead;
  } while (realtime_ns() < end);
  shared.end_ns = realtime_ns();
  shared.start_ns = start;
  shared.published = published;
  // release: see FanoutShared::final_sequence.
  shared.final_sequence.store(last, std::memory_order_release);
}

void run_fanout_subscribers(const FanoutPlan& plan, FanoutShared& shared,
                            std::span<SubscriberTally> tallies, std::size_t first_index) {
  std::atomic<bool> stop{false};
  std::mutex failure_lock;
  std::string failure;
  auto fail = [&](std::size_t index, const char* what) {
    const std::lock_guard<std::mutex> hold(failure_lock);
    if (failure.empty()) failure = fmt::format("subscriber {}: {}", index, what);
    // relaxed: see run_subscriber.
    stop.store(true, std::memory_order_relaxed);
  };
  std::vector<std::thread> threads;
  threads.reserve(tallies.size());
  try {
    for (std::size_t i = 0; i < tallies.size(); ++i) {
      threads.emplace_back([&, i] {
        try {
          run_subscriber(plan, shared, tallies[i], stop);
        } catch (const std::exception& e) {
          fail(first_index + i, e.what());
        }
      });
    }
  } catch (const std::exception& e) {  // a thread could not start
    fail(first_index + threads.size(), e.what());
  }
  for (std::thread& t : threads) t.join();
  if (!failure.empty()) throw std::runtime_error(failure);
}

}  // namespace shmbus::bench
