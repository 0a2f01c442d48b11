// Wall-clock steps (an NTP step, an operator's `date -s`) under libfaketime: a producer and a
// subscriber run with CLOCK_REALTIME jumping a year forward, then a year back, while
// CLOCK_MONOTONIC stays true (FAKETIME_DONT_FAKE_MONOTONIC=1, as in a real step).
//
// What it shows: every timeout (liveness, abandoned claims) runs on CLOCK_MONOTONIC, so nobody is
// evicted and no claim is abandoned because the wall clock jumped; delivery order is by sequence
// only. Timestamps are the producer's CLOCK_REALTIME as it saw it, never decreasing per producer
// (ipc/publish_clock.hpp holds them at their highest value until the clock catches up after a
// backward step): replay by time (JournalReader::seek_time, `shmbus replay --from-time`) goes by
// these recorded timestamps, not by when the messages arrived.
//
// Needs the Debian package libfaketime (the preload library); skipped when it is missing.
#include <unistd.h>

#include <filesystem>
#include <fstream>

#include <gtest/gtest.h>

#include "tests/faults/faults_testing.hpp"
#include "tests/support/inprocess.hpp"

namespace shmbus {
namespace {

using namespace shmbus::test;
using namespace shmbus::test::faults;

constexpr const char* kFaketime = "/usr/lib/x86_64-linux-gnu/faketime/libfaketime.so.1";
constexpr std::int64_t kDayNs = 86'400'000'000'000;

void set_offset(const std::string& file, const char* offset) {
  const std::string next = file + ".next";
  std::ofstream(next) << offset << "\n";
  std::filesystem::rename(next, file);  // whole, never half-written, when the preload reads it
}

TEST(ClockJump, WallClockStepsEvictNobodyAbandonNothingAndDeliveryStaysInSequenceOrder) {
#if defined(__SANITIZE_ADDRESS__)
  GTEST_SKIP() << "the ASan runtime must be the first library loaded, before libfaketime's preload";
#endif
  if (!std::filesystem::exists(kFaketime)) {
    GTEST_SKIP() << kFaketime << " is missing: install the Debian package libfaketime";
  }
  ChannelGuard ch(unique_channel("clock"));
  TempDir dir("clock");
  const std::string offset_file = dir.str() + "/faketime.rc";
  set_offset(offset_file, "+0");
  const std::vector<std::string> faked{
      "/usr/bin/env", std::string("LD_PRELOAD=") + kFaketime,
      "FAKETIME_TIMESTAMP_FILE=" + offset_file, "FAKETIME_NO_CACHE=1",
      "FAKETIME_DONT_FAKE_MONOTONIC=1"};
  Publisher creator = Publisher::open(ch.name(), small_channel()).value();

  const std::uint64_t total = 6000;
  SubscriberOptions watch = sub_options(Policy::block);
  watch.liveness_timeout = 200ms;
  watch.abandon_timeout = 200ms;
  Subscriber observer = Subscriber::open(ch.name(), watch).value();
  Child faked_sub = start_peer(
      std::vector<std::string>{"consume", "--channel", ch.name(), "--policy", "block",
                               "--liveness-ms", "200", "--abandon-ms", "200", "--until-seq",
                               str(total), "--sleep-every", "500", "--sleep-us", "50000"} +
          rule_args(kRule),
      faked);
  Child producer = start_peer(std::vector<std::string>{"produce", "--channel", ch.name(),
                                                       "--producer-id", "1", "--count",
                                                       str(total), "--rate", "2000"} +
                                  rule_args(kRule),
                              faked);

  // Both faked processes see the steps: +0, a year ahead, a year behind, back to true time.
  std::vector<std::pair<std::uint64_t, std::int64_t>> stamps;  // (sequence, timestamp)
  const auto started = Clock::now();
  const char* steps[] = {"+365d", "-365d", "+0"};
  std::size_t next_step = 0;
  while (stamps.size() < total && Clock::now() - started < 60s) {
    if (next_step < 3 && Clock::now() - started > (next_step + 1) * 700ms) {
      set_offset(offset_file, steps[next_step++]);
    }
    observer.poll([&](const Message& m) { stamps.emplace_back(m.sequence, m.timestamp_ns); });
    observer.wait(10ms);
  }
  ASSERT_EQ(stamps.size(), total);
  EXPECT_EQ(observer.lost(), 0u);
  EXPECT_EQ(observer.status(), PollStatus::ok) << observer.last_error();

  // Order by sequence only; the producer's timestamps never went back, and saw the year ahead.
  const std::int64_t now = std::chrono::duration_cast<std::chrono::nanoseconds>(
                              std::chrono::system_clock::now().time_since_epoch())
                              .count();
  bool saw_year_ahead = false;
  for (std::size_t i = 0; i < stamps.size(); ++i) {
    ASSERT_EQ(stamps[i].first, i + 1);
    if (i > 0) {
      ASSERT_GE(stamps[i].second, stamps[i - 1].second) << "at sequence " << i + 1;
    }
    if (stamps[i].second > now + 300 * kDayNs) saw_year_ahead = true;
  }
  EXPECT_TRUE(saw_year_ahead) << "the preload did not move the producer's wall clock";

  const PeerOutcome p = finish_peer(producer);
  EXPECT_TRUE(p.status.ok()) << p.output;
  const PeerOutcome s = finish_peer(faked_sub);
  EXPECT_TRUE(s.status.ok()) << s.output;
  ASSERT_FALSE(s.result.empty()) << s.output;
  EXPECT_EQ(s.result.at("received"), str(total)) << s.output;
  EXPECT_EQ(s.result.at("lost"), "0") << s.output;
  const auto stats = read_channel_stats(ch.name());
  ASSERT_TRUE(stats);
  EXPECT_EQ(stats->evictions, 0u);
  EXPECT_EQ(stats->abandoned_repaired, 0u);
}

}  // namespace
}  // namespace shmbus
