// The spill policy with the journaler in another process (forked), so that it can die: opening
// without a live journaler, starting from a sequence only the journal still holds, a loss the
// journal recorded, and the journaler killed while a subscriber catches up from its files.
#include <unistd.h>

#include <chrono>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "core/layout.hpp"
#include "shmbus/shmbus.hpp"
#include "tests/support/inprocess.hpp"
#include "tests/support/journal_files.hpp"
#include "tests/support/process.hpp"
#include "tests/support/segments.hpp"

namespace shmbus {
namespace {

using namespace shmbus::test;

constexpr std::uint64_t kCapacity = 64 << 10;

std::string numbered(std::uint64_t i) {
  std::string s = "m";
  s += std::to_string(i);
  s.resize(200, '.');
  return s;
}

Publisher open_channel(const std::string& name) {
  ChannelOptions co;
  co.capacity = kCapacity;
  co.max_message = 1024;
  auto pub = Publisher::open(name, co);
  if (!pub) throw std::runtime_error(pub.error().message);
  return std::move(*pub);
}

// A journaler in a child process, running until it is killed.
Child journaler_process(const TestJournalerOptions& options) {
  Child c = Child::fork([options] {
    auto j = TestJournaler::open(options);
    if (!j) {
      const std::string line = "ERROR " + j.error().message + "\n";
      (void)::write(1, line.data(), line.size());
      return 1;
    }
    (void)::write(1, "READY\n", 6);
    const std::atomic<bool> never{false};
    (void)(*j)->run(never);
    return 2;
  });
  if (!c.wait_for_line("READY", std::chrono::seconds(10))) {
    throw std::runtime_error("the journaler did not start: " + c.output());
  }
  return c;
}

// Publishes numbered(first..last), waiting whenever the ring is full (the journaler gates it).
void publish_range(Publisher& pub, std::uint64_t first, std::uint64_t last) {
  for (std::uint64_t i = first; i <= last; ++i) {
    ASSERT_EQ(pub.publish(bytes_of(numbered(i)), std::chrono::seconds(30)), PublishStatus::ok)
        << "message " << i;
  }
}

// Waits until the journal holds every sequence up to `sequence`.
void wait_written(Publisher& pub, std::uint64_t sequence) {
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(30);
  while (pub.journaled_sequence() < sequence && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  ASSERT_GE(pub.journaled_sequence(), sequence);
}

constexpr std::uint64_t kPerLap = kCapacity / 256;  // a 200-byte message takes a 256-byte frame

TEST(Spill, WithoutAJournalerOpeningFailsNamingTheCommandThatProvidesOne) {
  ChannelGuard ch(unique_channel("spillnone"));
  Publisher pub = open_channel(ch.name());
  auto sub = Subscriber::open(ch.name(), sub_options(Policy::spill));
  ASSERT_FALSE(sub);
  EXPECT_EQ(sub.error().code, ErrorCode::invalid_argument);
  EXPECT_EQ(sub.error().message,
            "channel '" + ch.name() + "': the spill policy needs a journaler on the channel "
            "(shmbus record " + ch.name() + " --dir DIR); none is attached");
}

TEST(Spill, WithADeadJournalerOpeningFails) {
  ChannelGuard ch(unique_channel("spilldead"));
  TempDir dir("spilldead");
  Publisher pub = open_channel(ch.name());
  Child j = journaler_process({ch.name(), dir.path()});
  j.kill_hard();
  auto sub = Subscriber::open(ch.name(), sub_options(Policy::spill));
  ASSERT_FALSE(sub);
  EXPECT_EQ(sub.error().code, ErrorCode::invalid_argument);
  EXPECT_NE(sub.error().message.find("is dead"), std::string::npos) << sub.error().message;
}

// StartFrom::sequence names a sequence the ring has overwritten: a spill subscriber reads it
// from the journal instead of counting it lost.
TEST(Spill, StartingFromASequenceGoneFromTheRingReadsItFromTheJournal) {
  ChannelGuard ch(unique_channel("spillfrom"));
  TempDir dir("spillfrom");
  Publisher pub = open_channel(ch.name());
  Child j = journaler_process({ch.name(), dir.path()});
  const std::uint64_t n = 4 * kPerLap;
  publish_range(pub, 1, n);
  wait_written(pub, n);
  SubscriberOptions o = sub_options(Policy::spill, StartFrom::sequence);
  o.start_sequence = 5;
  auto sub = Subscriber::open(ch.name(), o);
  ASSERT_TRUE(sub) << sub.error().message;
  EXPECT_TRUE(sub->catching_up());
  const auto got = receive_messages(*sub, n - 4);
  ASSERT_EQ(got.size(), n - 4);
  for (std::uint64_t i = 0; i < got.size(); ++i) {
    ASSERT_EQ(got[i].sequence, i + 5);
    ASSERT_EQ(got[i].payload, numbered(i + 5));
    ASSERT_EQ(got[i].lost_before, 0u);
  }
  EXPECT_EQ(sub->lost(), 0u);
  EXPECT_GT(sub->spilled(), 0u);
}

// A claim abandoned in the ring is a loss the journaler saw and recorded as a gap record; the
// spill subscriber reading that stretch from the journal reports it exactly once.
TEST(Spill, ALossRecordedInTheJournalIsReportedOnceBeforeTheNextMessage) {
  ChannelGuard ch(unique_channel("spillgap"));
  TempDir dir("spillgap");
  Publisher pub = open_channel(ch.name());
  Child j = journaler_process({ch.name(), dir.path()});
  auto sub = Subscriber::open(ch.name(), sub_options(Policy::spill));
  ASSERT_TRUE(sub) << sub.error().message;
  publish_range(pub, 1, 10);
  Claim c;
  ASSERT_EQ(pub.try_claim(200, c), PublishStatus::ok);
  ASSERT_EQ(c.sequence(), 11u);
  pub.abandon(c);
  const std::uint64_t n = 4 * kPerLap;
  publish_range(pub, 12, n);
  wait_written(pub, n);
  const auto got = receive_messages(*sub, n - 1);
  ASSERT_EQ(got.size(), n - 1);
  std::uint64_t expect = 1;
  for (const Received& r : got) {
    if (expect == 11) {
      EXPECT_EQ(r.lost_before, 1u) << "sequence 12";
      ++expect;
    } else {
      EXPECT_EQ(r.lost_before, 0u) << "sequence " << r.sequence;
    }
    ASSERT_EQ(r.sequence, expect);
    ASSERT_EQ(r.payload, numbered(expect));
    ++expect;
  }
  EXPECT_EQ(sub->lost(), 1u);
  EXPECT_GT(sub->spilled(), 0u);
}

// The journaler dies while the subscriber is far behind. It reads what the journal files hold,
// then whatever the ring still has; once the dead journaler is evicted and the producer laps the
// ring, the rest is gone: the subscriber says so (status, last_error, lost_before) and goes on
// in the ring. Never a duplicate, never a silent gap: received + lost = published.
TEST(Spill, JournalerKilledDuringCatchUpEndsInACountedLossNotASilentOne) {
  ChannelGuard ch(unique_channel("spillkill"));
  TempDir dir("spillkill");
  Publisher pub = open_channel(ch.name());
  TestJournalerOptions jo{ch.name(), dir.path()};
  jo.liveness_timeout = std::chrono::milliseconds(100);
  Child j = journaler_process(jo);
  auto sub = Subscriber::open(ch.name(), sub_options(Policy::spill));
  ASSERT_TRUE(sub) << sub.error().message;
  const std::uint64_t journaled = 3 * kPerLap;
  publish_range(pub, 1, journaled);
  wait_written(pub, journaled);
  j.kill_hard();
  // The dead journaler gates until it is evicted; then three more laps overwrite everything it
  // did not journal.
  const std::uint64_t n = journaled + 3 * kPerLap;
  publish_range(pub, journaled + 1, n);
  std::vector<Received> got;
  bool saw_status = false;
  std::string error;
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(30);
  std::uint64_t lost = 0;
  while ((got.empty() || got.back().sequence < n) && std::chrono::steady_clock::now() < deadline) {
    const std::size_t k = sub->poll([&](const Message& m) {
      got.push_back(Received{m.sequence, m.lost_before,
                             std::string(reinterpret_cast<const char*>(m.payload.data()),
                                         m.payload.size())});
      lost += m.lost_before;
    });
    if (sub->status() == PollStatus::journal_unavailable) {
      saw_status = true;
      error = sub->last_error();
    }
    if (k == 0) sub->wait(std::chrono::milliseconds(5));
  }
  ASSERT_FALSE(got.empty());
  EXPECT_EQ(got.back().sequence, n);
  EXPECT_TRUE(saw_status);
  EXPECT_NE(error.find("journaler is gone"), std::string::npos) << error;
  EXPECT_GT(lost, 0u);
  EXPECT_EQ(sub->lost(), lost);
  EXPECT_EQ(got.size() + lost, n) << "received + lost must be every sequence published";
  std::uint64_t expect = 1;
  for (const Received& r : got) {
    expect += r.lost_before;
    ASSERT_EQ(r.sequence, expect);
    ASSERT_EQ(r.payload, numbered(expect));
    ++expect;
  }
  // Everything the journal held was delivered before the loss.
  ASSERT_GE(got.size(), journaled);
  for (std::uint64_t i = 0; i < journaled; ++i) ASSERT_EQ(got[i].lost_before, 0u);
}

// `shmbus tail --policy spill` from a sequence the ring lost long ago: every line, in order, from
// the journal, then the ring; without a journaler it says what is missing.
TEST(Spill, TailCommandWithTheSpillPolicyPrintsEverySequenceFromTheJournal) {
  ChannelGuard ch(unique_channel("spilltail"));
  TempDir dir("spilltail");
  Publisher pub = open_channel(ch.name());
  {
    Child refused = Child::spawn({SHMBUS_CLI, "tail", ch.name(), "--policy", "spill"});
    const auto st = refused.wait(std::chrono::seconds(10));
    ASSERT_TRUE(st);
    EXPECT_EQ(st->code, 1);
  }
  Child j = journaler_process({ch.name(), dir.path()});
  const std::uint64_t n = 3 * kPerLap;
  publish_range(pub, 1, n);
  wait_written(pub, n);
  Child tail = Child::spawn({SHMBUS_CLI, "tail", ch.name(), "--policy", "spill", "--from", "1",
                             "--count", std::to_string(n), "--format", "text"});
  for (std::uint64_t seq = 1; seq <= n; ++seq) {
    const auto line = tail.read_line(std::chrono::seconds(10));
    ASSERT_TRUE(line) << "no line for sequence " << seq << ":\n" << tail.output();
    ASSERT_EQ(line->rfind("seq=" + std::to_string(seq) + " ", 0), 0u) << *line;
    ASSERT_NE(line->find(" size=200 " + numbered(seq).substr(0, 8)), std::string::npos) << *line;
  }
  const auto st = tail.wait(std::chrono::seconds(10));
  ASSERT_TRUE(st);
  EXPECT_TRUE(st->ok()) << st->describe();
}

}  // namespace
}  // namespace shmbus
