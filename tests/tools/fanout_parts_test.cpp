// The pure parts of `shmbus bench fanout`: the per-record check every subscriber runs (it must
// reject what a broken channel could deliver) and the channel options a round is built with.
#include <gtest/gtest.h>

#include <cstddef>
#include <cstdint>
#include <vector>

#include "bench/fanout/fanout_channel.hpp"
#include "bench/fanout/record_check.hpp"

namespace {

using shmbus::Message;
using shmbus::Policy;
using shmbus::bench::check_fanout_subscribers;
using shmbus::bench::fanout_channel_options;
using shmbus::bench::fill_record;
using shmbus::bench::RecordCheck;

constexpr std::size_t kSize = 64;

// A record as the fanout publisher writes it; `payload` must outlive the Message.
Message record(std::vector<std::byte>& payload, std::uint64_t sequence,
               std::uint64_t lost_before = 0) {
  payload.assign(kSize, std::byte{0});
  fill_record(payload.data(), payload.size(), sequence);
  return Message{sequence, 0, {payload.data(), payload.size()}, lost_before};
}

TEST(FanoutRecordCheck, BlockAcceptsContiguousRecordsAndCountsThem) {
  RecordCheck check(Policy::block, kSize, 5);
  std::vector<std::byte> payload;
  for (std::uint64_t seq = 5; seq < 105; ++seq) check(record(payload, seq));
  EXPECT_EQ(check.failure(), "");
  EXPECT_EQ(check.received(), 100u);
  EXPECT_EQ(check.lost(), 0u);
}

TEST(FanoutRecordCheck, BlockRejectsAGapEvenWhenLostBeforeAccountsForIt) {
  RecordCheck check(Policy::block, kSize, 1);
  std::vector<std::byte> payload;
  check(record(payload, 1));
  check(record(payload, 3, 1));
  EXPECT_NE(check.failure().find("record 3 out of order"), std::string::npos) << check.failure();
  EXPECT_EQ(check.received(), 1u);
}

TEST(FanoutRecordCheck, DropAcceptsAGapCountedByLostBefore) {
  RecordCheck check(Policy::drop, kSize, 1);
  std::vector<std::byte> payload;
  check(record(payload, 1));
  check(record(payload, 10, 8));
  check(record(payload, 11));
  EXPECT_EQ(check.failure(), "");
  EXPECT_EQ(check.received(), 3u);
  EXPECT_EQ(check.lost(), 8u);
}

TEST(FanoutRecordCheck, DropRejectsAGapLostBeforeDoesNotAccountFor) {
  RecordCheck check(Policy::drop, kSize, 1);
  std::vector<std::byte> payload;
  check(record(payload, 1));
  check(record(payload, 10, 7));
  EXPECT_NE(check.failure().find("record 10 out of order"), std::string::npos) << check.failure();
}

TEST(FanoutRecordCheck, RejectsAWrongByteAndKeepsOnlyTheFirstFailure) {
  RecordCheck check(Policy::block, kSize, 1);
  std::vector<std::byte> payload;
  Message bad = record(payload, 1);
  payload[kSize - 1] ^= std::byte{1};
  check(bad);
  std::vector<std::byte> other;
  check(record(other, 7));  // out of order too, but the first failure stands
  EXPECT_NE(check.failure().find("record 1 with wrong content"), std::string::npos)
      << check.failure();
  EXPECT_EQ(check.received(), 0u);
}

TEST(FanoutRecordCheck, RejectsARecordOfAnotherSizeOrCarryingAnotherSequence) {
  std::vector<std::byte> payload;
  {
    RecordCheck check(Policy::block, kSize, 1);
    Message m = record(payload, 1);
    m.payload = m.payload.first(kSize - 1);
    check(m);
    EXPECT_NE(check.failure().find("wrong size"), std::string::npos) << check.failure();
  }
  {
    RecordCheck check(Policy::block, kSize, 2);
    Message m = record(payload, 1);  // the content of record 1 delivered as record 2
    m.sequence = 2;
    check(m);
    EXPECT_NE(check.failure().find("another sequence"), std::string::npos) << check.failure();
  }
}

TEST(FanoutChannel, TakesUpToTheLargestSlotCountAndRefusesMoreSayingWhy) {
  EXPECT_EQ(check_fanout_subscribers(1), "");
  EXPECT_EQ(check_fanout_subscribers(4096), "");
  EXPECT_NE(check_fanout_subscribers(0), "");
  const std::string refused = check_fanout_subscribers(4097);
  EXPECT_NE(refused.find("subscriber_slots"), std::string::npos) << refused;
}

TEST(FanoutChannel, OptionsFitTheMessageSizeWithinAQuarterOfTheRing) {
  for (std::size_t size : {std::size_t{64}, std::size_t{100'000}, std::size_t{1} << 20}) {
    SCOPED_TRACE(size);
    const shmbus::ChannelOptions options = fanout_channel_options(8, size);
    EXPECT_GE(options.max_message, size);
    EXPECT_LE(std::uint64_t{options.max_message}, options.capacity / 4 - 32);
    EXPECT_EQ(options.capacity & (options.capacity - 1), 0u) << "a power of two";
  }
  EXPECT_EQ(fanout_channel_options(1, 64).capacity, shmbus::ChannelOptions{}.capacity)
      << "small messages get the channel a user gets by default";
  EXPECT_EQ(fanout_channel_options(8, 64).subscriber_slots, shmbus::ChannelOptions{}.subscriber_slots);
  EXPECT_EQ(fanout_channel_options(256, 64).subscriber_slots, 256u) << "a slot per subscriber";
}

}  // namespace
