// Subscribers within one process: where they start, their slots in the control segment (named,
// anonymous, dead owners), moving them, and being told about an eviction.
#include <unistd.h>

#include <chrono>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "ipc/control_layout.hpp"
#include "shmbus/shmbus.hpp"
#include "tests/support/inprocess.hpp"
#include "tests/support/process.hpp"
#include "tests/support/segments.hpp"

namespace shmbus {
namespace {

using namespace shmbus::test;

std::string numbered(std::uint64_t i) {
  std::string s = "m";  // (not "m" + to_string: GCC 12 misreports -Wrestrict on that)
  s += std::to_string(i);
  return s;
}

// Publishes "m<first>".."m<last>"; the channel's first message is sequence 1, so on a fresh
// channel "m<i>" is sequence i.
void publish_numbered(Publisher& pub, std::uint64_t first, std::uint64_t last) {
  for (std::uint64_t i = first; i <= last; ++i) {
    ASSERT_EQ(pub.publish(bytes_of(numbered(i)), std::chrono::seconds(5)), PublishStatus::ok);
  }
}

class StartPosition : public ::testing::TestWithParam<Policy> {};

TEST_P(StartPosition, EarliestStartsAtTheFirstMessageOfAFreshRing) {
  ChannelGuard ch(unique_channel("earliest"));
  auto pub = Publisher::open(ch.name(), small_options());
  ASSERT_TRUE(pub);
  publish_numbered(*pub, 1, 10);
  auto sub = Subscriber::open(ch.name(), sub_options(GetParam(), StartFrom::earliest));
  ASSERT_TRUE(sub) << sub.error().message;
  const auto got = receive_messages(*sub, 10);
  ASSERT_EQ(got.size(), 10u);
  EXPECT_EQ(got.front().sequence, 1u);
  EXPECT_EQ(got.front().payload, "m1");
  EXPECT_EQ(got.back().sequence, 10u);
}

TEST_P(StartPosition, LatestSkipsWhatWasPublishedBefore) {
  ChannelGuard ch(unique_channel("latest"));
  auto pub = Publisher::open(ch.name(), small_options());
  ASSERT_TRUE(pub);
  publish_numbered(*pub, 1, 10);
  auto sub = Subscriber::open(ch.name(), sub_options(GetParam(), StartFrom::latest));
  ASSERT_TRUE(sub) << sub.error().message;
  EXPECT_EQ(sub->next_sequence(), 11u);
  publish_numbered(*pub, 11, 12);
  const auto got = receive_messages(*sub, 2);
  ASSERT_EQ(got.size(), 2u);
  EXPECT_EQ(got[0].sequence, 11u);
  EXPECT_EQ(got[0].lost_before, 0u);
}

TEST_P(StartPosition, SequenceStartsExactlyThereWhenItIsStillInTheRing) {
  ChannelGuard ch(unique_channel("fromseq"));
  auto pub = Publisher::open(ch.name(), small_options());
  ASSERT_TRUE(pub);
  // Several laps of a 64 KiB ring (about 1800 frames of 32-64 bytes a lap).
  publish_numbered(*pub, 1, 6000);
  for (std::uint64_t start : {5990u, 5500u, 6000u}) {
    SubscriberOptions o = sub_options(GetParam(), StartFrom::sequence);
    o.start_sequence = start;
    auto sub = Subscriber::open(ch.name(), o);
    ASSERT_TRUE(sub) << sub.error().message;
    const auto got = receive_messages(*sub, 6001 - start);
    ASSERT_EQ(got.size(), 6001 - start) << "start " << start;
    EXPECT_EQ(got.front().sequence, start);
    EXPECT_EQ(got.front().payload, numbered(start));
    EXPECT_EQ(got.back().sequence, 6000u);
  }
}

TEST_P(StartPosition, SequenceAlreadyOverwrittenStartsAtTheEarliestRetained) {
  ChannelGuard ch(unique_channel("goneseq"));
  auto pub = Publisher::open(ch.name(), small_options());
  ASSERT_TRUE(pub);
  publish_numbered(*pub, 1, 6000);
  SubscriberOptions o = sub_options(GetParam(), StartFrom::sequence);
  o.start_sequence = 5;
  auto sub = Subscriber::open(ch.name(), o);
  ASSERT_TRUE(sub) << sub.error().message;
  const auto got = receive_messages(*sub, 1);
  ASSERT_EQ(got.size(), 1u);
  EXPECT_GT(got[0].sequence, 5u);
  EXPECT_LT(got[0].sequence, 6000u);
  EXPECT_EQ(got[0].payload, numbered(got[0].sequence));
}

TEST_P(StartPosition, SequenceInTheFutureDeliversFromThatSequenceOn) {
  ChannelGuard ch(unique_channel("futureseq"));
  auto pub = Publisher::open(ch.name(), small_options());
  ASSERT_TRUE(pub);
  publish_numbered(*pub, 1, 10);
  SubscriberOptions o = sub_options(GetParam(), StartFrom::sequence);
  o.start_sequence = 15;
  auto sub = Subscriber::open(ch.name(), o);
  ASSERT_TRUE(sub) << sub.error().message;
  publish_numbered(*pub, 11, 20);
  const auto got = receive_messages(*sub, 6);
  ASSERT_EQ(got.size(), 6u);
  EXPECT_EQ(got.front().sequence, 15u);
  EXPECT_EQ(got.front().payload, "m15");
}

INSTANTIATE_TEST_SUITE_P(Subscriber, StartPosition, ::testing::Values(Policy::block, Policy::drop),
                         [](const auto& info) { return std::string(to_string(info.param)); });

TEST(SubscriberSlots, NamedSubscriberIsBusyWhileItsOwnerLivesAndResumesAfterItCloses) {
  ChannelGuard ch(unique_channel("named"));
  auto pub = Publisher::open(ch.name(), small_options());
  ASSERT_TRUE(pub);
  SubscriberOptions o = sub_options(Policy::block);
  o.name = "reader";
  {
    auto first = Subscriber::open(ch.name(), o);
    ASSERT_TRUE(first) << first.error().message;
    auto second = Subscriber::open(ch.name(), o);
    ASSERT_FALSE(second);
    EXPECT_EQ(second.error().code, ErrorCode::busy) << second.error().message;
    for (const char* text : {"a", "b", "c", "d"}) {
      ASSERT_EQ(pub->publish(bytes_of(text), std::chrono::seconds(5)), PublishStatus::ok);
    }
    EXPECT_EQ(receive(*first, 2).size(), 2u);
    // Closing it detaches the slot, keeping the name and the position.
  }
  auto files = ChannelFiles::open(ch.name());
  ASSERT_TRUE(files);
  auto slot = files->find_named_slot("reader");
  ASSERT_TRUE(slot);
  EXPECT_EQ(detail::owner_state(files->subscriber_slots()[*slot].owner.load()),
            detail::SlotState::detached);
  auto again = Subscriber::open(ch.name(), o);
  ASSERT_TRUE(again) << again.error().message;
  EXPECT_EQ(again->next_sequence(), 3u);
  EXPECT_EQ(receive(*again, 2), (std::vector<std::string>{"c", "d"}));
}

TEST(SubscriberSlots, ClosingAnAnonymousSubscriberFreesItsSlot) {
  ChannelGuard ch(unique_channel("anon"));
  ASSERT_TRUE(Publisher::open(ch.name(), small_options()));
  auto files = ChannelFiles::open(ch.name());
  ASSERT_TRUE(files);
  using detail::SlotState;
  for (Policy policy : {Policy::block, Policy::drop}) {
    {
      auto sub = Subscriber::open(ch.name(), sub_options(policy));
      ASSERT_TRUE(sub) << sub.error().message;
      EXPECT_EQ(files->slot_states()[static_cast<int>(SlotState::active)], 1);
    }
    EXPECT_EQ(files->slot_states()[static_cast<int>(SlotState::free)],
              static_cast<int>(detail::kDefaultSubscriberSlots));
  }
}

// Move-assigning onto an open subscriber must close the old one exactly once and leave the
// target owning the source's slot (run under ASan to see a double release).
TEST(SubscriberSlots, MoveAssignmentOntoAnOpenSubscriberClosesItOnce) {
  ChannelGuard ch(unique_channel("moveassign"));
  auto pub = Publisher::open(ch.name(), small_options());
  ASSERT_TRUE(pub);
  auto files = ChannelFiles::open(ch.name());
  ASSERT_TRUE(files);
  {
    auto a = Subscriber::open(ch.name(), sub_options(Policy::drop));
    auto b = Subscriber::open(ch.name(), sub_options(Policy::drop));
    ASSERT_TRUE(a && b);
    EXPECT_EQ(files->slot_states()[static_cast<int>(detail::SlotState::active)], 2);
    *a = std::move(*b);
    EXPECT_EQ(files->slot_states()[static_cast<int>(detail::SlotState::active)], 1);
    ASSERT_EQ(pub->publish(bytes_of("x"), std::chrono::seconds(5)), PublishStatus::ok);
    EXPECT_EQ(receive(*a, 1), std::vector<std::string>{"x"});
  }
  EXPECT_EQ(files->slot_states()[static_cast<int>(detail::SlotState::active)], 0);
}

// A subscriber killed with -9 never runs its destructor. Its slot must not be lost for good: once
// every slot has been taken by a dead process, a new subscriber must still be able to register.
class DeadSubscriberSlots : public ::testing::TestWithParam<Policy> {};

TEST_P(DeadSubscriberSlots, AreReclaimedForNewSubscribers) {
  ChannelGuard ch(unique_channel("deadslots"));
  ASSERT_TRUE(Publisher::open(ch.name(), small_options()));
  const Policy policy = GetParam();
  for (std::uint32_t i = 0; i < detail::kDefaultSubscriberSlots; ++i) {
    Child c = Child::fork([&] {
      auto sub = Subscriber::open(ch.name(), sub_options(policy));
      ::_exit(sub ? 0 : 1);  // dies without closing, as after kill -9
      return 0;
    });
    auto st = c.wait(std::chrono::seconds(10));
    ASSERT_TRUE(st && st->ok()) << "subscriber " << i;
  }
  auto files = ChannelFiles::open(ch.name());
  ASSERT_TRUE(files);
  EXPECT_EQ(files->slot_states()[static_cast<int>(detail::SlotState::active)],
            static_cast<int>(detail::kDefaultSubscriberSlots));
  auto sub = Subscriber::open(ch.name(), sub_options(policy));
  EXPECT_TRUE(sub) << sub.error().message;
}

INSTANTIATE_TEST_SUITE_P(Subscriber, DeadSubscriberSlots,
                         ::testing::Values(Policy::drop, Policy::block),
                         [](const auto& info) { return std::string(to_string(info.param)); });

// A peer that cannot see this process (another pid namespace, say) decides it is dead and evicts
// it. The producers stop waiting for it and overwrite what it has not read: poll must say so
// (PollStatus::evicted) instead of carrying on as if it still gated them.
TEST(SubscriberEviction, AnEvictedSubscriberLearnsItFromPoll) {
  ChannelGuard ch(unique_channel("evicted"));
  auto pub = Publisher::open(ch.name(), small_options());
  ASSERT_TRUE(pub);
  auto sub = Subscriber::open(ch.name(), sub_options(Policy::block));
  ASSERT_TRUE(sub) << sub.error().message;
  auto files = ChannelFiles::open(ch.name(), true);
  ASSERT_TRUE(files);
  const auto me = static_cast<std::uint32_t>(::getpid());
  bool evicted = false;
  for (detail::SubscriberSlot& s : files->subscriber_slots()) {
    std::uint64_t owner = detail::owner_word(me, detail::SlotState::active);
    if (s.owner.compare_exchange_strong(owner, detail::owner_word(me, detail::SlotState::evicted))) {
      files->control().evictions.fetch_add(1);
      files->control().gate_epoch.fetch_add(1);
      evicted = true;
    }
  }
  ASSERT_TRUE(evicted);
  // Nobody gates now: three laps go through without back-pressure.
  const std::vector<std::byte> payload(200, std::byte{7});
  for (int i = 0; i < 3 * 300; ++i) ASSERT_EQ(pub->try_publish(payload), PublishStatus::ok);
  for (int i = 0; i < 4096 && sub->status() == PollStatus::ok; ++i) {
    sub->poll([](const Message&) {});
  }
  EXPECT_EQ(sub->status(), PollStatus::evicted);
}


// A dead named block subscriber's slot gates until its name is taken over; a successor under
// another policy must release the producers at once, even though it leaves the slot's position
// (the word a held-back producer watches) where it was.
class GatingSlotTakenOverByANonGatingSubscriber : public ::testing::TestWithParam<bool> {};

TEST_P(GatingSlotTakenOverByANonGatingSubscriber, ReleasesTheProducers) {
  const bool manual_release = GetParam();
  ChannelGuard ch(unique_channel(manual_release ? "takeovm" : "takeov"));
  auto pub = Publisher::open(ch.name(), small_options());
  ASSERT_TRUE(pub);
  Child dead = Child::fork([&] {
    SubscriberOptions o = sub_options(Policy::block, StartFrom::latest);
    o.name = "taken-over";
    o.liveness_timeout = std::chrono::hours(1);
    auto s = Subscriber::open(ch.name(), o);
    if (!s) return 2;
    std::fflush(nullptr);
    ::_exit(0);  // dies without detaching: the slot stays active and gating
  });
  ASSERT_TRUE(dead.wait(std::chrono::seconds(10)));
  const std::vector<std::byte> filler(200, std::byte{'x'});
  int published = 0;
  while (pub->try_publish(filler) == PublishStatus::ok) ++published;
  ASSERT_GT(published, 0);
  ASSERT_EQ(pub->try_publish(bytes_of("held")), PublishStatus::back_pressured);

  SubscriberOptions o = sub_options(Policy::drop, StartFrom::latest);
  o.name = "taken-over";
  o.manual_release = manual_release;
  auto successor = Subscriber::open(ch.name(), o);
  ASSERT_TRUE(successor) << successor.error().message;
  // Nothing gates any more: the very next attempt succeeds.
  EXPECT_EQ(pub->try_publish(bytes_of("free")), PublishStatus::ok);
}

INSTANTIATE_TEST_SUITE_P(PollOrManualRelease, GatingSlotTakenOverByANonGatingSubscriber,
                         ::testing::Bool());

}  // namespace
}  // namespace shmbus
