#include "bench/group/group_roles.hpp"

#include <time.h>

#include <chrono>
#include <stdexcept>

#include <fmt/format.h>

#include "bench/fanout/record_check.hpp"
#include "bench/harness/spin.hpp"
#include "bench/harness/transport.hpp"
#include "shmbus/group_consumer.hpp"
#include "shmbus/shmbus.hpp"

namespace shmbus::bench {

namespace {

// How long a consumer sleeps at most before it looks whether the round is over: only the end of a
// round waits for it, never a delivery.
constexpr auto kGroupWaitTimeout = std::chrono::milliseconds(1);

// CLOCK_REALTIME, the clock of the records' timestamps, so latencies and rates use one clock.
std::int64_t group_realtime_ns() {
  timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);  // vDSO: no system call
  return std::int64_t(ts.tv_sec) * 1'000'000'000 + ts.tv_nsec;
}

// Checks one record's size and content, marks its sequence and records its latency. Returns the
// failure, or an empty string. No allocation unless the record is wrong.
class GroupRecordCheck {
 public:
  GroupRecordCheck(const GroupPlan& plan, GroupConsumerTally& tally,
                   std::atomic<std::uint8_t>* marks)
      : plan_(plan), tally_(tally), marks_(marks) {}

  // `delivered_ns`: the consumer's clock for this record (read once per poll, as the library's
  // latency histograms do, and again for a record published after that read).
  void operator()(std::uint64_t sequence, std::int64_t timestamp_ns,
                  std::span<const std::byte> payload, std::int64_t& delivered_ns) noexcept {
    if (!failure_.empty()) return;
    if (delivered_ns < timestamp_ns) delivered_ns = group_realtime_ns();
    core::record_latency(tally_.latency, delivered_ns - timestamp_ns);
    if (sequence < 1 || sequence > plan_.count) return fail(sequence, "outside the round");
    if (payload.size() != plan_.size) return fail(sequence, "of the wrong size");
    if (read_seq(payload.data()) != sequence) return fail(sequence, "carrying another sequence");
    const std::byte fill = fill_byte(sequence);
    for (std::size_t i = kSeqBytes; i < payload.size(); ++i) {
      if (payload[i] != fill) return fail(sequence, "with wrong content");
    }
    std::atomic<std::uint8_t>& mark = marks_[sequence - 1];
    // relaxed (both): each record belongs to one consumer at a time; the parent reads the marks
    // after reaping every child. A second delivery shows as a mark already set (or, if two
    // consumers raced on it, as consumed counts adding up to more than the round published).
    if (mark.load(std::memory_order_relaxed) != 0) return fail(sequence, "delivered twice");
    mark.store(1, std::memory_order_relaxed);  // relaxed: own mark
    ++tally_.consumed;
  }
  const std::string& failure() const { return failure_; }

 private:
  void fail(std::uint64_t sequence, const char* what) noexcept {
    try {
      failure_ = fmt::format("record {} {}", sequence, what);
    } catch (...) {
      failure_ = "a wrong record (and no memory to describe it)";
    }
  }

