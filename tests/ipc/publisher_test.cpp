// Publishers within one process: claim and commit, batch claims, back-pressure from a block
// subscriber that does not read, abandoning a claim, two producers whose claims overlap in time,
// single-producer channels, and claims left without a header by a producer that died.
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstring>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "core/layout.hpp"
#include "shmbus/shmbus.hpp"
#include "tests/support/inprocess.hpp"
#include "tests/support/process.hpp"
#include "tests/support/segments.hpp"

namespace shmbus {
namespace {

using namespace shmbus::test;
using Clock = std::chrono::steady_clock;

TEST(Publisher, ClaimAndCommitDeliverTheBytesWrittenInPlace) {
  ChannelGuard ch(unique_channel("claim"));
  auto pub = Publisher::open(ch.name(), small_options());
  ASSERT_TRUE(pub);
  auto sub = Subscriber::open(ch.name(), sub_options(Policy::block));
  ASSERT_TRUE(sub);
  Claim c;
  ASSERT_EQ(pub->try_claim(5, c), PublishStatus::ok);
  EXPECT_EQ(c.size(), 5u);
  EXPECT_EQ(c.sequence(), 1u);
  std::memcpy(c.data(), "hello", 5);
  ASSERT_EQ(pub->commit(c), PublishStatus::ok);
  EXPECT_EQ(receive(*sub, 1), std::vector<std::string>{"hello"});
}

TEST(Publisher, MessageAboveMaxMessageIsTooLargeAndClaimsNothing) {
  ChannelGuard ch(unique_channel("toolarge"));
  auto pub = Publisher::open(ch.name(), small_options());
  ASSERT_TRUE(pub);
  std::vector<std::byte> big(1025);
  EXPECT_EQ(pub->try_publish(big), PublishStatus::too_large);
  EXPECT_EQ(pub->publish(big, std::chrono::milliseconds(10)), PublishStatus::too_large);
  Claim c;
  EXPECT_EQ(pub->try_claim(1025, c), PublishStatus::too_large);
  ASSERT_EQ(pub->try_claim(1, c), PublishStatus::ok);
  EXPECT_EQ(c.sequence(), 1u);  // nothing was claimed before
  ASSERT_EQ(pub->commit(c), PublishStatus::ok);
}

TEST(Publisher, BlockSubscriberThatDoesNotReadBackPressuresAfterOneLap) {
  ChannelGuard ch(unique_channel("backpressure"));
  auto pub = Publisher::open(ch.name(), small_options());
  ASSERT_TRUE(pub);
  auto sub = Subscriber::open(ch.name(), sub_options(Policy::block));
  ASSERT_TRUE(sub);
  const std::vector<std::byte> payload(100);  // 160-byte frames
  int published = 0;
  while (published < 10000 && pub->try_publish(payload) == PublishStatus::ok) ++published;
  EXPECT_GT(published, 300);  // most of a 64 KiB lap
  EXPECT_LE(published, 410);  // never more than a lap
  EXPECT_EQ(pub->try_publish(payload), PublishStatus::back_pressured);
  const auto start = Clock::now();
  EXPECT_EQ(pub->publish(payload, std::chrono::milliseconds(100)), PublishStatus::timed_out);
  EXPECT_GE(Clock::now() - start, std::chrono::milliseconds(100));
  // Reading frees the space.
  EXPECT_EQ(receive(*sub, 100).size(), 100u);
  EXPECT_EQ(pub->publish(payload, std::chrono::seconds(5)), PublishStatus::ok);
}

TEST(Publisher, AbandonedClaimIsCountedLostBeforeTheNextMessage) {
  ChannelGuard ch(unique_channel("abandonapi"));
  auto pub = Publisher::open(ch.name(), small_options());
  ASSERT_TRUE(pub);
  auto block = Subscriber::open(ch.name(), sub_options(Policy::block));
  auto drop = Subscriber::open(ch.name(), sub_options(Policy::drop));
  ASSERT_TRUE(block && drop);
  ASSERT_EQ(pub->publish(bytes_of("a"), std::chrono::seconds(5)), PublishStatus::ok);
  Claim c;
  ASSERT_EQ(pub->try_claim(50, c), PublishStatus::ok);
  pub->abandon(c);
  ASSERT_EQ(pub->publish(bytes_of("c"), std::chrono::seconds(5)), PublishStatus::ok);
  for (Subscriber* s : {&*block, &*drop}) {
    const auto got = receive_messages(*s, 2);
    ASSERT_EQ(got.size(), 2u);
    EXPECT_EQ(got[0].payload, "a");
    EXPECT_EQ(got[1].payload, "c");
    EXPECT_EQ(got[1].sequence, 3u);
    EXPECT_EQ(got[1].lost_before, 1u);
    EXPECT_EQ(s->lost(), 1u);
  }
}

// Producer A claims and is slow to write (preempted, say); producer B keeps publishing. With no
// block subscriber nothing gates B, but B must still not reuse A's space while A may write into
// it: otherwise A's bytes land in B's committed records, which every reader then accepts (they
// check for laps by claims, not for late writes by a producer that was lapped).
TEST(Publisher, AnotherProducerNeverReusesSpaceOfAClaimNotYetCommitted) {
  ChannelGuard ch(unique_channel("lapclaim"));
  const ChannelOptions opts = small_options();
  auto a = Publisher::open(ch.name(), opts);
  auto b = Publisher::open(ch.name(), opts);
  ASSERT_TRUE(a && b);
  Claim held;
  ASSERT_EQ(a->try_claim(100, held), PublishStatus::ok);
  ASSERT_EQ(held.sequence(), 1u);

  // B publishes 100-byte messages (160-byte frames) until it has gone two laps and a bit past
  // A's claim at position 0, or until it is held back.
  const std::uint64_t cap = opts.capacity;
  const std::vector<std::byte> mine(100, std::byte{0xbb});
  std::uint64_t position = core::frame_size(100);  // after A's claim
  int published = 0;
  PublishStatus last = PublishStatus::ok;
  while (position < 2 * cap + 2000) {
    last = b->try_publish(mine);
    if (last != PublishStatus::ok) break;
    ++published;
    if ((position & (cap - 1)) + core::frame_size(100) > cap) position += cap - (position & (cap - 1));
    position += core::frame_size(100);
  }
  std::printf("B published %d messages past A's open claim; last status %s\n", published,
              to_string(last));

  // A finishes late.
  std::memset(held.data(), 0xaa, 100);
  const PublishStatus committed = a->commit(held);
  std::printf("A's commit: %s\n", to_string(committed));

  // Every message B published and a reader can still find is B's, byte for byte.
  auto sub = Subscriber::open(ch.name(), sub_options(Policy::drop, StartFrom::earliest));
  ASSERT_TRUE(sub);
  std::uint64_t checked = 0, damaged = 0, first_damaged = 0;
  for (const Received& r : receive_messages(*sub, 10000, std::chrono::milliseconds(500))) {
    if (r.sequence == 1) continue;  // A's own message, if it survived
    ++checked;
    if (r.payload != std::string(100, '\xbb') && damaged++ == 0) first_damaged = r.sequence;
  }
  EXPECT_GT(checked, 0u);
  EXPECT_EQ(damaged, 0u) << "sequence " << first_damaged
                         << " (B's) was overwritten by A's late write into a lapped claim";
}

TEST(Publisher, BatchClaimHandsOutConsecutiveSequencesInOneLap) {
  ChannelGuard ch(unique_channel("batch"));
  auto pub = Publisher::open(ch.name(), small_options());
  ASSERT_TRUE(pub);
  auto sub = Subscriber::open(ch.name(), sub_options(Policy::block));
  ASSERT_TRUE(sub);
  ASSERT_EQ(pub->publish(bytes_of("first"), std::chrono::seconds(5)), PublishStatus::ok);
  // Enough batches to wrap the 64 KiB ring several times (padding goes before a batch).
  std::uint64_t want_seq = 2;
  for (int round = 0; round < 200; ++round) {
    // 1024 bytes of frames: within one maximum-size frame (1056), which bounds a batch.
    const std::uint32_t sizes[5] = {1, 200, 17, 500, 64};
    Claim claims[5];
    ASSERT_EQ(pub->try_claim_batch(sizes, claims), PublishStatus::ok) << "round " << round;
    for (int k = 0; k < 5; ++k) {
      EXPECT_EQ(claims[k].sequence(), want_seq + k);
      EXPECT_EQ(claims[k].size(), sizes[k]);
      std::memset(claims[k].data(), 'a' + k, sizes[k]);
    }
    // The claims are contiguous: each starts one frame after the previous.
    for (int k = 1; k < 5; ++k) {
      EXPECT_EQ(claims[k].data() - claims[k - 1].data(),
                static_cast<std::ptrdiff_t>(core::frame_size(sizes[k - 1])));
    }
    for (Claim& c : claims) ASSERT_EQ(pub->commit(c), PublishStatus::ok);
    const auto got = receive_messages(*sub, round == 0 ? 6 : 5);
    ASSERT_EQ(got.size(), round == 0 ? 6u : 5u);
    const std::size_t base = round == 0 ? 1 : 0;
    for (int k = 0; k < 5; ++k) {
      EXPECT_EQ(got[base + k].sequence, want_seq + k);
      EXPECT_EQ(got[base + k].payload, std::string(sizes[k], static_cast<char>('a' + k)));
    }
    want_seq += 5;
  }
}

TEST(Publisher, OversizedBatchIsTooLargeAndClaimsNothing) {
  ChannelGuard ch(unique_channel("batchlimit"));
  auto pub = Publisher::open(ch.name(), small_options());
  ASSERT_TRUE(pub);
  std::vector<std::uint32_t> sizes(Publisher::kMaxBatch + 1, 1);
  std::vector<Claim> claims(sizes.size());
  EXPECT_EQ(pub->try_claim_batch(sizes, claims), PublishStatus::too_large);
  // 20 frames of 1056 bytes: more than a quarter of 64 KiB.
  sizes.assign(20, 1024);
  EXPECT_EQ(pub->try_claim_batch(sizes, claims), PublishStatus::too_large);
  sizes.assign(2, 1025);
  EXPECT_EQ(pub->try_claim_batch(sizes, claims), PublishStatus::too_large);
  sizes.assign(3, 10);
  EXPECT_EQ(pub->try_claim_batch(sizes, std::span<Claim>(claims.data(), 2)),
            PublishStatus::too_large);
  // Nothing was claimed by any of them.
  Claim c;
  ASSERT_EQ(pub->try_claim(1, c), PublishStatus::ok);
  EXPECT_EQ(c.sequence(), 1u);
  ASSERT_EQ(pub->commit(c), PublishStatus::ok);
}

ChannelOptions single_producer_options() {
  ChannelOptions o = small_options();
  o.single_producer = true;
  return o;
}

TEST(SingleProducer, SecondPublisherIsBusyUntilTheFirstCloses) {
  ChannelGuard ch(unique_channel("single"));
  {
    auto first = Publisher::open(ch.name(), single_producer_options());
    ASSERT_TRUE(first) << first.error().message;
    EXPECT_TRUE(first->info().single_producer);
    auto sub = Subscriber::open(ch.name(), sub_options(Policy::drop));
    ASSERT_TRUE(sub);
    EXPECT_TRUE(sub->info().single_producer);
    // Not in this process, and not in another one while this one lives.
    auto second = Publisher::open(ch.name(), single_producer_options());
    ASSERT_FALSE(second);
    EXPECT_EQ(second.error().code, ErrorCode::busy) << second.error().message;
    // Asking for a multi-producer channel is refused; accepting what exists, the channel
    // decides, not the options.
    auto plain = Publisher::open(ch.name(), small_options());
    ASSERT_FALSE(plain);
    EXPECT_EQ(plain.error().code, ErrorCode::invalid_argument) << plain.error().message;
    ChannelOptions accepting = small_options();
    accepting.accept_existing = true;
    plain = Publisher::open(ch.name(), accepting);
    ASSERT_FALSE(plain);
    EXPECT_EQ(plain.error().code, ErrorCode::busy);
    Child other = Child::fork([&] {
      auto p = Publisher::open(ch.name(), single_producer_options());
      return p ? 0 : p.error().code == ErrorCode::busy ? 7 : 1;
    });
    auto st = other.wait(std::chrono::seconds(10));
    ASSERT_TRUE(st);
    EXPECT_EQ(st->code, 7) << st->describe();
    ASSERT_EQ(first->publish(bytes_of("one"), std::chrono::seconds(5)), PublishStatus::ok);
    EXPECT_EQ(receive(*sub, 1), std::vector<std::string>{"one"});
  }
  // Closed: the next publisher takes over and continues the sequence.
  auto next = Publisher::open(ch.name(), single_producer_options());
  ASSERT_TRUE(next) << next.error().message;
  Claim c;
  ASSERT_EQ(next->try_claim(3, c), PublishStatus::ok);
  EXPECT_EQ(c.sequence(), 2u);
  ASSERT_EQ(next->commit(c), PublishStatus::ok);
}

TEST(SingleProducer, OwnershipOfAKilledPublisherIsTakenOver) {
  ChannelGuard ch(unique_channel("singlekill"));
  ASSERT_TRUE(Publisher::open(ch.name(), single_producer_options()));  // creates, then closes
  Child owner = Child::fork([&] {
    auto p = Publisher::open(ch.name(), single_producer_options());
    if (!p) return 1;
    for (int i = 0; i < 10; ++i) {
      if (p->publish(bytes_of("x"), std::chrono::seconds(5)) != PublishStatus::ok) return 2;
    }
    std::printf("OWNER\n");
    std::fflush(stdout);
    for (;;) ::pause();
  });
  ASSERT_TRUE(owner.wait_for_line("OWNER", std::chrono::seconds(20))) << owner.output();
  auto busy = Publisher::open(ch.name(), single_producer_options());
  ASSERT_FALSE(busy);
  EXPECT_EQ(busy.error().code, ErrorCode::busy);
  owner.kill_hard();
  auto next = Publisher::open(ch.name(), single_producer_options());
  ASSERT_TRUE(next) << next.error().message;
  Claim c;
  ASSERT_EQ(next->try_claim(3, c), PublishStatus::ok);
  EXPECT_EQ(c.sequence(), 11u);  // it picks up the tail the dead owner left
  ASSERT_EQ(next->commit(c), PublishStatus::ok);
}

// A producer that dies after moving the tail but before writing any record header leaves a hole
// that only the tail describes. Readers must skip it after the abandon timeout, counting every
// sequence in it lost, whether it held one record (a single claim) or several (a batch claim).
class HeaderlessClaim : public ::testing::TestWithParam<int> {};

TEST_P(HeaderlessClaim, OfADeadProducerIsSkippedAndCountedLost) {
  const int records = GetParam();
  ChannelGuard ch(unique_channel("headerless"));
  auto pub = Publisher::open(ch.name(), small_options());
  ASSERT_TRUE(pub);
  SubscriberOptions o = sub_options(Policy::block);
  o.abandon_timeout = std::chrono::milliseconds(100);
  auto block = Subscriber::open(ch.name(), o);
  o.policy = Policy::drop;
  auto drop = Subscriber::open(ch.name(), o);
  ASSERT_TRUE(block && drop);
  ASSERT_EQ(pub->publish(bytes_of("a"), std::chrono::seconds(5)), PublishStatus::ok);
  {
    // What try_claim_batch leaves when its process dies right after reserving: the tail moved
    // over `records` frames of 100-byte payloads, nothing written there.
    auto files = ChannelFiles::open(ch.name(), true);
    ASSERT_TRUE(files);
    core::TailWord& tail = files->ring().tail;
    tail.next_sequence += static_cast<std::uint64_t>(records);
    tail.position += static_cast<std::uint64_t>(records) * core::frame_size(100);
  }
  ASSERT_EQ(pub->publish(bytes_of("z"), std::chrono::seconds(5)), PublishStatus::ok);
  for (Subscriber* s : {&*block, &*drop}) {
    const auto got = receive_messages(*s, 2, std::chrono::seconds(5));
    ASSERT_EQ(got.size(), 2u) << (s == &*block ? "block" : "drop")
                              << " subscriber is stuck at sequence " << s->next_sequence();
    EXPECT_EQ(got[1].payload, "z");
    EXPECT_EQ(got[1].sequence, 2u + records);
    EXPECT_EQ(got[1].lost_before, static_cast<std::uint64_t>(records));
  }
}

INSTANTIATE_TEST_SUITE_P(Publisher, HeaderlessClaim, ::testing::Values(1, 2, 3));

}  // namespace
}  // namespace shmbus
