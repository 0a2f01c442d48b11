#include "bench/journal/publisher_cost.hpp"

#include <time.h>

#include <algorithm>
#include <atomic>
#include <cstring>
#include <new>
#include <optional>
#include <stdexcept>
#include <thread>
#include <vector>

#include <fmt/format.h>

#include "bench/harness/shared_mapping.hpp"
#include "bench/harness/stats.hpp"
#include "bench/journal/journal_rounds.hpp"
#include "bench/journal/span_timer.hpp"

namespace shmbus::bench {

namespace {

// Untimed first messages: the code and the first ring lines are cold once, not per message.
std::uint64_t warmup_messages(std::uint64_t count) { return std::min<std::uint64_t>(1000, count / 10); }

// The clock name travels from the publisher's process in the shared control block.
struct ClockName {
  char text[32];
};

// Between two polls that found nothing the subscriber naps for a few microseconds, with
// nanosleep, never on the channel's futex: a futex sleeper would make every commit pay a wake-up
// system call, which is not the journaler's cost. It does not spin flat out because the kernel
// threads that complete the journaler's writes (io_uring workers, the filesystem's O_DIRECT
// completions, which run on the CPU taking the disk's interrupts) can share its CPU, and a
// thread that never sleeps starved them for seconds on a two-core VM (yielding did not help).
void nap_between_polls() {
  const timespec nap{0, 20'000};
  ::nanosleep(&nap, nullptr);
}

// The subscriber's process: it polls in a loop until every message arrived; with a journaler, a
// thread of it records the channel until every message is written.
void run_subscriber_side(const std::string& channel, const std::string& dir, bool with_journal,
                         bool direct, std::uint64_t count, RoundControl& control) {
  SubscriberOptions so;
  so.start = StartFrom::earliest;
  auto sub = Subscriber::open(channel, so);
  if (!sub) throw std::runtime_error(sub.error().message);
  std::optional<Journaler> journaler;
  std::thread journal_thread;
  std::string journal_error;
  // release/acquire: the poll loop that sees it set sees journal_error.
  std::atomic<bool> journal_failed{false};
  if (with_journal) {
    journaler.emplace(open_journaler(channel, dir, direct));
    journal_thread = std::thread([&] {
      auto failed = [&](const Error& e) {
        journal_error = e.message;
        journal_failed.store(true, std::memory_order_release);  // release: see above
      };
      while (journaler->stats().written_sequence < count) {
        if (auto r = journaler->step(); !r) return failed(r.error());
      }
      if (auto r = journaler->drain(); !r) failed(r.error());
    });
  }
  control.ready.store(1, std::memory_order_release);  // release: see RoundControl
  std::uint64_t received = 0;
  std::uint64_t next_sequence = 1;
  bool in_order = true;
  // A failed journaler releases no more ring space: the publisher would wait for it forever.
  // acquire: see journal_failed.
  while (received < count && !journal_failed.load(std::memory_order_acquire)) {
    const std::size_t n = sub->poll([&](const Message& m) {
      in_order = in_order && m.sequence == next_sequence;
      next_sequence = m.sequence + 1;
    });
    received += n;
    if (n == 0) nap_between_polls();
  }
  if (journal_thread.joinable()) journal_thread.join();
  if (!in_order) throw std::runtime_error("the subscriber saw sequences out of order");
  if (!journal_error.empty()) throw std::runtime_error(fmt::format("journaler: {}", journal_error));
}

// The publisher's process: paced publishes, each timed from try_claim to the end of commit.
void run_publisher_side(const std::string& channel, const JournalBenchConfig& cfg,
                        RoundControl& control, ClockName& clock_name) {
  auto pub = Publisher::open(channel);
  if (!pub) throw std::runtime_error(pub.error().message);
  wait_ready(control, 1);
  const std::uint64_t count = cfg.latency_count;
  const auto size = static_cast<std::uint32_t>(std::max<std::size_t>(8, cfg.latency_size));
  const std::uint64_t warmup = warmup_messages(count);
  std::vector<std::uint64_t> ticks(count);
  std::vector<std::byte> message(size, std::byte{0x5a});
  const auto interval = static_cast<std::uint64_t>(1e9 / cfg.latency_rate);
  SpanTimer timer;
  std::uint64_t next = monotonic_now_ns();
  for (std::uint64_t i = 0; i < warmup + count; ++i) {
    next += interval;
    while (monotonic_now_ns() < next) {
    }
    const std::uint64_t sequence = i + 1;
    std::memcpy(message.data(), &sequence, sizeof sequence);
    const std::uint64_t start = timer.start();
    Claim claim;
    PublishStatus st;
    while ((st = pub->try_claim(size, claim)) == PublishStatus::back_pressured) {
    }
    if (st != PublishStatus::ok) throw std::runtime_error(fmt::format("claim: {}", to_string(st)));
    std::memcpy(claim.data(), message.data(), size);
    st = pub->commit(claim);
    const std::uint64_t stop = timer.stop();
    if (st != PublishStatus::ok) throw std::runtime_error(fmt::format("commit: {}", to_string(st)));
    if (i >= warmup) ticks[i - warmup] = stop - start;
  }
  timer.finish();
  for (std::uint64_t& t : ticks) t = timer.ns(t);
  control.latency = measure_latency(ticks);
  *fmt::format_to_n(clock_name.text, sizeof clock_name.text - 1, "{}", timer.clock_name()).out =
      '\0';
}

}  // namespace

PublisherCostRound publisher_cost_round(const JournalBenchConfig& cfg, bool with_journal,
                                        int round, const CpuPlan& cpus) {
  const RoundScratch scratch(with_journal ? "pub-j" : "pub", round, cfg.dir);
  create_channel(scratch.channel, 4 << 20, 64 << 10);
  struct Shared {
    RoundControl control;
    ClockName clock;
  };
  SharedMapping shared(sizeof(Shared));
  auto& block = *new (shared.data()) Shared{};
  const std::uint64_t warmup = warmup_messages(cfg.latency_count);
  std::string failure;
  try {
    Child subscriber = spawn_child("subscriber", cpus.responder_cpu, cpus.shared_cpu,
                                   block.control.first_error, [&] {
      run_subscriber_side(scratch.channel, scratch.dir, with_journal, cfg.direct,
                          warmup + cfg.latency_count, block.control);
    });
    Child publisher = spawn_child("publisher", cpus.initiator_cpu, cpus.shared_cpu,
                                  block.control.second_error, [&] {
      run_publisher_side(scratch.channel, cfg, block.control, block.clock);
    });
    failure = wait_for_children(subscriber, block.control.first_error, publisher,
                                block.control.second_error, cfg.timeout_s);
  } catch (const std::exception& e) {
    failure = e.what();
  }
  if (!failure.empty()) {
    throw std::runtime_error(fmt::format("publisher cost round ({} journal): {}",
                                         with_journal ? "with" : "without", failure));
  }
  return PublisherCostRound{block.control.latency, block.clock.text};
}

}  // namespace shmbus::bench