  const GroupPlan& plan_;
  GroupConsumerTally& tally_;
  std::atomic<std::uint8_t>* marks_;
  std::string failure_;
};

void publish_group_record(Publisher& pub, std::size_t size) {
  Claim claim;
  PublishStatus status;
  while ((status = pub.try_claim(static_cast<std::uint32_t>(size), claim)) ==
         PublishStatus::back_pressured) {
    spin_relax();
  }
  if (status != PublishStatus::ok) {
    throw std::runtime_error(fmt::format("publisher: claim failed: {}", to_string(status)));
  }
  fill_record(claim.data(), size, claim.sequence());
  status = pub.commit(claim);
  if (status != PublishStatus::ok) {
    throw std::runtime_error(fmt::format("publisher: commit failed: {}", to_string(status)));
  }
}

// acquire: see GroupBenchShared::final_sequence.
std::uint64_t final_sequence(const GroupBenchShared& shared) {
  return shared.final_sequence.load(std::memory_order_acquire);  // acquire: producer's release
}

void run_plain_subscriber(const GroupPlan& plan, GroupBenchShared& shared,
                          GroupConsumerTally& tally, std::atomic<std::uint8_t>* marks) {
  SubscriberOptions options;
  options.policy = Policy::block;
  options.start = StartFrom::earliest;
  auto opened = Subscriber::open(plan.channel, options);
  if (!opened) throw std::runtime_error(fmt::format("open: {}", opened.error().message));
  Subscriber& sub = *opened;
  // release: see GroupBenchShared::consumers_ready.
  shared.consumers_ready.fetch_add(1, std::memory_order_release);
  GroupRecordCheck check(plan, tally, marks);
  std::int64_t delivered_ns = 0;
  auto on_message = [&](const Message& m) {
    check(m.sequence, m.timestamp_ns, m.payload, delivered_ns);
  };
  const auto spin = std::chrono::nanoseconds(plan.wait_spin_ns);
  for (;;) {
    if (sub.wait(kGroupWaitTimeout, spin)) {
      delivered_ns = 0;
      if (sub.poll(on_message, 256) > 0) tally.last_done_ns = group_realtime_ns();
      if (!check.failure().empty()) throw std::runtime_error(check.failure());
      if (sub.status() != PollStatus::ok) {
        throw std::runtime_error(fmt::format("poll: {}", sub.last_error()));
      }
    }
    const std::uint64_t last = final_sequence(shared);
    if (last != kGroupStillPublishing && sub.next_sequence() > last) break;
  }
}

void run_group_member(const GroupPlan& plan, GroupBenchShared& shared, GroupConsumerTally& tally,
                      std::atomic<std::uint8_t>* marks) {
  GroupOptions options;
  options.policy = Policy::block;
  options.start = StartFrom::earliest;
  options.ack_timeout = std::chrono::nanoseconds(kGroupBenchAckTimeoutNs);
  options.window = plan.window;
  auto opened = GroupConsumer::open(plan.channel, plan.group, options);
  if (!opened) throw std::runtime_error(fmt::format("open: {}", opened.error().message));
  GroupConsumer& member = *opened;
  // release: see GroupBenchShared::consumers_ready.
  shared.consumers_ready.fetch_add(1, std::memory_order_release);
  GroupRecordCheck check(plan, tally, marks);
  std::int64_t delivered_ns = 0;
  std::uint64_t last_in_batch = 0;
  const bool ack_each = plan.mode == GroupBenchMode::ack_each;
  auto on_message = [&](const GroupMessage& m) {
    check(m.sequence, m.timestamp_ns, m.payload, delivered_ns);
    if (m.redelivered) ++tally.redelivered;
    if (ack_each) {
      (void)member.ack(m.sequence);  // a refused ack is counted by fenced(), checked below
    } else {
      last_in_batch = m.sequence;
    }
  };
  const auto spin = std::chrono::nanoseconds(plan.wait_spin_ns);
  for (;;) {
    delivered_ns = 0;
    const std::size_t n = member.poll(on_message, 256);
    if (n > 0) {
      if (!ack_each) (void)member.ack_through(last_in_batch);
      tally.last_done_ns = group_realtime_ns();
    }
    if (!check.failure().empty()) throw std::runtime_error(check.failure());
    if (member.status() != GroupStatus::ok) {
      throw std::runtime_error(fmt::format("poll: {}", member.last_error()));
    }
    if (n > 0) continue;
    const std::uint64_t last = final_sequence(shared);
    // Done once the group retired every record, whichever member acked it.
    if (last != kGroupStillPublishing && member.retired_through() > last) break;
    (void)member.wait(kGroupWaitTimeout, spin);
  }
  tally.fenced = member.fenced();
}

}  // namespace

void run_group_publisher(const GroupPlan& plan, GroupBenchShared& shared) {
  auto opened = Publisher::open(plan.channel);
  if (!opened) throw std::runtime_error(fmt::format("publisher: {}", opened.error().message));
  Publisher& pub = *opened;
  // acquire: see GroupBenchShared::consumers_ready.
  while (shared.consumers_ready.load(std::memory_order_acquire) < plan.consumers) spin_relax();
  const std::int64_t start = group_realtime_ns();
  for (std::uint64_t i = 0; i < plan.count; ++i) publish_group_record(pub, plan.size);
  shared.end_ns = group_realtime_ns();
  shared.start_ns = start;
  shared.published = plan.count;
  // release: see GroupBenchShared::final_sequence (the channel is fresh: sequences 1..count).
  shared.final_sequence.store(plan.count, std::memory_order_release);
}

void run_group_consumer(const GroupPlan& plan, GroupBenchShared& shared, GroupConsumerTally& tally,
                        std::atomic<std::uint8_t>* marks) {
  if (plan.mode == GroupBenchMode::subscriber) {
    run_plain_subscriber(plan, shared, tally, marks);
  } else {
    run_group_member(plan, shared, tally, marks);
  }
}

}  // namespace shmbus::bench
