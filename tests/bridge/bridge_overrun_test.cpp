// The source ring laps what bridge out has not yet got into the stream.
//
// With a journal (`shmbus record`) and bridge out's subscriber on the spill policy, the server
// is down while the producer laps the ring several times: once it is back, bridge out reads the
// lapped records from the journal and the destination gets every record, in order.
//
// Without a journal the lapped records are gone: bridge out is killed, evicted from the ring
// (--liveness-timeout 200) and the producer laps it; restarted, it publishes one GAP record for
// exactly the missing range, from the stream's last sequence + 1 to the ring's earliest retained
// - 1, and the destination's subscriber sees exactly one loss (lost_before) of that size, at
// that place, with the destination's sequences still equal to the source's.
#include <gtest/gtest.h>

#include "tests/bridge/bridge_testing.hpp"

namespace shmbus::test::bridge {
namespace {

constexpr std::uint64_t kRing = 1 << 20;  // about 10,900 records of 64 bytes

// The sequence of the oldest record `channel`'s ring still holds.
std::uint64_t earliest_retained(const std::string& channel) {
  SubscriberOptions o;
  o.policy = Policy::drop;
  o.start = StartFrom::earliest;
  auto sub = Subscriber::open(channel, o);
  if (!sub) throw std::runtime_error("cannot subscribe to " + channel + ": " + sub.error().message);
  std::uint64_t first = 0;
  const auto end = Clock::now() + 5s;
  while (first == 0 && Clock::now() < end) {
    sub->poll([&](const Message& m) { if (first == 0) first = m.sequence; }, 1);
  }
  return first;
}

TEST(BridgeOverrun, WithSpillAndAJournalTheLappedRecordsComeFromTheJournal) {
  NatsServer server;
  TempDir logs{"bridge-overrun"};
  TempDir journal{"bridge-overrun-journal"};
  ChannelGuard a{unique_channel("ovr-a")};
  ChannelGuard b{unique_channel("ovr-b")};
  const BridgePair pair{a.name(), b.name(), "OVERRUN"};
  create_channel(a.name(), kRing);
  Child journaler = Child::spawn({SHMBUS_CLI, "record", a.name(), "--dir", journal.path(),
                                  "--fsync", "never", "--quiet"});
  ASSERT_TRUE(eventually([&] { return channel_stats(a.name())["journal"].is_object(); }, 10s))
      << "the journaler did not attach: " << channel_stats(a.name()).dump();
  BridgeProcess out = bridge_out(server, pair, logs, {"--policy", "spill", "--ack-timeout", "500"});
  out.start();
  BridgeProcess in = bridge_in(server, pair, logs,
                               {"--capacity", std::to_string(4 << 20), "--ack-wait", "2000"});
  in.start();
  const SizeRule sizes{13, 64, 64};
  Destination dest(b.name(), sizes);
  auto context = [&] {
    return dest.summary() + "\nbridge out:\n" + out.log() + "bridge in:\n" + in.log();
  };

  constexpr std::uint64_t kBefore = 5000;
  const std::uint64_t lapping = scaled_records(60'000, 40'000);  // several laps of kRing
  Child first = produce(a.name(), kBefore, sizes);
  ASSERT_TRUE(dest.wait_for(kBefore)) << context();
  ASSERT_TRUE(finish_peer(first).status.ok());

  // The server goes down; the producer laps the ring (only the journaler gates it).
  server.kill9();
  Child second = produce(a.name(), lapping, sizes, kBefore);
  const PeerOutcome p = finish_peer(second);
  ASSERT_TRUE(p.status.ok()) << p.output;
  ASSERT_GT(earliest_retained(a.name()), kBefore + 2 * 4096)
      << "the ring was not lapped past what bridge out could hold in its window";

  server.restart();
  ASSERT_TRUE(dest.wait_for(kBefore + lapping)) << context();
  EXPECT_EQ(dest.drain_for(300ms), 0u) << dest.summary();
  EXPECT_EQ(dest.error_count(), 0u) << dest.summary();
  EXPECT_EQ(dest.next_counter(), kBefore + lapping);
  EXPECT_EQ(dest.lost_total(), 0u) << dest.summary();
  EXPECT_EQ(dest.subscriber().next_sequence(), kBefore + lapping + 1);
  const nlohmann::json stats = bridge_stats(a.name(), "out");
  EXPECT_EQ(bridge_counter(stats, "gaps"), 0u) << stats.dump();

  EXPECT_TRUE(in.stop().ok()) << in.log();
  EXPECT_TRUE(out.stop().ok()) << out.log();
  ::kill(journaler.pid(), SIGTERM);
  EXPECT_TRUE(journaler.wait(10s).value_or(ExitStatus{}).ok()) << journaler.output();
}

TEST(BridgeOverrun, WithoutAJournalTheFarSideSeesExactlyOneGapOfTheLostRange) {
  NatsServer server;
  TempDir logs{"bridge-gap"};
  ChannelGuard a{unique_channel("gap-a")};
  ChannelGuard b{unique_channel("gap-b")};
  const BridgePair pair{a.name(), b.name(), "GAP"};
  create_channel(a.name(), kRing);
  BridgeProcess out = bridge_out(server, pair, logs, {"--liveness-timeout", "200"});
  out.start();
  BridgeProcess in = bridge_in(server, pair, logs, {"--capacity", std::to_string(4 << 20)});
  in.start();
  const SizeRule sizes{17, 64, 64};
  // Content counters skip what a gap covers: sequence s carries counter s - 1 on both sides.
  Destination dest(b.name(), sizes, /*gaps_skip_records=*/true);
  auto context = [&] {
    return dest.summary() + "\nbridge out:\n" + out.log() + "bridge in:\n" + in.log();
  };

  constexpr std::uint64_t kBefore = 5000;
  const std::uint64_t lapping = scaled_records(60'000, 40'000);
  Child first = produce(a.name(), kBefore, sizes);
  ASSERT_TRUE(dest.wait_for(kBefore)) << context();
  ASSERT_TRUE(finish_peer(first).status.ok());
  // Everything so far is in the stream (the destination has it): the stream's last is kBefore.

  // Bridge out dies; once evicted it no longer gates the producer, which laps the ring.
  out.kill9();
  Child second = produce(a.name(), lapping, sizes, kBefore, /*timeout_ms=*/10000);
  const PeerOutcome p = finish_peer(second);
  ASSERT_TRUE(p.status.ok()) << p.output;
  const std::uint64_t earliest = earliest_retained(a.name());
  ASSERT_GT(earliest, kBefore + 1) << "the ring was not lapped";

  out.start();
  const std::uint64_t last = kBefore + lapping;
  const std::uint64_t expected_records = kBefore + (last - earliest + 1);
  ASSERT_TRUE(dest.wait_for(expected_records)) << context();
  EXPECT_EQ(dest.drain_for(300ms), 0u) << dest.summary();
  EXPECT_EQ(dest.error_count(), 0u) << dest.summary();
  EXPECT_EQ(dest.next_counter(), last);
  EXPECT_EQ(dest.subscriber().next_sequence(), last + 1);

  // Exactly one gap: sequences kBefore + 1 .. earliest - 1, reported on the record `earliest`.
  ASSERT_EQ(dest.gaps().size(), 1u) << dest.summary();
  EXPECT_EQ(dest.gaps()[0].sequence, earliest);
  EXPECT_EQ(dest.gaps()[0].counter, earliest - 1);
  EXPECT_EQ(dest.gaps()[0].lost, earliest - 1 - kBefore);
  EXPECT_EQ(dest.lost_total(), earliest - 1 - kBefore);

  // Both bridges count it: one gap of that many sequences.
  const nlohmann::json out_stats = bridge_stats(a.name(), "out");
  EXPECT_EQ(bridge_counter(out_stats, "gaps"), 1u) << out_stats.dump();
  EXPECT_EQ(bridge_counter(out_stats, "gap_sequences"), earliest - 1 - kBefore) << out_stats.dump();
  const nlohmann::json in_stats = bridge_stats(b.name(), "in");
  EXPECT_EQ(bridge_counter(in_stats, "gaps"), 1u) << in_stats.dump();
  EXPECT_EQ(bridge_counter(in_stats, "gap_sequences"), earliest - 1 - kBefore) << in_stats.dump();
  // And bridge out said so.
  EXPECT_NE(out.log().find(std::to_string(kBefore + 1)), std::string::npos) << out.log();

  EXPECT_TRUE(in.stop().ok()) << in.log();
  EXPECT_TRUE(out.stop().ok()) << out.log();
}

}  // namespace
}  // namespace shmbus::test::bridge
