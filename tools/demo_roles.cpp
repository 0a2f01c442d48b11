#include "tools/demo_roles.hpp"

#include <chrono>
#include <thread>

#include <fmt/format.h>

#include "shmbus/journaler.hpp"
#include "shmbus/journal_reader.hpp"
#include "shmbus/shmbus.hpp"
#include "tools/demo_payload.hpp"
#include "tools/pacer.hpp"
#include "tools/signals.hpp"

namespace shmbus::tools {
namespace {

constexpr auto kPublishTimeout = std::chrono::seconds(5);
constexpr auto kIdleSlice = std::chrono::milliseconds(100);
// A sink that has seen nothing for this long after every source exited stops waiting.
constexpr std::int64_t kGiveUpIdleNs = 1'000'000'000;

bool told_to_stop(const DemoBoard& board) {
  // relaxed: a flag polled in a loop; nothing else is published through it.
  return stop_requested() || board.stop.load(std::memory_order_relaxed) != 0;
}

int publish_demo_messages(const DemoConfig& cfg, DemoBoard& board, RoleReport& me) {
  auto pub = Publisher::open(cfg.channel);
  if (!pub) {
    fmt::print(stderr, "shmbus demo: publisher: {}\n", pub.error().message);
    return 1;
  }
  me.state.store(RoleState::ready, std::memory_order_relaxed);  // relaxed: progress display only
  // Pace once a millisecond rather than between every two messages: the demo shares its CPUs.
  const Pacer pacer(cfg.rate, static_cast<std::uint64_t>(cfg.rate / 1000) + 1);
  for (std::uint64_t counter = 1; counter <= cfg.messages; ++counter) {
    if (told_to_stop(board)) return 1;
    while (!pacer.wait_turn(counter - 1)) {  // false: a signal interrupted the sleep
      if (told_to_stop(board)) return 1;
    }
    Claim claim;
    PublishStatus st = pub->claim(demo_payload_size(counter), claim, kPublishTimeout);
    if (st == PublishStatus::ok) {
      fill_demo_payload(claim.span(), counter);
      st = pub->commit(claim);
    }
    if (st != PublishStatus::ok) {
      fmt::print(stderr, "shmbus demo: publisher: message {}: {}\n", counter, to_string(st));
      return 1;
    }
    // The demo's channel is fresh and has one producer: the counter is the sequence.
    if (claim.sequence() != counter) me.order_errors.fetch_add(1, std::memory_order_relaxed);
    // relaxed: statistics (see RoleReport).
    me.count.store(counter, std::memory_order_relaxed);
    me.last_sequence.store(claim.sequence(), std::memory_order_relaxed);  // relaxed: statistic
  }
  return 0;
}

// Receives until the last message, checking each one. With pause_every > 0 it sleeps `pause`
// after every pause_every messages, so that (with the drop policy) the producer laps it.
int receive_demo_messages(const DemoConfig& cfg, DemoBoard& board, RoleReport& me, Policy policy,
                          std::uint64_t pause_every, std::chrono::microseconds pause) {
  SubscriberOptions so;
  so.policy = policy;
  so.start = StartFrom::earliest;
  // Named after its policy, so that `shmbus stat` (and the demo's own cross-check) can tell the
  // three apart; each records its end-to-end latency for stat's percentiles.
  so.name = to_string(policy);
  so.latency_histogram = true;
  auto sub = Subscriber::open(cfg.channel, so);
  // A spill subscriber needs the journaler attached, which starts alongside: give it a moment.
  for (int attempt = 0; !sub && policy == Policy::spill && attempt < 500; ++attempt) {
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
    sub = Subscriber::open(cfg.channel, so);
  }
  if (!sub) {
    fmt::print(stderr, "shmbus demo: {} subscriber: {}\n", to_string(policy), sub.error().message);
    return 1;
  }
  me.state.store(RoleState::ready, std::memory_order_relaxed);  // relaxed: progress display only

  std::uint64_t received = 0, lost = 0, last = 0, bad = 0, order_errors = 0;
  auto check = [&](const Message& m) noexcept {
    lost += m.lost_before;
    if (m.sequence <= last || m.sequence != last + 1 + m.lost_before) ++order_errors;
    if (!demo_payload_ok(m.payload, m.sequence)) ++bad;
    if (m.sequence > last) last = m.sequence;
    ++received;
  };
  auto report = [&] {
    // relaxed: statistics (see RoleReport).
    me.count.store(received, std::memory_order_relaxed);
    me.lost.store(lost, std::memory_order_relaxed);  // relaxed: statistic
    me.last_sequence.store(last, std::memory_order_relaxed);  // relaxed: statistic
    me.bad_payloads.store(bad, std::memory_order_relaxed);  // relaxed: statistic
    me.order_errors.store(order_errors, std::memory_order_relaxed);  // relaxed: statistic
    me.spilled.store(sub->spilled(), std::memory_order_relaxed);  // relaxed: statistic
  };

  bool corrupt = false;
  std::uint64_t next_pause = pause_every;
  std::int64_t idle_since = monotonic_now_ns();
  while (last < cfg.messages && !told_to_stop(board)) {
    const std::size_t n = sub->poll(check);
    report();
    if (sub->status() == PollStatus::evicted) {
      fmt::print(stderr, "shmbus demo: {} subscriber was evicted\n", to_string(policy));
      return 1;
    }
    if (sub->status() == PollStatus::corrupt && !corrupt) {
      corrupt = true;
      fmt::print(stderr, "shmbus demo: {} subscriber: {}\n", to_string(policy), sub->last_error());
    }
    if (pause_every > 0 && received >= next_pause) {
      std::this_thread::sleep_for(pause);
      next_pause = received - received % pause_every + pause_every;
    }
    const std::int64_t now = monotonic_now_ns();
    if (n > 0) {
      idle_since = now;
    } else if (!sub->wait(kIdleSlice) &&
               board.sources_exited.load(std::memory_order_relaxed) != 0 &&  // relaxed: statistic
               now - idle_since > kGiveUpIdleNs) {
      break;  // relaxed above: a flag; the verdict will say what is missing
    }
  }
  report();
  return corrupt || last < cfg.messages ? 1 : 0;
}

std::string judge_publisher(const RoleReport& r, const DemoTotals& totals) {
  if (r.count.load() != totals.expected) {
    return fmt::format("published {} of {}", r.count.load(), totals.expected);
  }
  if (r.order_errors.load() != 0) return "sequences did not match the counter";
  return {};
}

std::string judge_common(const RoleReport& r) {
  if (r.bad_payloads.load() != 0) return fmt::format("{} bad payloads", r.bad_payloads.load());
  if (r.order_errors.load() != 0) return fmt::format("{} order errors", r.order_errors.load());
  return {};
}

int run_block_subscriber(const DemoConfig& cfg, DemoBoard& board, RoleReport& me) {
  return receive_demo_messages(cfg, board, me, Policy::block, 0, {});
}

// Lossless: every message once, in order, intact.
std::string judge_block_subscriber(const RoleReport& r, const DemoTotals& totals) {
  if (auto why = judge_common(r); !why.empty()) return why;
  if (r.lost.load() != 0) return fmt::format("lost {}", r.lost.load());
  if (r.count.load() != totals.published) {
    return fmt::format("received {} of {}", r.count.load(), totals.published);
  }
  return {};
}

int run_drop_subscriber(const DemoConfig& cfg, DemoBoard& board, RoleReport& me) {
  return receive_demo_messages(cfg, board, me, Policy::drop, kDropPauseEvery, kDropPause);
}

// Lossy but never silent: every message either received intact or counted as lost.
std::string judge_drop_subscriber(const RoleReport& r, const DemoTotals& totals) {
  if (auto why = judge_common(r); !why.empty()) return why;
  if (r.count.load() + r.lost.load() != totals.published) {
    return fmt::format("received + lost = {}, published {}", r.count.load() + r.lost.load(),
                       totals.published);
  }
  return {};
}

int run_spill_subscriber(const DemoConfig& cfg, DemoBoard& board, RoleReport& me) {
  return receive_demo_messages(cfg, board, me, Policy::spill, kDropPauseEvery, kDropPause);
}

// Reads the whole journal back: sequences 1, 2, 3... each with the demo payload of its counter.
void check_journal(const DemoConfig& cfg, std::uint64_t& bad, std::uint64_t& order_errors) {
  auto reader = journal::JournalReader::open(cfg.journal_dir);
  if (!reader || !reader->seek_sequence(1)) {
    ++order_errors;
    return;
  }
  journal::JournalRecord r;
  std::uint64_t expected = 1;
  journal::ReadStatus st;
  while ((st = reader->next(r)) == journal::ReadStatus::record) {
    if (r.type != journal::RecordType::data || r.sequence != expected) ++order_errors;
    if (r.type == journal::RecordType::data && !demo_payload_ok(r.payload, r.sequence)) ++bad;
    expected = r.next_sequence();
  }
  if (st == journal::ReadStatus::damaged) {
    fmt::print(stderr, "shmbus demo: journal: {}\n", reader->last_error());
    ++bad;
  }
}

// The journaler: records every message, then reads its journal back and checks every record.
int run_journaler(const DemoConfig& cfg, DemoBoard& board, RoleReport& me) {
  JournalerOptions jo;
  jo.channel = cfg.channel;
  jo.writer.dir = cfg.journal_dir;
  jo.writer.fsync = journal::FsyncPolicy::interval;
  jo.writer.segment_bytes = 8 << 20;
  // The demo's ring holds about 2 ms of messages: nap and flush well within that.
  jo.idle_nap = std::chrono::microseconds(100);
  jo.flush_interval = std::chrono::microseconds(0);
  auto j = Journaler::open(jo);
  if (!j) {
    fmt::print(stderr, "shmbus demo: journaler: {}\n", j.error().message);
    return 1;
  }
  me.state.store(RoleState::ready, std::memory_order_relaxed);  // relaxed: progress display only
  auto report = [&] {
    const JournalerStats st = j->stats();
    // relaxed: statistics (see RoleReport).
    me.count.store(st.recorded, std::memory_order_relaxed);
    me.lost.store(st.lost, std::memory_order_relaxed);  // relaxed: statistic
    me.last_sequence.store(st.written_sequence, std::memory_order_relaxed);  // relaxed: statistic
    me.durable.store(st.durable_sequence, std::memory_order_relaxed);  // relaxed: statistic
  };
  std::int64_t idle_since = monotonic_now_ns();
  while (j->stats().written_sequence < cfg.messages && !told_to_stop(board)) {
    auto stepped = j->step(std::chrono::milliseconds(1));
    if (!stepped) {
      fmt::print(stderr, "shmbus demo: journaler: {}\n", stepped.error().message);
      return 1;
    }
    report();
    const std::int64_t now = monotonic_now_ns();
    if (*stepped > 0) {
      idle_since = now;
    } else if (board.sources_exited.load(std::memory_order_relaxed) != 0 &&  // relaxed: a flag
               now - idle_since > kGiveUpIdleNs) {
      break;
    }
  }
  if (auto drained = j->drain(); !drained) {
    fmt::print(stderr, "shmbus demo: journaler: {}\n", drained.error().message);
    return 1;
  }
  report();
  std::uint64_t bad = 0, order_errors = 0;
  check_journal(cfg, bad, order_errors);
  me.bad_payloads.store(bad, std::memory_order_relaxed);  // relaxed: statistic
  me.order_errors.store(order_errors, std::memory_order_relaxed);  // relaxed: statistic
  return j->stats().written_sequence < cfg.messages ? 1 : 0;
}

}  // namespace

std::vector<DemoRole> demo_roles() {
  std::vector<DemoRole> roles;
  roles.push_back(DemoRole{"journaler", RoleKind::sink, "block",
                           "records every message to segment files (io_uring), reads them back",
                           run_journaler, judge_block_subscriber});
  roles.push_back(DemoRole{"block", RoleKind::sink, "block", "lossless: gates the publisher",
                           run_block_subscriber, judge_block_subscriber});
  roles.push_back(DemoRole{"drop", RoleKind::sink, "drop",
                           fmt::format("pauses {} ms every {} messages, gets lapped, counts what "
                                       "it lost",
                                       kDropPause.count(), kDropPauseEvery),
                           run_drop_subscriber, judge_drop_subscriber});
  roles.push_back(DemoRole{"spill", RoleKind::sink, "spill",
                           fmt::format("pauses like drop, but catches up from the journal: "
                                       "loses nothing"),
                           run_spill_subscriber, judge_block_subscriber});
  roles.push_back(DemoRole{"publisher", RoleKind::source, "-",
                           "sequence and checksum in every message", publish_demo_messages,
                           judge_publisher});
  return roles;
}

}  // namespace shmbus::tools
