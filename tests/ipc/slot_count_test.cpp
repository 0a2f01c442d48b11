// Slot counts chosen per channel (ChannelOptions::subscriber_slots, producer_slots): the creator's
// counts are every opener's, a channel of 1024 subscriber slots holds 1024 subscribers of mixed
// policies and refuses the next, the producers are gated by a block subscriber in the last slot,
// slots are taken lowest free first under a high-water mark that only grows, the tools report
// every slot, and a control segment whose header declares counts or offsets that do not fit it is
// refused with a clear message.
#include <sys/resource.h>
#include <unistd.h>

#include <cstdint>
#include <cstring>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include <gtest/gtest.h>
#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "ipc/control_layout.hpp"
#include "ipc/control_segment.hpp"
#include "shmbus/shmbus.hpp"
#include "shmbus/stats.hpp"
#include "tests/support/command.hpp"
#include "tests/support/inprocess.hpp"
#include "tests/support/process.hpp"
#include "tests/support/segments.hpp"

namespace shmbus {
namespace {

using namespace shmbus::test;

constexpr std::uint32_t kManySlots = 1024;
constexpr std::size_t kPayloadSize = 128;

ChannelOptions counted(std::uint32_t subscriber_slots, std::uint32_t producer_slots) {
  ChannelOptions o = small_options();
  o.subscriber_slots = subscriber_slots;
  o.producer_slots = producer_slots;
  return o;
}

// Every subscriber in this process keeps its ring mapping's descriptor (the channel's use lock):
// a thousand of them need more than the common default of 1024 descriptors.
bool allow_descriptors(rlim_t wanted) {
  rlimit limit{};
  if (::getrlimit(RLIMIT_NOFILE, &limit) != 0) return false;
  if (limit.rlim_cur >= wanted) return true;
  if (limit.rlim_max < wanted) return false;
  limit.rlim_cur = wanted;
  return ::setrlimit(RLIMIT_NOFILE, &limit) == 0;
}

// The payload of message `n`: its number, then a pattern derived from it.
std::vector<std::byte> payload_of(std::uint64_t n) {
  std::vector<std::byte> bytes(kPayloadSize);
  std::memcpy(bytes.data(), &n, sizeof n);
  for (std::size_t i = sizeof n; i < bytes.size(); ++i) {
    bytes[i] = static_cast<std::byte>((n * 31 + i) & 0xff);
  }
  return bytes;
}

// Policy of the subscriber opened `i`-th by fill(): block and drop alternate.
Policy policy_of(std::uint32_t i) { return i % 2 == 0 ? Policy::block : Policy::drop; }

TEST(SlotCounts, TheCreatorsCountsAreWhatEveryOpenerGets) {
  ChannelGuard ch(unique_channel("counts"));
  auto pub = Publisher::open(ch.name(), counted(100, 3));
  ASSERT_TRUE(pub) << pub.error().message;
  EXPECT_EQ(pub->info().subscriber_slots, 100u);
  EXPECT_EQ(pub->info().producer_slots, 3u);
  // Another publisher asking for other counts is refused, naming both; accepting the existing
  // configuration, it opens the channel as it is, as with capacity.
  auto refused = Publisher::open(ch.name(), counted(2000, 500));
  ASSERT_FALSE(refused);
  EXPECT_EQ(refused.error().code, ErrorCode::invalid_argument);
  EXPECT_NE(refused.error().message.find("100 subscriber slots, 3 producer slots"),
            std::string::npos) << refused.error().message;
  EXPECT_NE(refused.error().message.find("2000 subscriber slots, 500 producer slots"),
            std::string::npos) << refused.error().message;
  ChannelOptions accepting = counted(2000, 500);
  accepting.accept_existing = true;
  auto other = Publisher::open(ch.name(), accepting);
  ASSERT_TRUE(other) << other.error().message;
  EXPECT_EQ(other->info().subscriber_slots, 100u);
  EXPECT_EQ(other->info().producer_slots, 3u);
  EXPECT_EQ(other->info().incarnation, pub->info().incarnation);
  auto sub = Subscriber::open(ch.name(), sub_options(Policy::drop));
  ASSERT_TRUE(sub) << sub.error().message;
  EXPECT_EQ(sub->info().subscriber_slots, 100u);
  EXPECT_EQ(sub->info().producer_slots, 3u);
  auto st = read_channel_stats(ch.name());
  ASSERT_TRUE(st) << st.error().message;
  EXPECT_EQ(st->subscriber_slots, 100u);
  EXPECT_EQ(st->producer_slots, 3u);
  auto files = ChannelFiles::open(ch.name());
  ASSERT_TRUE(files);
  EXPECT_EQ(files->subscriber_slots().size(), 100u);
  EXPECT_EQ(files->producer_slots().size(), 3u);
}

TEST(SlotCounts, TheDefaultsAreSixtyFourSubscribersAndThirtyTwoProducers) {
  ChannelGuard ch(unique_channel("defcounts"));
  auto pub = Publisher::open(ch.name(), small_options());
  ASSERT_TRUE(pub) << pub.error().message;
  EXPECT_EQ(pub->info().subscriber_slots, 64u);
  EXPECT_EQ(pub->info().producer_slots, 32u);
}

TEST(SlotCounts, CountsOutOfRangeAreInvalidArgumentAndCreateNothing) {
  ChannelGuard ch(unique_channel("badcounts"));
  const std::pair<std::uint32_t, std::uint32_t> bad[] = {{0, 32}, {4097, 32}, {64, 0},
                                                         {64, 1025}};
  for (const auto& [subscribers, producers] : bad) {
    auto pub = Publisher::open(ch.name(), counted(subscribers, producers));
    ASSERT_FALSE(pub) << subscribers << " " << producers;
    EXPECT_EQ(pub.error().code, ErrorCode::invalid_argument) << pub.error().message;
    EXPECT_NE(pub.error().message.find(subscribers == 64 ? "producer_slots" : "subscriber_slots"),
              std::string::npos)
        << pub.error().message;
    EXPECT_TRUE(channel_objects(ch.name()).empty());
  }
  // The bounds themselves are accepted.
  auto largest = Publisher::open(ch.name(), counted(4096, 1024));
  ASSERT_TRUE(largest) << largest.error().message;
  EXPECT_EQ(largest->info().subscriber_slots, 4096u);
  EXPECT_EQ(largest->info().producer_slots, 1024u);
}

TEST(SlotCounts, ProducersBeyondTheProducerSlotsAreBusy) {
  ChannelGuard ch(unique_channel("fewprod"));
  auto first = Publisher::open(ch.name(), counted(4, 2));
  ASSERT_TRUE(first) << first.error().message;
  auto second = Publisher::open(ch.name(), counted(4, 2));
  ASSERT_TRUE(second) << second.error().message;
  auto third = Publisher::open(ch.name(), counted(4, 2));
  ASSERT_FALSE(third);
  EXPECT_EQ(third.error().code, ErrorCode::busy);
  EXPECT_NE(third.error().message.find("all 2 producer slots are in use"), std::string::npos)
      << third.error().message;
}

// Slots go lowest free first, and the high-water mark stays at the most ever used at once.
TEST(SlotCounts, SlotsAreTakenLowestFreeFirstUnderAHighWaterMark) {
  ChannelGuard ch(unique_channel("lowest"));
  auto pub = Publisher::open(ch.name(), counted(kManySlots, 8));
  ASSERT_TRUE(pub) << pub.error().message;
  auto files = ChannelFiles::open(ch.name());
  ASSERT_TRUE(files);
  EXPECT_EQ(files->control().subscriber_slots_high_water.load(), 0u);
  EXPECT_EQ(files->control().producer_slots_high_water.load(), 1u);
  std::vector<std::optional<Subscriber>> subs;
  for (int i = 0; i < 3; ++i) {
    auto sub = Subscriber::open(ch.name(), sub_options(policy_of(i)));
    ASSERT_TRUE(sub) << sub.error().message;
    subs.emplace_back(std::move(*sub));
  }
  EXPECT_EQ(files->control().subscriber_slots_high_water.load(), 3u);
  subs[0].reset();  // frees slot 0
  auto again = Subscriber::open(ch.name(), sub_options(Policy::drop));
  ASSERT_TRUE(again) << again.error().message;
  EXPECT_EQ(files->control().subscriber_slots_high_water.load(), 3u);
  auto st = read_channel_stats(ch.name());
  ASSERT_TRUE(st) << st.error().message;
  ASSERT_EQ(st->subscribers.size(), 3u);
  EXPECT_EQ(st->subscribers[0].slot, 0u);
  EXPECT_EQ(st->subscribers[0].policy, Policy::drop);  // the new one, in the freed slot
  EXPECT_EQ(st->subscribers[2].slot, 2u);
}

// A block subscriber's slot taken over by a drop subscriber stops gating: the block hint follows
// the slot's latest registrant.
TEST(SlotCounts, ADropSubscriberInAFormerBlockSlotDoesNotGate) {
  ChannelGuard ch(unique_channel("hint"));
  auto pub = Publisher::open(ch.name(), counted(8, 2));
  ASSERT_TRUE(pub) << pub.error().message;
  auto files = ChannelFiles::open(ch.name());
  ASSERT_TRUE(files);
  {
    auto block = Subscriber::open(ch.name(), sub_options(Policy::block));
    ASSERT_TRUE(block) << block.error().message;
    EXPECT_EQ(files->control().block_slots[0].load() & 1, 1u);
  }
  auto drop = Subscriber::open(ch.name(), sub_options(Policy::drop));
  ASSERT_TRUE(drop) << drop.error().message;
  EXPECT_EQ(files->control().block_slots[0].load() & 1, 0u);
  // Three laps of the ring: nothing gates.
  const std::uint64_t laps = 3 * (pub->info().capacity / kPayloadSize);
  for (std::uint64_t n = 1; n <= laps; ++n) {
    ASSERT_EQ(pub->try_publish(payload_of(n)), PublishStatus::ok) << "message " << n;
  }
}

// Opens `count` subscribers on `channel`, the i-th with policy(i); stops at the first failure.
template <typename PolicyOf>
std::vector<Subscriber> fill(const std::string& channel, std::uint32_t count, PolicyOf policy) {
  std::vector<Subscriber> subs;
  subs.reserve(count);
  for (std::uint32_t i = 0; i < count; ++i) {
    auto sub = Subscriber::open(channel, sub_options(policy(i)));
    EXPECT_TRUE(sub) << "subscriber " << i << ": " << sub.error().message;
    if (!sub) break;
    subs.push_back(std::move(*sub));
  }
  return subs;
}

TEST(SlotCounts, AThousandSubscribersFitAndTheNextIsBusyAndToolsReportThemAll) {
  if (!allow_descriptors(kManySlots + 256)) GTEST_SKIP() << "too few file descriptors allowed";
  ChannelGuard ch(unique_channel("thousand"));
  auto pub = Publisher::open(ch.name(), counted(kManySlots, 4));
  ASSERT_TRUE(pub) << pub.error().message;
  std::vector<Subscriber> subs = fill(ch.name(), kManySlots, policy_of);
  ASSERT_EQ(subs.size(), kManySlots);
  for (Policy policy : {Policy::drop, Policy::block}) {
    auto extra = Subscriber::open(ch.name(), sub_options(policy));
    ASSERT_FALSE(extra);
    EXPECT_EQ(extra.error().code, ErrorCode::busy);
    EXPECT_NE(extra.error().message.find("all 1024 subscriber slots are in use"),
              std::string::npos)
        << extra.error().message;
  }

  // Everybody receives what is published (the block ones gate; nobody falls behind here).
  for (std::uint64_t n = 1; n <= 3; ++n) {
    ASSERT_EQ(pub->publish(payload_of(n), std::chrono::seconds(5)), PublishStatus::ok);
  }
  for (std::size_t i = 0; i < subs.size(); i += 97) {
    const auto got = receive_messages(subs[i], 3);
    ASSERT_EQ(got.size(), 3u) << "subscriber " << i;
    for (std::uint64_t n = 1; n <= 3; ++n) {
      EXPECT_EQ(got[n - 1].sequence, n);
      const auto want = payload_of(n);
      EXPECT_EQ(got[n - 1].payload,
                std::string(reinterpret_cast<const char*>(want.data()), want.size()));
    }
  }

  auto st = read_channel_stats(ch.name());
  ASSERT_TRUE(st) << st.error().message;
  EXPECT_EQ(st->subscriber_slots, kManySlots);
  ASSERT_EQ(st->subscribers.size(), kManySlots);
  EXPECT_EQ(st->corrupt_slots, 0u);
  for (std::uint32_t i = 0; i < kManySlots; ++i) {
    EXPECT_EQ(st->subscribers[i].slot, i);
    EXPECT_EQ(st->subscribers[i].policy, policy_of(i)) << "slot " << i;
    EXPECT_EQ(st->subscribers[i].pid, static_cast<std::uint32_t>(::getpid()));
  }

  const RunResult r = run_command({SHMBUS_CLI, "stat", ch.name(), "--json", "--interval-ms", "0"});
  ASSERT_TRUE(r.status.ok()) << r.status.describe() << r.out;
  const auto j = nlohmann::json::parse(r.out);
  EXPECT_EQ(j["subscriber_slots"], kManySlots);
  EXPECT_EQ(j["producer_slots"], 4u);
  ASSERT_EQ(j["subscribers"].size(), kManySlots);
  std::set<std::uint32_t> slots;
  for (const auto& s : j["subscribers"]) slots.insert(s["slot"].get<std::uint32_t>());
  EXPECT_EQ(slots.size(), kManySlots);
  EXPECT_EQ(*slots.rbegin(), kManySlots - 1);
  EXPECT_EQ(j["subscribers"][kManySlots - 1]["policy"], "drop");
  EXPECT_EQ(j["subscribers"][kManySlots - 2]["policy"], "block");
}

// Only the block subscriber in the very last slot bounds the producers; the 1023 drop subscribers
// below it do not.
TEST(SlotCounts, ABlockSubscriberInTheLastSlotGatesThePublisher) {
  if (!allow_descriptors(kManySlots + 256)) GTEST_SKIP() << "too few file descriptors allowed";
  ChannelGuard ch(unique_channel("lastgate"));
  auto pub = Publisher::open(ch.name(), counted(kManySlots, 4));
  ASSERT_TRUE(pub) << pub.error().message;
  std::vector<Subscriber> subs = fill(ch.name(), kManySlots, [](std::uint32_t i) {
    return i == kManySlots - 1 ? Policy::block : Policy::drop;
  });
  ASSERT_EQ(subs.size(), kManySlots);
  auto st = read_channel_stats(ch.name());
  ASSERT_TRUE(st) << st.error().message;
  ASSERT_EQ(st->subscribers.size(), kManySlots);
  EXPECT_EQ(st->subscribers.back().slot, kManySlots - 1);
  EXPECT_EQ(st->subscribers.back().policy, Policy::block);

  // Without the block subscriber reading, the ring fills and stays full.
  const std::uint64_t capacity = pub->info().capacity;
  const std::uint64_t frame = (32 + kPayloadSize + 31) / 32 * 32;
  std::uint64_t published = 0;
  while (published < 2 * capacity / frame) {
    const PublishStatus status = pub->try_publish(payload_of(published + 1));
    if (status == PublishStatus::back_pressured) break;
    ASSERT_EQ(status, PublishStatus::ok);
    ++published;
  }
  EXPECT_LE(published, capacity / frame);
  EXPECT_GE(published, capacity / frame - 1);
  EXPECT_EQ(pub->try_publish(payload_of(published + 1)), PublishStatus::back_pressured);

  // It reads them all, in order, and the producer moves on.
  const auto got = receive_messages(subs.back(), published);
  ASSERT_EQ(got.size(), published);
  for (std::uint64_t n = 1; n <= published; ++n) {
    ASSERT_EQ(got[n - 1].sequence, n);
    std::uint64_t number = 0;
    std::memcpy(&number, got[n - 1].payload.data(), sizeof number);
    ASSERT_EQ(number, n);
  }
  EXPECT_EQ(pub->try_publish(payload_of(published + 1)), PublishStatus::ok);
}

// Every way in: a subscriber of each policy, a publisher, the stats, `shmbus inspect`. Each must
// refuse the channel as corrupt with a message containing `says`.
void expect_refused(const std::string& channel, const std::string& says) {
  for (Policy policy : {Policy::block, Policy::drop}) {
    auto sub = Subscriber::open(channel, sub_options(policy));
    ASSERT_FALSE(sub) << says;
    EXPECT_EQ(sub.error().code, ErrorCode::corrupt) << sub.error().message;
    EXPECT_NE(sub.error().message.find(says), std::string::npos) << sub.error().message;
  }
  auto pub = Publisher::open(channel, small_options());
  ASSERT_FALSE(pub) << says;
  EXPECT_EQ(pub.error().code, ErrorCode::corrupt) << pub.error().message;
  EXPECT_NE(pub.error().message.find(says), std::string::npos) << pub.error().message;
  auto st = read_channel_stats(channel);
  ASSERT_FALSE(st) << says;
  EXPECT_EQ(st.error().code, ErrorCode::corrupt) << st.error().message;
  const std::vector<std::string> inspect = with_stderr_captured({SHMBUS_CLI, "inspect", channel});
  const RunResult r = run_command(inspect);
  EXPECT_EQ(r.status.code, 1) << r.status.describe();
  EXPECT_NE(r.out.find(says), std::string::npos) << r.out;
}

// A channel of the default counts whose control header a test rewrites: `truth` is what it
// declared when created.
class DamagedHeader : public ::testing::Test {
 protected:
  void SetUp() override {
    auto opened = Publisher::open(ch_.name(), counted(64, 32));
    ASSERT_TRUE(opened) << opened.error().message;
    pub_.emplace(std::move(*opened));
    files_ = ChannelFiles::open(ch_.name(), true);
    ASSERT_TRUE(files_);
    truth_ = detail::declared_layout(header());
  }
  detail::ControlHeader& header() { return files_->control(); }

