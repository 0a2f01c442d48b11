// Manual release (SubscriberOptions::manual_release): poll never publishes the position; only
// release(cursor()) does. Gating, in-place validity, resumption, and every slow path that moves
// the reader (lapped, corrupt, detach) leave the slot at the last released cursor.
#include <unistd.h>

#include <chrono>
#include <cstring>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "core/layout.hpp"
#include "ipc/control_layout.hpp"
#include "shmbus/shmbus.hpp"
#include "tests/support/inprocess.hpp"
#include "tests/support/process.hpp"
#include "tests/support/segments.hpp"

namespace shmbus {
namespace {

using namespace shmbus::test;

SubscriberOptions manual(Policy policy, std::string name = {}) {
  SubscriberOptions o = sub_options(policy, StartFrom::earliest);
  o.manual_release = true;
  o.name = std::move(name);
  return o;
}

// The slot of this process's subscriber named `name` (or its only active one if unnamed).
detail::SubscriberSlot& slot_of(ChannelFiles& files, const std::string& name) {
  if (!name.empty()) return files.subscriber_slots()[files.find_named_slot(name).value()];
  for (detail::SubscriberSlot& s : files.subscriber_slots()) {
    if (detail::owner_state(s.owner.load()) == detail::SlotState::active) return s;
  }
  throw std::runtime_error("no active slot");
}

// Publishes "<prefix><i>" with try_publish until the ring refuses; returns how many went in.
int publish_until_refused(Publisher& pub, int limit) {
  for (int i = 0; i < limit; ++i) {
    if (pub.try_publish(bytes_of(std::string(200, 'a' + static_cast<char>(i % 26)))) !=
        PublishStatus::ok) {
      return i;
    }
  }
  return limit;
}

TEST(ManualRelease, BlockSubscriberGatesAtItsReleasedCursorNotAtWhatItRead) {
  ChannelGuard ch(unique_channel("mrgate"));
  auto pub = Publisher::open(ch.name(), small_options());
  ASSERT_TRUE(pub);
  auto sub = Subscriber::open(ch.name(), manual(Policy::block));
  ASSERT_TRUE(sub) << sub.error().message;
  auto files = ChannelFiles::open(ch.name());
  ASSERT_TRUE(files);
  detail::SubscriberSlot& slot = slot_of(*files, "");
  const int first_lap = publish_until_refused(*pub, 10'000);
  ASSERT_GT(first_lap, 100);
  ASSERT_LT(first_lap, 10'000) << "the block subscriber never gated";
  std::uint64_t got = 0;
  while (sub->poll([&](const Message&) { ++got; }) > 0) {
  }
  EXPECT_EQ(got, static_cast<std::uint64_t>(first_lap));
  EXPECT_EQ(sub->next_sequence(), got + 1);
  // Everything was read, nothing released: the slot still says "nothing read" and gates there.
  EXPECT_EQ(slot.position.load(), 0u);
  EXPECT_EQ(slot.next_sequence.load(), 1u);
  EXPECT_EQ(slot.received.load(), 0u);
  EXPECT_EQ(pub->try_publish(bytes_of("more")), PublishStatus::back_pressured);
  const Subscriber::Cursor c = sub->cursor();
  EXPECT_EQ(c.next_sequence, got + 1);
  EXPECT_EQ(c.received, got);
  sub->release(c);
  EXPECT_EQ(slot.position.load(), c.position);
  EXPECT_EQ(slot.next_sequence.load(), got + 1);
  EXPECT_EQ(slot.received.load(), got);
  EXPECT_EQ(publish_until_refused(*pub, 10), 10) << "released space is free again";
}

TEST(ManualRelease, RecordsDeliveredInPlaceStayIntactUntilReleased) {
  ChannelGuard ch(unique_channel("mrplace"));
  auto pub = Publisher::open(ch.name(), small_options());
  ASSERT_TRUE(pub);
  auto sub = Subscriber::open(ch.name(), manual(Policy::block));
  ASSERT_TRUE(sub);
  const int n = publish_until_refused(*pub, 10'000);
  // Keep the in-place views of every record (the journaler hands them to io_uring like this).
  std::vector<std::span<const std::byte>> views;
  std::vector<std::string> copies;
  while (sub->poll([&](const Message& m) {
    views.push_back(m.payload);
    copies.emplace_back(reinterpret_cast<const char*>(m.payload.data()), m.payload.size());
  }) > 0) {
  }
  ASSERT_EQ(views.size(), static_cast<std::size_t>(n));
  // The producer tries hard to write; it must not touch what was not released.
  for (int i = 0; i < 1000; ++i) {
    EXPECT_EQ(pub->try_publish(bytes_of(std::string(200, '#'))), PublishStatus::back_pressured);
  }
  for (std::size_t i = 0; i < views.size(); ++i) {
    ASSERT_EQ(std::string(reinterpret_cast<const char*>(views[i].data()), views[i].size()),
              copies[i])
        << "record " << i + 1 << " was overwritten before it was released";
  }
  sub->release(sub->cursor());
}

TEST(ManualRelease, AnOlderCursorNeverMovesTheSlotBack) {
  ChannelGuard ch(unique_channel("mrback"));
  auto pub = Publisher::open(ch.name(), small_options());
  ASSERT_TRUE(pub);
  auto sub = Subscriber::open(ch.name(), manual(Policy::block));
  ASSERT_TRUE(sub);
  auto files = ChannelFiles::open(ch.name());
  ASSERT_TRUE(files);
  detail::SubscriberSlot& slot = slot_of(*files, "");
  for (int i = 0; i < 10; ++i) ASSERT_EQ(pub->try_publish(bytes_of("m")), PublishStatus::ok);
  ASSERT_EQ(sub->poll([](const Message&) {}, 4), 4u);
  const Subscriber::Cursor old = sub->cursor();
  ASSERT_EQ(sub->poll([](const Message&) {}), 6u);
  sub->release(sub->cursor());
  EXPECT_EQ(slot.next_sequence.load(), 11u);
  sub->release(old);
  EXPECT_EQ(slot.next_sequence.load(), 11u);
  EXPECT_EQ(slot.position.load(), sub->cursor().position);
}

TEST(ManualRelease, ReleaseWithoutManualReleaseChangesNothing) {
  ChannelGuard ch(unique_channel("mrnot"));
  auto pub = Publisher::open(ch.name(), small_options());
  ASSERT_TRUE(pub);
  auto sub = Subscriber::open(ch.name(), sub_options(Policy::block, StartFrom::earliest));
  ASSERT_TRUE(sub);
  auto files = ChannelFiles::open(ch.name());
  ASSERT_TRUE(files);
  detail::SubscriberSlot& slot = slot_of(*files, "");
  for (int i = 0; i < 5; ++i) ASSERT_EQ(pub->try_publish(bytes_of("m")), PublishStatus::ok);
  Subscriber::Cursor bogus;
  bogus.position = 1 << 30;
  sub->release(bogus);
  EXPECT_EQ(slot.position.load(), 0u);
  ASSERT_EQ(sub->poll([](const Message&) {}), 5u);
  EXPECT_EQ(slot.next_sequence.load(), 6u) << "poll publishes as always";
}

// A named manual-release subscriber that closes leaves its slot at the last released cursor: the
// next process under its name gets again what was delivered but not released.
TEST(ManualRelease, NamedSubscriberResumesAtTheLastReleasedCursor) {
  for (const Policy policy : {Policy::block, Policy::drop}) {
    SCOPED_TRACE(to_string(policy));
    ChannelGuard ch(unique_channel("mrname"));
    auto pub = Publisher::open(ch.name(), small_options());
    ASSERT_TRUE(pub);
    {
      auto sub = Subscriber::open(ch.name(), manual(policy, "rec"));
      ASSERT_TRUE(sub) << sub.error().message;
      for (int i = 1; i <= 10; ++i) {
        // Appended, not "m" + to_string(i): GCC 12 at -O2 warns falsely (-Wrestrict) on that.
        std::string text = "m";
        text += std::to_string(i);
        ASSERT_EQ(pub->try_publish(bytes_of(text)), PublishStatus::ok);
      }
      ASSERT_EQ(sub->poll([](const Message&) {}, 4), 4u);
      sub->release(sub->cursor());
      ASSERT_EQ(sub->poll([](const Message&) {}), 6u);
    }  // closes without releasing 5..10
    auto files = ChannelFiles::open(ch.name());
    ASSERT_TRUE(files);
    detail::SubscriberSlot& slot = slot_of(*files, "rec");
    EXPECT_EQ(detail::owner_state(slot.owner.load()), detail::SlotState::detached);
    EXPECT_EQ(slot.next_sequence.load(), 5u);
    EXPECT_EQ(slot.received.load(), 4u);
    SubscriberOptions again = sub_options(policy);
    again.name = "rec";
    auto sub = Subscriber::open(ch.name(), again);
    ASSERT_TRUE(sub) << sub.error().message;
    const auto got = receive_messages(*sub, 6, std::chrono::seconds(5));
    ASSERT_EQ(got.size(), 6u);
    EXPECT_EQ(got.front().sequence, 5u);
    EXPECT_EQ(got.front().payload, "m5");
    EXPECT_EQ(got.back().sequence, 10u);
    EXPECT_EQ(sub->lost(), 0u);
  }
}

// A lapped non-gating reader skips ahead locally; its slot keeps the released cursor until the
// application releases a later one.
TEST(ManualRelease, LappedDropSubscriberDoesNotPublishItsSkip) {
  ChannelGuard ch(unique_channel("mrlap"));
  auto pub = Publisher::open(ch.name(), small_options());
  ASSERT_TRUE(pub);
  auto sub = Subscriber::open(ch.name(), manual(Policy::drop, "lapped"));
  ASSERT_TRUE(sub);
  auto files = ChannelFiles::open(ch.name());
  ASSERT_TRUE(files);
  detail::SubscriberSlot& slot = slot_of(*files, "lapped");
  const std::uint64_t position0 = slot.position.load();
  for (int i = 0; i < 3 * 300; ++i) {
    ASSERT_EQ(pub->try_publish(bytes_of(std::string(200, 'x'))), PublishStatus::ok);
  }
  std::uint64_t got = 0;
  for (int i = 0; i < 10 && got == 0; ++i) sub->poll([&](const Message&) { ++got; });
  ASSERT_GT(got, 0u);
  EXPECT_GT(sub->lost(), 0u);
  EXPECT_EQ(slot.position.load(), position0);
  EXPECT_EQ(slot.next_sequence.load(), 1u);
  EXPECT_EQ(slot.lost.load(), 0u);
  sub->release(sub->cursor());
  EXPECT_EQ(slot.next_sequence.load(), sub->next_sequence());
  EXPECT_EQ(slot.lost.load(), sub->lost());
}

// A corrupt record makes the reader skip to the tail; the skip is not a release.
TEST(ManualRelease, CorruptRecordSkipDoesNotMoveTheReleasedPosition) {
  ChannelGuard ch(unique_channel("mrbad"));
  auto pub = Publisher::open(ch.name(), small_options());
  ASSERT_TRUE(pub);
  auto sub = Subscriber::open(ch.name(), manual(Policy::block));
  ASSERT_TRUE(sub);
  auto files = ChannelFiles::open(ch.name(), true);
  ASSERT_TRUE(files);
  detail::SubscriberSlot& slot = slot_of(*files, "");
  for (int i = 0; i < 3; ++i) ASSERT_EQ(pub->try_publish(bytes_of("ok")), PublishStatus::ok);
  // The second record (32-byte header + 2-byte payload = one 64-byte frame after the first):
  // give it a type no writer produces.
  auto* data = reinterpret_cast<std::byte*>(&files->ring()) + core::kRingDataOffset;
  auto* second = reinterpret_cast<core::RecordHeader*>(data + 64);
  ASSERT_EQ(second->sequence, 2u);
  second->type = 77;
  std::uint64_t got = 0;
  sub->poll([&](const Message&) { ++got; });
  EXPECT_EQ(got, 1u);
  EXPECT_EQ(sub->status(), PollStatus::corrupt) << sub->last_error();
  EXPECT_EQ(sub->next_sequence(), 4u) << "skipped to the tail";
  EXPECT_EQ(slot.position.load(), 0u);
  EXPECT_EQ(slot.next_sequence.load(), 1u);
}

}  // namespace
}  // namespace shmbus
