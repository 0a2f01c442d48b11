// inspect_channel (ipc/channel_inspect.hpp), the report behind `shmbus inspect`, called directly on
// channels a Publisher in this process wrote: the identity and tail it reads, the last record
// headers by sequence, position and length, a damaged record reported at its position, an
// uncommitted claim reported as pending (no problem), and a channel that does not exist.
#include <gtest/gtest.h>
#include <unistd.h>

#include <atomic>
#include <cstdint>
#include <thread>
#include <vector>

#include "core/layout.hpp"
#include "ipc/channel_inspect.hpp"
#include "ipc/process.hpp"
#include "shmbus/shmbus.hpp"
#include "tests/support/process.hpp"
#include "tests/support/segments.hpp"

namespace shmbus {
namespace {

using test::ChannelGuard;
using test::unique_channel;

constexpr std::uint64_t kCapacity = 64 << 10;
constexpr std::uint64_t kRecords = 10;

ChannelOptions small_channel() {
  ChannelOptions o;
  o.capacity = kCapacity;
  o.max_message = 1024;
  return o;
}

// Every record has its own length, so a header shown for the wrong sequence is caught.
std::uint32_t length_of(std::uint64_t sequence) {
  return static_cast<std::uint32_t>(40 + 24 * sequence);
}

// Where record `sequence` starts when records 1.. were published from an empty ring (one lap).
std::uint64_t position_of(std::uint64_t sequence) {
  std::uint64_t position = 0;
  for (std::uint64_t s = 1; s < sequence; ++s) position += core::frame_size(length_of(s));
  return position;
}

// Publishes records 1..count with length_of(sequence) bytes.
void publish_records(Publisher& pub, std::uint64_t count) {
  for (std::uint64_t sequence = 1; sequence <= count; ++sequence) {
    const std::vector<std::byte> payload(length_of(sequence), std::byte{0x5a});
    ASSERT_EQ(pub.try_publish(payload), PublishStatus::ok) << "sequence " << sequence;
  }
}

constexpr std::int64_t kClockSlackNs = 1'000'000;

TEST(ChannelInspect, HealthyChannelReportsItsIdentityTailAndLastRecordsBySequence) {
  ChannelGuard ch(unique_channel("insp"));
  auto pub = Publisher::open(ch.name(), small_channel());
  ASSERT_TRUE(pub) << pub.error().message;
  const std::int64_t before_ns = detail::realtime_ns();
  publish_records(*pub, kRecords);
  const std::int64_t after_ns = detail::realtime_ns();

  const auto report = detail::inspect_channel(ch.name(), 3);
  ASSERT_TRUE(report) << report.error().message;
  EXPECT_EQ(report->channel, ch.name());

  const detail::RingHeaderReport& ring = report->ring;
  EXPECT_TRUE(ring.magic_ok);
  EXPECT_EQ(ring.magic, core::kRingMagic);
  EXPECT_EQ(ring.name, ch.name());
  EXPECT_EQ(ring.capacity, kCapacity);
  EXPECT_EQ(ring.max_message, 1024u);
  EXPECT_EQ(ring.incarnation, pub->info().incarnation);
  EXPECT_EQ(ring.creator_pid, static_cast<std::uint32_t>(::getpid()));
  EXPECT_TRUE(ring.ready);
  EXPECT_EQ(ring.ready_marker, core::kReadyMarker);
  EXPECT_EQ(ring.flags, 0u);
  EXPECT_FALSE(ring.single_producer);
  EXPECT_FALSE(ring.unknown_flags);
  EXPECT_FALSE(ring.exclusive_pid.has_value());
  EXPECT_EQ(ring.tail_position, position_of(kRecords + 1));
  EXPECT_EQ(ring.tail_next_sequence, kRecords + 1);
  EXPECT_EQ(ring.repaired_through, 0u);

  const detail::ControlHeaderReport& control = report->control;
  EXPECT_TRUE(control.magic_ok);
  EXPECT_EQ(control.incarnation, ring.incarnation);
  EXPECT_TRUE(control.ready);

  const detail::ChannelLayoutReport& layout = report->layout;
  EXPECT_EQ(layout.ring_path, test::ring_path(ch.name()));
  EXPECT_EQ(layout.ring_segment_bytes, core::kRingDataOffset + kCapacity);
  EXPECT_EQ(layout.data_offset, core::kRingDataOffset);
  EXPECT_EQ(layout.data_bytes, kCapacity);

  const core::RingWalk& walk = report->walk;
  EXPECT_TRUE(report->healthy());
  EXPECT_TRUE(walk.problems.empty());
  EXPECT_FALSE(walk.overtaken);
  EXPECT_EQ(report->walk_attempts, 1);
  EXPECT_EQ(walk.start_margin, kCapacity / 8);
  EXPECT_EQ(walk.from_position, 0u);
  EXPECT_EQ(walk.to_position, ring.tail_position);
  EXPECT_EQ(walk.data_records, kRecords);
  EXPECT_EQ(walk.pending_records, 0u);
  EXPECT_EQ(walk.first_sequence, 1u);
  EXPECT_EQ(walk.last_sequence, kRecords);
  ASSERT_EQ(walk.last.size(), 3u);
  for (std::size_t i = 0; i < walk.last.size(); ++i) {
    const core::WalkedRecord& record = walk.last[i];
    const std::uint64_t sequence = kRecords - 2 + i;
    SCOPED_TRACE("sequence " + std::to_string(sequence));
    EXPECT_EQ(record.sequence, sequence);
    EXPECT_EQ(record.position, position_of(sequence));
    EXPECT_EQ(record.length, length_of(sequence));
    EXPECT_EQ(record.type, static_cast<std::uint16_t>(core::RecordType::data));
    EXPECT_FALSE(record.pending);
    // Publish times come from the TSC-extrapolated clock (ipc/publish_clock.hpp), which may run a
    // little (under a microsecond) ahead of or behind CLOCK_REALTIME: allow a millisecond.
    EXPECT_GE(record.timestamp_ns, before_ns - kClockSlackNs);
    EXPECT_LE(record.timestamp_ns, after_ns + kClockSlackNs);
  }
}

TEST(ChannelInspect, SingleProducerChannelNamesItsExclusiveProducer) {
  ChannelGuard ch(unique_channel("inspsp"));
  ChannelOptions options = small_channel();
  options.single_producer = true;
  auto pub = Publisher::open(ch.name(), options);
  ASSERT_TRUE(pub) << pub.error().message;
  publish_records(*pub, 2);
  const auto report = detail::inspect_channel(ch.name(), 0);
  ASSERT_TRUE(report) << report.error().message;
  EXPECT_EQ(report->ring.flags, core::kFlagSingleProducer);
  EXPECT_TRUE(report->ring.single_producer);
  EXPECT_FALSE(report->ring.unknown_flags);
  ASSERT_TRUE(report->ring.exclusive_pid.has_value());
  EXPECT_EQ(*report->ring.exclusive_pid, static_cast<std::uint32_t>(::getpid()));
  EXPECT_TRUE(report->walk.last.empty());  // none kept, all counted
  EXPECT_EQ(report->walk.data_records, 2u);
}

// A committed record whose length no writer produces (above max_message): the walk cannot step
// over it, so it reports it at its position and stops there.
TEST(ChannelInspect, DamagedRecordIsAProblemAtItsPosition) {
  ChannelGuard ch(unique_channel("inspbad"));
  auto pub = Publisher::open(ch.name(), small_channel());
  ASSERT_TRUE(pub) << pub.error().message;
  publish_records(*pub, kRecords);
  constexpr std::uint64_t kDamaged = 5;
  const std::uint64_t position = position_of(kDamaged);
  {
    auto mapping = test::FileMapping::open(test::ring_path(ch.name()), true);
    ASSERT_TRUE(mapping);
    auto* header = reinterpret_cast<core::RecordHeader*>(mapping->data() +
                                                         core::kRingDataOffset + position);
    ASSERT_EQ(header->sequence, kDamaged);
    header->length = 60000;
  }
  const auto report = detail::inspect_channel(ch.name(), 10);
  ASSERT_TRUE(report) << report.error().message;
  EXPECT_FALSE(report->healthy());
  const core::RingWalk& walk = report->walk;
  ASSERT_EQ(walk.problems.size(), 1u);
  EXPECT_EQ(walk.problems[0].position, position);
  EXPECT_NE(walk.problems[0].what.find("position " + std::to_string(position)), std::string::npos)
      << walk.problems[0].what;
  EXPECT_NE(walk.problems[0].what.find("above the maximum"), std::string::npos)
      << walk.problems[0].what;
  EXPECT_EQ(report->walk_attempts, 1);  // a problem is final: no retry
  EXPECT_EQ(walk.to_position, position);
  EXPECT_EQ(walk.data_records, kDamaged - 1);
  EXPECT_EQ(walk.last_sequence, kDamaged - 1);
  ASSERT_EQ(walk.last.size(), kDamaged - 1);
  EXPECT_EQ(walk.last.back().sequence, kDamaged - 1);
}

// A claim not committed yet (its header is written with the commit) ends the walk there as
// pending; that is a producer at work, not a problem.
TEST(ChannelInspect, UncommittedClaimIsPendingNotAProblem) {
  ChannelGuard ch(unique_channel("insppend"));
  auto pub = Publisher::open(ch.name(), small_channel());
  ASSERT_TRUE(pub) << pub.error().message;
  publish_records(*pub, 3);
  Claim claim;
  ASSERT_EQ(pub->try_claim(length_of(4), claim), PublishStatus::ok);
  ASSERT_EQ(claim.sequence(), 4u);

  const auto report = detail::inspect_channel(ch.name(), 10);
  ASSERT_TRUE(report) << report.error().message;
  EXPECT_TRUE(report->healthy());
  const core::RingWalk& walk = report->walk;
  EXPECT_TRUE(walk.problems.empty());
  EXPECT_EQ(walk.pending_records, 1u);
  EXPECT_EQ(walk.stopped_at_pending, position_of(4));
  EXPECT_FALSE(walk.committed_beyond_pending);  // the newest claim: nothing committed after it
  EXPECT_EQ(walk.to_position, position_of(4));
  EXPECT_EQ(report->ring.tail_position, position_of(5));
  EXPECT_EQ(report->ring.tail_next_sequence, 5u);
  EXPECT_EQ(walk.data_records, 3u);
  EXPECT_EQ(walk.last_sequence, 3u);
  ASSERT_EQ(walk.last.size(), 3u);
  EXPECT_EQ(walk.last.back().sequence, 3u);

  // Committed, the claim is an ordinary record and the walk reaches the head.
  ASSERT_EQ(pub->commit(claim), PublishStatus::ok);
  const auto after = detail::inspect_channel(ch.name(), 1);
  ASSERT_TRUE(after) << after.error().message;
  EXPECT_EQ(after->walk.pending_records, 0u);
  EXPECT_EQ(after->walk.stopped_at_pending, UINT64_MAX);
  EXPECT_EQ(after->walk.to_position, position_of(5));
  ASSERT_EQ(after->walk.last.size(), 1u);
  EXPECT_EQ(after->walk.last[0].sequence, 4u);
  EXPECT_EQ(after->walk.last[0].length, length_of(4));
}

// Another producer commits after a claim that stays open: the walk stops at the open claim and
// says records beyond it are committed (readers repair such a claim as abandoned in time).
TEST(ChannelInspect, StalledClaimWithLaterCommitsIsPendingWithCommitsBeyond) {
  ChannelGuard ch(unique_channel("inspstall"));
  auto slow = Publisher::open(ch.name(), small_channel());
  ASSERT_TRUE(slow) << slow.error().message;
  auto fast = Publisher::open(ch.name(), small_channel());
  ASSERT_TRUE(fast) << fast.error().message;
  publish_records(*slow, 2);
  Claim claim;
  ASSERT_EQ(slow->try_claim(length_of(3), claim), PublishStatus::ok);
  const std::vector<std::byte> payload(length_of(4), std::byte{0x5a});
  ASSERT_EQ(fast->try_publish(payload), PublishStatus::ok);  // sequence 4, after the claim

  const auto report = detail::inspect_channel(ch.name(), 10);
  ASSERT_TRUE(report) << report.error().message;
  EXPECT_TRUE(report->healthy());
  EXPECT_EQ(report->walk.stopped_at_pending, position_of(3));
  EXPECT_TRUE(report->walk.committed_beyond_pending);
  EXPECT_EQ(report->walk.last_sequence, 2u);
  EXPECT_EQ(report->ring.tail_next_sequence, 5u);
  slow->abandon(claim);
}

// Producers lapping the ring while it is walked overtake the walk: that is retried, and a walk
// still overtaken after the retries is reported as such, never as a problem.
TEST(ChannelInspect, BusyChannelIsWalkedAgainWhileOvertakenAndStaysHealthy) {
  ChannelGuard ch(unique_channel("inspbusy"));
  ChannelOptions options;
  options.capacity = 4096;  // a lap of 64 records: lapped within microseconds
  options.max_message = 992;
  auto pub = Publisher::open(ch.name(), options);
  ASSERT_TRUE(pub) << pub.error().message;
  // Relaxed on both sides: it only ends the producer's loop; join() orders everything after.
  std::atomic<bool> stop{false};
  std::thread producer([&] {
    const std::vector<std::byte> payload(length_of(1), std::byte{0x5a});
    // relaxed: a stop flag only (see above).
    while (!stop.load(std::memory_order_relaxed)) (void)pub->try_publish(payload);
  });
  for (int i = 0; i < 200; ++i) {
    const auto report = detail::inspect_channel(ch.name(), 4);
    if (!report) {  // not ASSERT: the producer thread must be joined
      ADD_FAILURE() << report.error().message;
      break;
    }
    EXPECT_TRUE(report->healthy()) << report->walk.problems[0].what;
    EXPECT_GE(report->walk_attempts, 1);
    EXPECT_LE(report->walk_attempts, 1 + detail::kInspectWalkRetries);
    // Only an overtaken walk is run again, so a last walk still overtaken used every retry.
    if (report->walk.overtaken) {
      EXPECT_EQ(report->walk_attempts, 1 + detail::kInspectWalkRetries);
    }
    // The kept headers are the producer's records, in sequence order; padding fills lap ends.
    std::uint64_t previous = 0;
    for (const core::WalkedRecord& record : report->walk.last) {
      if (record.type == static_cast<std::uint16_t>(core::RecordType::padding)) continue;
      EXPECT_EQ(record.length, length_of(1)) << "sequence " << record.sequence;
      if (previous != 0) {
        EXPECT_EQ(record.sequence, previous + 1);
      }
      previous = record.sequence;
    }
  }
  stop.store(true, std::memory_order_relaxed);  // relaxed: join() orders the rest
  producer.join();
}

TEST(ChannelInspect, ChannelThatDoesNotExistIsNotFound) {
  ChannelGuard ch(unique_channel("inspnone"));
  const auto report = detail::inspect_channel(ch.name(), 10);
  ASSERT_FALSE(report);
  EXPECT_EQ(report.error().code, ErrorCode::not_found);
  EXPECT_NE(report.error().message.find(ch.name()), std::string::npos) << report.error().message;
}

}  // namespace
}  // namespace shmbus