  ChannelGuard ch_{unique_channel("liar")};
  std::optional<Publisher> pub_;
  std::optional<ChannelFiles> files_;
  detail::ControlLayout truth_;
};

TEST_F(DamagedHeader, CountsThatDoNotFitTheSegmentAreRefusedAsCorrupt) {
  const detail::ControlLayout& truth = truth_;
  const detail::ControlLayout big = detail::control_layout(kManySlots, 32);
  struct Lie {
    detail::ControlLayout declared;
    std::string says;
  };
  const Lie lies[] = {
      // More slots than any channel may have, and none at all.
      {{5000, 32, truth.subscriber_slots_offset, truth.producer_slots_offset,
        truth.latency_offset, truth.segment_size},
       "declares 5000 subscriber slots and 32 producer slots"},
      {{64, 0, truth.subscriber_slots_offset, truth.producer_slots_offset, truth.latency_offset,
        truth.segment_size},
       "declares 64 subscriber slots and 0 producer slots"},
      {{64, 4'000'000'000u, truth.subscriber_slots_offset, truth.producer_slots_offset,
        truth.latency_offset, truth.segment_size},
       "declares 64 subscriber slots and 4000000000 producer slots"},
      // A plausible count with the offsets of the real one.
      {{kManySlots, 32, truth.subscriber_slots_offset, truth.producer_slots_offset,
        truth.latency_offset, truth.segment_size},
       "for 1024 subscriber and 32 producer slots"},
      // Offsets pointing anywhere.
      {{64, 32, truth.subscriber_slots_offset, UINT64_MAX - 100, truth.latency_offset,
        truth.segment_size},
       "for 64 subscriber and 32 producer slots"},
      // A consistent header for a segment eight times the real one's size.
      {{kManySlots, 32, big.subscriber_slots_offset, big.producer_slots_offset, big.latency_offset,
        big.segment_size},
       fmt::format("control segment is {} bytes, but its 1024 subscriber and 32 producer slots "
                   "take {}",
                   truth.segment_size, big.segment_size)},
  };
  for (const Lie& lie : lies) {
    detail::declare_layout(header(), lie.declared);
    expect_refused(ch_.name(), lie.says);
  }
  header().header_size = 4096;
  detail::declare_layout(header(), truth);
  expect_refused(ch_.name(), "declares a 4096 byte header");
  header().header_size = sizeof(detail::ControlHeader);

  // Put back, the channel works again: the refusals were about the lies alone.
  auto sub = Subscriber::open(ch_.name(), sub_options(Policy::block));
  ASSERT_TRUE(sub) << sub.error().message;
  ASSERT_EQ(pub_->publish(payload_of(1), std::chrono::seconds(5)), PublishStatus::ok);
  const auto got = receive_messages(*sub, 1);
  ASSERT_EQ(got.size(), 1u);
  EXPECT_EQ(got[0].sequence, 1u);
}

// Garbage in the declared layout (random values, and random bits of the real values) never gets
// past the check; nothing crashes.
TEST_F(DamagedHeader, RandomDeclaredLayoutsAreRefusedUnlessExactlyRight) {
  std::uint64_t state = 0x9e3779b97f4a7c15ULL;
  auto next = [&state] {
    state ^= state << 13;
    state ^= state >> 7;
    state ^= state << 17;
    return state;
  };
  int refused = 0;
  for (int round = 0; round < 300; ++round) {
    detail::ControlLayout d = truth_;
    const std::uint64_t which = next() % 6;
    const std::uint64_t value = round % 2 == 0 ? next() : (next() & 0xffff);
    switch (which) {
      case 0: d.subscriber_slots = static_cast<std::uint32_t>(value); break;
      case 1: d.producer_slots = static_cast<std::uint32_t>(value); break;
      case 2: d.subscriber_slots_offset = value; break;
      case 3: d.producer_slots_offset = value; break;
      case 4: d.latency_offset = value; break;
      default: d.segment_size = value; break;
    }
    detail::declare_layout(header(), d);
    const bool exact = d == truth_;
    auto sub = Subscriber::open(ch_.name(), sub_options(Policy::drop));
    auto st = read_channel_stats(ch_.name());
    if (exact) {
      EXPECT_TRUE(sub) << sub.error().message;
      EXPECT_TRUE(st) << st.error().message;
      continue;
    }
    ASSERT_FALSE(sub) << "round " << round;
    EXPECT_EQ(sub.error().code, ErrorCode::corrupt) << sub.error().message;
    ASSERT_FALSE(st) << "round " << round;
    ++refused;
  }
  EXPECT_GT(refused, 250);
  detail::declare_layout(header(), truth_);
  EXPECT_TRUE(read_channel_stats(ch_.name()));
}

}  // namespace
}  // namespace shmbus
