// The bridge object (ipc/bridge_segment.hpp): what a bridge writes is what read_bridge_stats reads,
// the seqlocked records are never seen torn, a live owner fences a second bridge while a dead
// one's object is taken over (its counters and positions kept), garbage in the object is reported
// as a problem and never crashes the reader, and the object goes with its channel.
#include <signal.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstring>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include <fmt/format.h>
#include <gtest/gtest.h>

#include "ipc/bridge_segment.hpp"
#include "shmbus/bridge_stats.hpp"
#include "shmbus/shmbus.hpp"
#include "shmbus/stats.hpp"
#include "tests/support/inprocess.hpp"
#include "tests/support/process.hpp"

namespace shmbus {
namespace {

using namespace std::chrono_literals;
using namespace shmbus::test;
using detail::BridgeHeader;
using detail::BridgeRole;
using detail::BridgeSegment;
using detail::BridgeSettings;
using detail::BridgeState;

BridgeSettings out_settings(std::string stream = "ORDERS") {
  return BridgeSettings{BridgeRole::out, std::move(stream), "shmbus.orders",
                        "nats://127.0.0.1:4222", "hostA"};
}

BridgeSettings in_settings(std::string stream = "ORDERS") {
  return BridgeSettings{BridgeRole::in, std::move(stream), "shmbus.orders",
                        "nats://10.0.0.2:4222", "hostB"};
}

struct Fixture {
  explicit Fixture(const char* tag) : ch(unique_channel(tag)) {
    auto p = Publisher::open(ch.name(), small_options());
    if (!p) throw std::runtime_error(p.error().message);
    pub.emplace(std::move(*p));
  }
  const ChannelInfo& info() const { return pub->info(); }
  std::string object(BridgeRole role, const std::string& stream) const {
    return detail::bridge_object_name(info().name, info().incarnation, role, stream);
  }
  BridgeStats only_stats() const {
    auto all = read_bridge_stats(ch.name());
    if (!all) throw std::runtime_error(all.error().message);
    if (all->size() != 1) throw std::runtime_error("expected one bridge");
    return all->front();
  }
  ChannelGuard ch;
  std::optional<Publisher> pub;
};

BridgeHeader& header_of(FileMapping& m) { return *reinterpret_cast<BridgeHeader*>(m.data()); }

TEST(BridgeSegment, WhatTheBridgeWritesIsWhatStatsRead) {
  Fixture f("brlayout");
  auto bridge = BridgeSegment::open_owned(f.info(), out_settings());
  ASSERT_TRUE(bridge) << bridge.error().message;
  EXPECT_EQ(bridge->name(), "shmbus." + f.ch.name() + ".ctl." +
                                fmt::format("{:016x}", f.info().incarnation) +
                                ".bridge-out.ORDERS");
  detail::BridgeCounters& c = bridge->counters();
  // relaxed (all): the test is the only thread.
  c.published_or_applied.store(1001, std::memory_order_relaxed);
  c.acked_through.store(1000, std::memory_order_relaxed);  // relaxed: see above
  c.in_flight.store(17, std::memory_order_relaxed);        // relaxed: see above
  c.window.store(4096, std::memory_order_relaxed);         // relaxed: see above
  c.resends.store(3, std::memory_order_relaxed);           // relaxed: see above
  c.recoveries.store(2, std::memory_order_relaxed);        // relaxed: see above
  c.gaps.store(1, std::memory_order_relaxed);              // relaxed: see above
  c.gap_sequences.store(250, std::memory_order_relaxed);   // relaxed: see above
  c.lag_records.store(17, std::memory_order_relaxed);      // relaxed: see above
  c.lag_ns.store(123456, std::memory_order_relaxed);       // relaxed: see above
  c.head_sequence.store(1017, std::memory_order_relaxed);  // relaxed: see above
  bridge->set_state(BridgeState::holding_back, "insufficient resources (10023)");

  const BridgeStats s = f.only_stats();
  EXPECT_EQ(s.problem, "");
  EXPECT_EQ(s.role, "out");
  EXPECT_EQ(s.name, "ORDERS");
  EXPECT_EQ(s.stream, "ORDERS");
  EXPECT_EQ(s.subject, "shmbus.orders");
  EXPECT_EQ(s.url, "nats://127.0.0.1:4222");
  EXPECT_EQ(s.host, "hostA");
  EXPECT_EQ(s.state, "holding back");
  EXPECT_EQ(s.last_error, "insufficient resources (10023)");
  EXPECT_EQ(s.pid, static_cast<std::int32_t>(::getpid()));
  EXPECT_TRUE(s.alive);
  EXPECT_GT(s.heartbeat_ns, 0);
  EXPECT_EQ(s.published, 1001u);
  EXPECT_EQ(s.applied, 0u);
  EXPECT_EQ(s.acked_through, 1000u);
  EXPECT_EQ(s.in_flight, 17u);
  EXPECT_EQ(s.window, 4096u);
  EXPECT_EQ(s.resends, 3u);
  EXPECT_EQ(s.recoveries, 2u);
  EXPECT_EQ(s.gaps, 1u);
  EXPECT_EQ(s.gap_sequences, 250u);
  EXPECT_EQ(s.lag_records, 17u);
  EXPECT_EQ(s.lag_ns, 123456u);
  EXPECT_EQ(s.head_sequence, 1017u);

  // A clean close: stopped, the last error kept, nobody owns it.
  bridge = tl::unexpected(Error{ErrorCode::busy, "closed"});
  const BridgeStats after = f.only_stats();
  EXPECT_EQ(after.problem, "");
  EXPECT_EQ(after.state, "stopped");
  EXPECT_EQ(after.last_error, "insufficient resources (10023)");
  EXPECT_FALSE(after.alive);
  EXPECT_EQ(after.pid, 0);
}

TEST(BridgeSegment, BridgeInPositionsRoundTripAndAlternateCopies) {
  Fixture f("brpos");
  auto bridge = BridgeSegment::open_owned(f.info(), in_settings());
  ASSERT_TRUE(bridge) << bridge.error().message;
  EXPECT_EQ(bridge->applied(), BridgeSegment::InPosition{});
  EXPECT_EQ(bridge->intent(), BridgeSegment::InPosition{});
  for (std::uint64_t i = 1; i <= 5; ++i) {
    const BridgeSegment::InPosition intent{100 + i, 77, 0xabcdef, 10 * i, i};
    bridge->set_intent(intent);
    EXPECT_EQ(bridge->intent(), intent);
    EXPECT_EQ(bridge->applied().local_seq, i - 1);  // not yet applied
    bridge->set_applied(intent);
    EXPECT_EQ(bridge->applied(), intent);
  }
  // Both copies were written, the newest wins.
  auto mapping = FileMapping::open(detail::shm_path(bridge->name()), false);
  ASSERT_TRUE(mapping);
  const BridgeHeader& h = header_of(*mapping);
  // relaxed: the test is the only thread.
  EXPECT_EQ(h.applied.copy[0].words[0].load(std::memory_order_relaxed) +
                h.applied.copy[1].words[0].load(std::memory_order_relaxed),  // relaxed: above
            4u + 5u);
  const BridgeStats s = f.only_stats();
  EXPECT_EQ(s.role, "in");
  EXPECT_EQ(s.problem, "");
  EXPECT_EQ(s.state, "connecting");
}

// A writer that dies between the odd and the even store leaves that copy torn: readers take the
// other one, and the next owner marks the torn copy invalid before it writes.
TEST(BridgeSegment, APositionTornByADeadWriterFallsBackToThePreviousCopy) {
  Fixture f("brtorn");
  BridgeSegment::InPosition first{5, 1, 2, 3, 4};
  std::string name;
  {
    auto bridge = BridgeSegment::open_owned(f.info(), in_settings());
    ASSERT_TRUE(bridge) << bridge.error().message;
    name = bridge->name();
    bridge->set_applied(first);  // version 1: copy 1
    auto mapping = FileMapping::open(detail::shm_path(name), true);
    ASSERT_TRUE(mapping);
    auto& torn = header_of(*mapping).applied.copy[0];  // where version 2 would go
    // relaxed (all): simulating a writer stopped mid-write; the test is the only thread.
    torn.seq.store(1, std::memory_order_relaxed);
    torn.words[0].store(2, std::memory_order_relaxed);   // relaxed: see above
    torn.words[1].store(99, std::memory_order_relaxed);  // relaxed: see above
    EXPECT_EQ(bridge->applied(), first);
  }
  auto again = BridgeSegment::open_owned(f.info(), in_settings());
  ASSERT_TRUE(again) << again.error().message;
  EXPECT_EQ(again->applied(), first);
  const BridgeSegment::InPosition second{6, 1, 2, 4, 5};
  again->set_applied(second);
  EXPECT_EQ(again->applied(), second);
}

// Readers racing the writer never see a mixed record: every text the writer stores names its own
// state, every position has all fields equal.
TEST(BridgeSegment, SeqlockedRecordsAreNeverSeenTorn) {
  Fixture f("brseqlock");
  auto bridge = BridgeSegment::open_owned(f.info(), in_settings());
  ASSERT_TRUE(bridge) << bridge.error().message;
  auto mapping = FileMapping::open(detail::shm_path(bridge->name()), false);
  ASSERT_TRUE(mapping);
  const BridgeHeader& h = header_of(*mapping);
  const std::string long_text(detail::kBridgeTextSize, 'r');
  const std::string short_text(40, 'h');
  std::atomic<bool> stop{false};
  std::thread writer([&] {
    for (std::uint64_t i = 1; !stop.load(std::memory_order_relaxed); ++i) {  // relaxed: a flag
      if (i % 2 == 0) {
        bridge->set_state(BridgeState::running, long_text);
      } else {
        bridge->set_state(BridgeState::holding_back, short_text);
      }
      bridge->set_applied({i, i, i, i, i});
    }
  });
  std::uint64_t reads = 0;
  std::uint64_t last_local = 0;
  const auto deadline = std::chrono::steady_clock::now() + 200ms;
  while (std::chrono::steady_clock::now() < deadline) {
    std::uint64_t state = 0;
    std::string text;
    const std::string why = detail::read_bridge_text(h.text, state, text);
    if (why.empty()) {
      if (state == static_cast<std::uint64_t>(BridgeState::running)) {
        ASSERT_EQ(text, long_text);
      } else {
        ASSERT_EQ(state, static_cast<std::uint64_t>(BridgeState::holding_back));
        ASSERT_EQ(text, short_text);
      }
      ++reads;
    }
    const detail::BridgeInPosition p = detail::read_bridge_position(h.applied);
    ASSERT_EQ(p.stream_seq, p.local_seq);
    ASSERT_EQ(p.origin_seq, p.local_seq);
    ASSERT_EQ(p.origin_incarnation, p.local_seq);
    ASSERT_EQ(p.stream_created_ns, p.local_seq);
    ASSERT_GE(p.local_seq, last_local);  // never older than what was already seen
    last_local = p.local_seq;
  }
  stop.store(true, std::memory_order_relaxed);  // relaxed: join orders the rest
  writer.join();
  EXPECT_GT(reads, 0u);
  EXPECT_GT(last_local, 0u);
}

TEST(BridgeSegment, ALiveOwnerFencesASecondBridge) {
  Fixture f("brfence");
  auto bridge = BridgeSegment::open_owned(f.info(), out_settings());
  ASSERT_TRUE(bridge) << bridge.error().message;
  auto second = BridgeSegment::open_owned(f.info(), out_settings());
  ASSERT_FALSE(second);
  EXPECT_EQ(second.error().code, ErrorCode::busy);
  EXPECT_NE(second.error().message.find("another bridge"), std::string::npos)
      << second.error().message;
  // Another role or another stream is another bridge.
  auto in = BridgeSegment::open_owned(f.info(), in_settings());
  EXPECT_TRUE(in) << in.error().message;
  auto other = BridgeSegment::open_owned(f.info(), out_settings("TRADES"));
  EXPECT_TRUE(other) << other.error().message;
  auto all = read_bridge_stats(f.ch.name());
  ASSERT_TRUE(all);
  ASSERT_EQ(all->size(), 3u);
  EXPECT_EQ((*all)[0].role, "in");
  EXPECT_EQ((*all)[1].name, "ORDERS");
  EXPECT_EQ((*all)[2].name, "TRADES");
}

TEST(BridgeSegment, BadSettingsAreRefusedByName) {
  Fixture f("brbad");
  auto dotted = BridgeSegment::open_owned(f.info(), out_settings("A.B"));
  ASSERT_FALSE(dotted);
  EXPECT_EQ(dotted.error().code, ErrorCode::invalid_argument);
  EXPECT_NE(dotted.error().message.find("A.B"), std::string::npos);
  EXPECT_FALSE(BridgeSegment::open_owned(f.info(), out_settings("")));
  BridgeSettings long_host = out_settings();
  long_host.host.assign(detail::kBridgeHostSize, 'h');
  EXPECT_FALSE(BridgeSegment::open_owned(f.info(), long_host));
}

// A bridge process that opens the object and dies (kill -9): the next bridge takes it over with
// its counters and positions; while the first one lives, it is refused.
TEST(BridgeSegment, ADeadOwnersObjectIsTakenOverWithItsPositions) {
  Fixture f("brdead");
  int ready[2];
  ASSERT_EQ(::pipe(ready), 0);
  const pid_t child = ::fork();
  ASSERT_GE(child, 0);
  if (child == 0) {
    ::close(ready[0]);
    auto bridge = BridgeSegment::open_owned(f.info(), in_settings());
    if (!bridge) ::_exit(2);
    // relaxed: read after this process died.
    bridge->counters().published_or_applied.store(42, std::memory_order_relaxed);
    bridge->set_applied({7, 8, 9, 10, 11});
    bridge->set_intent({7, 8, 9, 11, 12});
    bridge->set_state(BridgeState::running);
    const char one = 1;
    if (::write(ready[1], &one, 1) != 1) ::_exit(3);
    ::pause();
    ::_exit(0);
  }
  ::close(ready[1]);
  char got = 0;
  ASSERT_EQ(::read(ready[0], &got, 1), 1);
  ::close(ready[0]);

  auto refused = BridgeSegment::open_owned(f.info(), in_settings());
  ASSERT_FALSE(refused);
  EXPECT_EQ(refused.error().code, ErrorCode::busy);
  EXPECT_NE(refused.error().message.find(std::to_string(child)), std::string::npos)
      << refused.error().message;
  const BridgeStats alive = f.only_stats();
  EXPECT_TRUE(alive.alive);
  EXPECT_EQ(alive.pid, child);
  EXPECT_EQ(alive.state, "running");

  ASSERT_EQ(::kill(child, SIGKILL), 0);
  int status = 0;
  ASSERT_EQ(::waitpid(child, &status, 0), child);
  ASSERT_TRUE(WIFSIGNALED(status));
  const BridgeStats dead = f.only_stats();
  EXPECT_FALSE(dead.alive);
  EXPECT_EQ(dead.pid, child);
  EXPECT_EQ(dead.applied, 42u);

  auto taken = BridgeSegment::open_owned(f.info(), in_settings());
  ASSERT_TRUE(taken) << taken.error().message;
  EXPECT_EQ(taken->applied(), (BridgeSegment::InPosition{7, 8, 9, 10, 11}));
  EXPECT_EQ(taken->intent(), (BridgeSegment::InPosition{7, 8, 9, 11, 12}));
  // relaxed: the test is the only thread.
  EXPECT_EQ(taken->counters().published_or_applied.load(std::memory_order_relaxed), 42u);
  const BridgeStats ours = f.only_stats();
  EXPECT_TRUE(ours.alive);
  EXPECT_EQ(ours.pid, static_cast<std::int32_t>(::getpid()));
  EXPECT_EQ(ours.state, "connecting");
}

// Random bytes over the whole object, then one bad value at a time in an otherwise good object:
// each is a `problem`, never a crash, and the object's name still says which bridge it is.
TEST(BridgeSegment, GarbageIsReportedAsAProblem) {
  Fixture f("brgarbage");
  const std::string object = f.object(BridgeRole::out, "ORDERS");
  {
    auto bridge = BridgeSegment::open_owned(f.info(), out_settings());
    ASSERT_TRUE(bridge) << bridge.error().message;
  }
  std::mt19937_64 random(12345);
  for (int round = 0; round < 20; ++round) {
    auto mapping = FileMapping::open(detail::shm_path(object), true);
    ASSERT_TRUE(mapping);
    for (std::size_t i = 0; i < mapping->size(); i += 8) {
      const std::uint64_t word = random();
      std::memcpy(mapping->data() + i, &word, 8);
    }
    const BridgeStats s = f.only_stats();
    EXPECT_EQ(s.role, "out");
    EXPECT_EQ(s.name, "ORDERS");
    EXPECT_NE(s.problem, "") << "round " << round;
  }
  detail::ShmSegment::remove(object);

  struct Damage {
    const char* what;
    void (*apply)(BridgeHeader&);
    const char* expect;
  };
  const Damage damages[] = {
      {"magic", [](BridgeHeader& h) { h.magic = 1; }, "bad magic"},
      {"version", [](BridgeHeader& h) { h.version = 99; }, "layout version"},
      {"incarnation", [](BridgeHeader& h) { h.incarnation ^= 1; }, "another incarnation"},
      {"size", [](BridgeHeader& h) { h.segment_size = 1 << 30; }, "declares"},
      {"role", [](BridgeHeader& h) { h.role = 7; }, "role 7"},
      {"role swapped", [](BridgeHeader& h) { h.role = 2; }, "named for role 'out'"},
      {"stream", [](BridgeHeader& h) { std::memset(h.stream, '.', sizeof h.stream); },
       "no valid stream"},
      {"stream renamed", [](BridgeHeader& h) { h.stream[0] = 'X'; }, "declares 'XRDERS'"},
      {"ready", [](BridgeHeader& h) { h.ready.store(0, std::memory_order_relaxed); },  // relaxed:
       "not ready"},                                                   // single thread
      {"state",
       [](BridgeHeader& h) {
         std::uint64_t words[detail::kBridgeTextWords] = {99};
         detail::seqlock_write(h.text, words);
       },
       "state 99"},
      {"error length",
       [](BridgeHeader& h) {
         std::uint64_t words[detail::kBridgeTextWords] = {1 | (std::uint64_t{5000} << 8)};
         detail::seqlock_write(h.text, words);
       },
       "5000 bytes"},
      {"error bytes",
       [](BridgeHeader& h) {
         std::uint64_t words[detail::kBridgeTextWords] = {1 | (std::uint64_t{8} << 8),
                                                          0x0102030405060708ULL};
         detail::seqlock_write(h.text, words);
       },
       "not printable"},
      {"text writer died",
       [](BridgeHeader& h) { h.text.seq.store(7, std::memory_order_relaxed); },  // relaxed: 1 thread
       "being changed"},
      {"settings lengths",
       [](BridgeHeader& h) {
         std::uint64_t words[detail::kBridgeSettingsWords] = {0xffff};
         detail::seqlock_write(h.settings, words);
       },
       "settings declare"},
      {"in flight",
       [](BridgeHeader& h) {
         h.counters.window.store(4, std::memory_order_relaxed);      // relaxed: 1 thread
         h.counters.in_flight.store(5, std::memory_order_relaxed);   // relaxed: 1 thread
       },
       "exceed its window"},
      {"gaps", [](BridgeHeader& h) { h.counters.gaps.store(3, std::memory_order_relaxed); },
       "3 gaps"},  // relaxed: 1 thread
  };
  for (const Damage& d : damages) {
    {
      auto bridge = BridgeSegment::open_owned(f.info(), out_settings());
      ASSERT_TRUE(bridge) << d.what << ": " << bridge.error().message;
    }
    auto mapping = FileMapping::open(detail::shm_path(object), true);
    ASSERT_TRUE(mapping);
    d.apply(header_of(*mapping));
    const BridgeStats s = f.only_stats();
    EXPECT_NE(s.problem.find(d.expect), std::string::npos)
        << d.what << ": problem '" << s.problem << "'";
    EXPECT_EQ(s.name, "ORDERS") << d.what;
    detail::ShmSegment::remove(object);
  }

  // A too-small object and a name no bridge has, under the channel's bridge prefix.
  const std::string prefix = detail::bridge_object_prefix(f.info().name, f.info().incarnation);
  {
    auto small = detail::ShmSegment::create(prefix + "in.TINY", 16, 0600);
    ASSERT_TRUE(small) << small.error().message;
    auto odd = detail::ShmSegment::create(prefix + "sideways.X", 4096, 0600);
    ASSERT_TRUE(odd) << odd.error().message;
  }
  auto all = read_bridge_stats(f.ch.name());
  ASSERT_TRUE(all) << all.error().message;
  ASSERT_EQ(all->size(), 2u);
  EXPECT_EQ((*all)[0].name, "TINY");
  EXPECT_NE((*all)[0].problem.find("too small"), std::string::npos) << (*all)[0].problem;
  EXPECT_NE((*all)[1].problem.find("not a bridge object"), std::string::npos)
      << (*all)[1].problem;
  auto refused = BridgeSegment::open_owned(f.info(), in_settings("TINY"));
  ASSERT_FALSE(refused);
  EXPECT_EQ(refused.error().code, ErrorCode::corrupt);
}

TEST(BridgeSegment, RemovedWithItsChannel) {
  Fixture f("brremove");
  std::string out_name, in_name;
  {
    auto out = BridgeSegment::open_owned(f.info(), out_settings());
    ASSERT_TRUE(out) << out.error().message;
    auto in = BridgeSegment::open_owned(f.info(), in_settings());
    ASSERT_TRUE(in) << in.error().message;
    out_name = out->name();
    in_name = in->name();
  }
  f.pub.reset();
  ASSERT_TRUE(detail::ShmSegment::exists(out_name));
  auto report = unlink_channel(f.ch.name());
  ASSERT_TRUE(report) << report.error().message;
  EXPECT_TRUE(report->complete());
  EXPECT_TRUE(std::any_of(report->objects.begin(), report->objects.end(),
                          [&](const RemovedObject& o) { return o.object == out_name; }));
  EXPECT_FALSE(detail::ShmSegment::exists(out_name));
  EXPECT_FALSE(detail::ShmSegment::exists(in_name));
}

// gc: a bridge object whose channel is gone (or was re-created) is a leftover, and removable.
TEST(BridgeSegment, AnOrphanedBridgeObjectIsALeftover) {
  Fixture f("brleft");
  std::string name;
  {
    auto out = BridgeSegment::open_owned(f.info(), out_settings());
    ASSERT_TRUE(out) << out.error().message;
    name = out->name();
  }
  // Kept aside while the channel goes, then put back as if a removal had missed it.
  const std::string aside = "shmbus.test-aside-" + std::to_string(::getpid());
  ASSERT_TRUE(detail::ShmSegment::link(name, aside).value());
  f.pub.reset();
  ASSERT_TRUE(remove_channel(f.ch.name()));
  ASSERT_TRUE(detail::ShmSegment::link(aside, name).value());
  detail::ShmSegment::remove(aside);
  // Leftovers younger than a minute are not reported (a creation may be under way): age it.
  const std::string path = detail::shm_path(name);
  const timespec old[2] = {{0, UTIME_OMIT}, {::time(nullptr) - 3600, 0}};
  ASSERT_EQ(::utimensat(AT_FDCWD, path.c_str(), old, 0), 0);
  const auto leftovers = list_leftovers();
  const auto it = std::find_if(leftovers.begin(), leftovers.end(),
                               [&](const ShmLeftover& l) { return l.object == name; });
  ASSERT_NE(it, leftovers.end());
  EXPECT_NE(it->why.find("bridge object"), std::string::npos) << it->why;
  ASSERT_TRUE(remove_leftover(name));
  EXPECT_FALSE(detail::ShmSegment::exists(name));
}

}  // namespace
}  // namespace shmbus
