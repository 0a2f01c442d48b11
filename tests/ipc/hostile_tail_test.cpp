// A peer writes garbage into a live channel's shared memory: the claim word's sequence, a
// committed record's sequence. Subscribers of every policy report the ring corrupt (status,
// last_error) and never count the garbage as a loss or hand on a sequence taken from it; a
// genuine jump (a damaged record in a sane ring) is still skipped and counted exactly.
#include <atomic>
#include <chrono>
#include <cstdint>
#include <string>
#include <vector>

#include <fmt/format.h>
#include <gtest/gtest.h>

#include "core/layout.hpp"
#include "shmbus/shmbus.hpp"
#include "tests/support/inprocess.hpp"
#include "tests/support/process.hpp"
#include "tests/support/segments.hpp"

namespace shmbus {
namespace {

using namespace shmbus::test;
using namespace std::chrono_literals;

constexpr std::uint64_t kGarbageSequence = 0xEEEE'EEEE'EEEE'EEE0ULL;  // about 1.7e19

// What a stray write by another process leaves in the claim word: its sequence half replaced.
bool garble_tail_sequence(const std::string& channel, std::uint64_t sequence) {
  auto files = ChannelFiles::open(channel, true);
  if (!files) return false;
  std::atomic_ref<std::uint64_t>(files->ring().tail.next_sequence).store(sequence);
  return true;
}

// Publishes "m<i>" for i in [first, last]; stops at the first status that is not ok.
PublishStatus publish_range(Publisher& pub, int first, int last) {
  for (int i = first; i <= last; ++i) {
    const PublishStatus st = pub.try_publish(bytes_of(fmt::format("m{}", i)));
    if (st != PublishStatus::ok) return st;
  }
  return PublishStatus::ok;
}

// Polls for `how_long`; returns everything delivered.
std::vector<Received> poll_for(Subscriber& sub, std::chrono::milliseconds how_long) {
  std::vector<Received> got;
  const auto deadline = std::chrono::steady_clock::now() + how_long;
  while (std::chrono::steady_clock::now() < deadline) {
    sub.poll([&](const Message& m) {
      got.push_back(Received{m.sequence, m.lost_before,
                             std::string(reinterpret_cast<const char*>(m.payload.data()),
                                         m.payload.size())});
    });
  }
  return got;
}

// The subscriber has read 1..10; the claim word then says 1.7e19 and the producer keeps
// publishing from it (laps of it, for a reader the producer does not wait for).
void expect_garbage_is_reported_not_lost(Subscriber& sub, const std::vector<Received>& after) {
  EXPECT_TRUE(after.empty()) << after.size() << " delivered, the first with sequence "
                             << after.front().sequence << " and lost_before "
                             << after.front().lost_before;
  EXPECT_EQ(sub.lost(), 0u);
  EXPECT_EQ(sub.received(), 10u);
  EXPECT_EQ(sub.next_sequence(), 11u);
  EXPECT_EQ(sub.status(), PollStatus::corrupt);
  EXPECT_NE(sub.last_error().find("corrupt"), std::string::npos) << sub.last_error();
}

class HostileTail : public ::testing::TestWithParam<Policy> {};

TEST_P(HostileTail, GarbageClaimSequenceIsReportedCorruptNeverCountedLostNorDelivered) {
  const Policy policy = GetParam();
  ChannelGuard ch(unique_channel("hostiletail"));
  auto pub = Publisher::open(ch.name(), small_options());
  ASSERT_TRUE(pub);
  std::optional<JournalerThread> journaler;
  const std::string dir = ::testing::TempDir() + "/" + ch.name();
  if (policy == Policy::spill) {
    journaler.emplace(TestJournalerOptions{ch.name(), dir});
    ASSERT_FALSE(journaler->open_error()) << *journaler->open_error();
  }
  auto sub = Subscriber::open(ch.name(), sub_options(policy));
  ASSERT_TRUE(sub) << sub.error().message;
  ASSERT_EQ(publish_range(*pub, 1, 10), PublishStatus::ok);
  const auto before = receive_messages(*sub, 10);
  ASSERT_EQ(before.size(), 10u);
  EXPECT_EQ(before.back().sequence, 10u);

  ASSERT_TRUE(garble_tail_sequence(ch.name(), kGarbageSequence));
  // The producer numbers its messages from the garbage; a block subscriber holds it back after a
  // lap, the others are lapped several times.
  for (int round = 0; round < 3000; ++round) {
    if (publish_range(*pub, 11, 20) != PublishStatus::ok) break;
  }
  expect_garbage_is_reported_not_lost(*sub, poll_for(*sub, 200ms));
  if (journaler) journaler->stop();
}

INSTANTIATE_TEST_SUITE_P(Policies, HostileTail,
                         ::testing::Values(Policy::block, Policy::drop, Policy::spill),
                         [](const auto& info) {
                           return std::string(info.param == Policy::block  ? "block"
                                              : info.param == Policy::drop ? "drop"
                                                                           : "spill");
                         });

// The same with the garbage written, and the messages after it published, by another process.
TEST(HostileTail, GarbageWrittenByAnotherProcessIsReportedCorruptToADropSubscriber) {
  ChannelGuard ch(unique_channel("hostileproc"));
  auto pub = Publisher::open(ch.name(), small_options());
  ASSERT_TRUE(pub);
  auto sub = Subscriber::open(ch.name(), sub_options(Policy::drop));
  ASSERT_TRUE(sub);
  ASSERT_EQ(publish_range(*pub, 1, 10), PublishStatus::ok);
  ASSERT_EQ(receive_messages(*sub, 10).size(), 10u);
  const std::string name = ch.name();
  Child peer = Child::fork([name] {
    if (!garble_tail_sequence(name, kGarbageSequence)) return 2;
    auto other = Publisher::open(name, small_options());
    if (!other) return 3;
    for (int round = 0; round < 300; ++round) {
      if (publish_range(*other, 11, 20) != PublishStatus::ok) return 4;
    }
    return 0;
  });
  const auto status = peer.wait(10s);
  ASSERT_TRUE(status && status->ok()) << (status ? status->describe() : "still running");
  expect_garbage_is_reported_not_lost(*sub, poll_for(*sub, 200ms));
}

// A new subscriber refuses to start from a claim word whose sequence its position cannot hold.
TEST(HostileTail, SubscriberOpeningOnAGarbageClaimWordFailsAsCorrupt) {
  ChannelGuard ch(unique_channel("hostileopen"));
  auto pub = Publisher::open(ch.name(), small_options());
  ASSERT_TRUE(pub);
  ASSERT_EQ(publish_range(*pub, 1, 10), PublishStatus::ok);
  ASSERT_TRUE(garble_tail_sequence(ch.name(), kGarbageSequence));
  for (StartFrom start : {StartFrom::latest, StartFrom::earliest}) {
    auto sub = Subscriber::open(ch.name(), sub_options(Policy::drop, start));
    ASSERT_FALSE(sub);
    EXPECT_EQ(sub.error().code, ErrorCode::corrupt);
    EXPECT_NE(sub.error().message.find("corrupt"), std::string::npos) << sub.error().message;
  }
}

// Garbage in one committed record's sequence, in a ring that is otherwise sane: the subscriber
// reports it and resumes at the claim word, counting exactly the sequences it skipped.
TEST(HostileTail, DamagedRecordSequenceIsSkippedWithTheGenuineLossOnly) {
  ChannelGuard ch(unique_channel("hostilerec"));
  auto pub = Publisher::open(ch.name(), small_options());
  ASSERT_TRUE(pub);
  auto sub = Subscriber::open(ch.name(), sub_options(Policy::drop));
  ASSERT_TRUE(sub);
  ASSERT_EQ(publish_range(*pub, 1, 10), PublishStatus::ok);  // "mN": 2-3 bytes, 64-byte frames
  auto ring = FileMapping::open(ring_path(ch.name()), true);
  ASSERT_TRUE(ring);
  auto* record7 =
      reinterpret_cast<core::RecordHeader*>(ring->data() + core::kRingDataOffset + 6 * 64);
  ASSERT_EQ(record7->sequence, 7u);
  record7->sequence = kGarbageSequence;
  auto got = poll_for(*sub, 50ms);
  ASSERT_EQ(got.size(), 6u);
  EXPECT_EQ(got.back().sequence, 6u);
  EXPECT_EQ(sub->status(), PollStatus::corrupt);
  EXPECT_NE(sub->last_error().find("failed validation"), std::string::npos) << sub->last_error();
  ASSERT_EQ(publish_range(*pub, 11, 11), PublishStatus::ok);
  got = receive_messages(*sub, 1);
  ASSERT_EQ(got.size(), 1u);
  EXPECT_EQ(got[0].sequence, 11u);
  EXPECT_EQ(got[0].payload, "m11");
  EXPECT_EQ(got[0].lost_before, 4u);  // 7..10
  EXPECT_EQ(sub->lost(), 4u);
  EXPECT_EQ(sub->status(), PollStatus::ok);
}

}  // namespace
}  // namespace shmbus
