// The trust model (docs/security.md), with the hostile cases played by a forked child that
// becomes the user nobody: a reader without write permission reads through the readers' registry
// and can neither forge a gating slot, flip a trusted subscriber's state, nor hold the lock that
// opening and removal wait for. And the liveness check itself: a start time of 0 matches nothing,
// so even a trusted peer's forged slot gates only until its liveness timeout.
#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <string>
#include <vector>

#include <fmt/format.h>
#include <gtest/gtest.h>

#include "ipc/channel.hpp"
#include "ipc/control_segment.hpp"
#include "ipc/process.hpp"
#include "shmbus/shmbus.hpp"
#include "tests/support/inprocess.hpp"
#include "tests/support/process.hpp"
#include "tests/support/segments.hpp"
#include "tests/support/unprivileged.hpp"

namespace shmbus {
namespace {

using namespace shmbus::test;
using namespace std::chrono_literals;

#define REQUIRE_ROOT()                                                        \
  if (!can_drop_privileges()) GTEST_SKIP() << "needs root to become nobody"

// A channel nobody may read (mode 0644 unless told), created by this (root) process.
Publisher world_readable(const ChannelGuard& ch, unsigned mode = 0644) {
  ChannelOptions o = small_options();
  o.mode = mode;
  auto pub = Publisher::open(ch.name(), o);
  EXPECT_TRUE(pub) << pub.error().message;
  return std::move(*pub);
}

std::string object_path(const ChannelGuard& ch, const Publisher& pub, std::string_view suffix) {
  return fmt::format("/dev/shm/{}{}", detail::control_object_name(ch.name(), pub.info().incarnation),
                     suffix);
}

unsigned mode_of(const std::string& path) {
  struct stat st {};
  EXPECT_EQ(::stat(path.c_str(), &st), 0) << path;
  return st.st_mode & 07777;
}

// Publishes `count` messages of `size` bytes, each within `timeout`; how many went out.
int publish_many(Publisher& pub, int count, std::size_t size, std::chrono::milliseconds timeout) {
  const std::vector<std::byte> payload(size, std::byte{0x5a});
  for (int i = 0; i < count; ++i) {
    if (pub.publish(payload, timeout) != PublishStatus::ok) return i;
  }
  return count;
}

// Runs `body` as nobody in a forked child (exit code 99 if privileges could not drop). The
// child first closes the descriptors it inherited (stdio aside): they include this process's
// use locks, which a fork shares, and an untrusted process never holds.
Child fork_as_nobody(const std::function<int()>& body, std::optional<gid_t> group = std::nullopt) {
  return Child::fork([body, group] {
    ::close_range(3, ~0U, 0);
    return become_nobody(group) ? body() : 99;
  });
}

int exit_code(Child& child) {
  auto st = child.wait(10s);
  if (!st || !st->exited) return -1;
  return st->code;
}

TEST(TrustModel, StartTimeZeroMatchesNoProcessNotEvenInit) {
  EXPECT_FALSE(detail::process_alive({1, 0}));
  EXPECT_FALSE(detail::process_alive({static_cast<std::uint32_t>(::getpid()), 0}));
  EXPECT_FALSE(detail::process_alive({detail::kMaxPid + 1, 1}));
  EXPECT_TRUE(detail::process_alive(detail::self_process()));
  EXPECT_TRUE(detail::pid_exists(static_cast<std::uint32_t>(::getpid())));
  EXPECT_FALSE(detail::pid_exists(0));
}

TEST(TrustModel, ObjectModesFollowTheRingModeAndTheGatingGroup) {
  ChannelGuard a(unique_channel("modes-a"));
  Publisher pa = world_readable(a, 0644);
  EXPECT_EQ(mode_of(ring_path(a.name())), 0644u);
  EXPECT_EQ(mode_of(object_path(a, pa, "")), 0644u);          // control: read-only for readers
  EXPECT_EQ(mode_of(object_path(a, pa, ".readers")), 0666u);  // registry: theirs
  EXPECT_EQ(mode_of(object_path(a, pa, ".lock")), 0600u);     // lock: the trusted only

  ChannelGuard b(unique_channel("modes-b"));
  Publisher pb = world_readable(b, 0660);
  EXPECT_EQ(mode_of(object_path(b, pb, "")), 0660u);
  EXPECT_EQ(mode_of(object_path(b, pb, ".readers")), 0660u);
  EXPECT_EQ(mode_of(object_path(b, pb, ".lock")), 0660u);

  const auto modes = detail::channel_modes(0640, true);
  EXPECT_EQ(modes.control, 0664u);  // the gating group writes; the ring's group readers read
  EXPECT_EQ(modes.readers, 0660u);
  EXPECT_EQ(modes.lock, 0660u);
}

TEST(TrustModel, ReadOnlyReaderCannotOpenTheControlSegmentOrTheUseLockForWriting) {
  REQUIRE_ROOT();
  ChannelGuard ch(unique_channel("trust-open"));
  Publisher pub = world_readable(ch);
  const std::string control = object_path(ch, pub, "");
  const std::string lock = object_path(ch, pub, ".lock");
  Child child = fork_as_nobody([&] {
    if (::open(control.c_str(), O_RDWR) >= 0 || errno != EACCES) return 1;
    if (::open(lock.c_str(), O_RDONLY) >= 0 || errno != EACCES) return 2;
    if (::open(control.c_str(), O_RDONLY) < 0) return 3;  // reading stays allowed
    return 0;
  });
  EXPECT_EQ(exit_code(child), 0);
}

TEST(TrustModel, ReadOnlyReaderConsumesWithDropThroughTheReadersRegistry) {
  REQUIRE_ROOT();
  ChannelGuard ch(unique_channel("trust-drop"));
  Publisher pub = world_readable(ch);
  for (std::uint64_t i = 1; i <= 20; ++i) {
    ASSERT_EQ(pub.publish(std::as_bytes(std::span(&i, 1)), 1s), PublishStatus::ok);
  }
  Child child = fork_as_nobody([&] {
    auto sub = Subscriber::open(ch.name(), sub_options(Policy::drop, StartFrom::earliest));
    if (!sub) {
      std::printf("ERROR %s\n", sub.error().message.c_str());
      return 1;
    }
    std::uint64_t expected = 1;
    const auto deadline = std::chrono::steady_clock::now() + 5s;
    while (expected <= 20) {
      if (std::chrono::steady_clock::now() > deadline) return 3;
      bool in_order = true;
      sub->poll([&](const Message& m) {
        std::uint64_t value = 0;
        std::memcpy(&value, m.payload.data(), sizeof value);
        in_order = in_order && m.sequence == expected && value == expected;
        ++expected;
      });
      if (!in_order) return 2;
    }
    std::printf("READ %d\n", static_cast<int>(expected - 1));
    std::fflush(stdout);
    return 0;
  });
  EXPECT_EQ(exit_code(child), 0) << child.output();
  EXPECT_NE(child.output().find("READ 20"), std::string::npos) << child.output();
}

TEST(TrustModel, ReadOnlyReaderIsRefusedTheBlockPolicyNamingTheTrustModel) {
  REQUIRE_ROOT();
  ChannelGuard ch(unique_channel("trust-block"));
  Publisher pub = world_readable(ch);
  Child child = fork_as_nobody([&] {
    auto sub = Subscriber::open(ch.name(), sub_options(Policy::block));
    if (sub) return 1;
    std::printf("%s\n", sub.error().message.c_str());
    return sub.error().code == ErrorCode::permission_denied ? 0 : 2;
  });
  EXPECT_EQ(exit_code(child), 0) << child.output();
  EXPECT_NE(child.output().find("docs/security.md"), std::string::npos) << child.output();
}

// Every registry slot made to look like a live block subscriber at position 0 (pid 1, start time
// 0), and the control segment attacked too: the producers never look at the registry.
TEST(TrustModel, ForgedBlockSlotsInTheRegistryNeverStallProducers) {
  REQUIRE_ROOT();
  ChannelGuard ch(unique_channel("trust-forge"));
  Publisher pub = world_readable(ch);
  const std::string registry = object_path(ch, pub, ".readers");
  const std::string control = object_path(ch, pub, "");
  Child child = fork_as_nobody([&] {
    if (FileMapping::open(control, true)) return 1;  // the control segment: refused
    auto mapped = FileMapping::open(registry, true);
    if (!mapped) return 2;
    auto& header = *reinterpret_cast<detail::ControlHeader*>(mapped->data());
    const auto layout = detail::declared_layout(header);
    detail::ControlRef forged(mapped->data(), layout);
    for (detail::SubscriberSlot& s : forged.subscriber_slots()) {
      s.pid = 1;
      s.start_time = 0;
      s.policy = static_cast<std::uint8_t>(Policy::block);
      s.liveness_timeout_ns = INT64_MAX;
      s.position.store(0);
      s.owner.store(detail::owner_word(1, detail::SlotState::active));
    }
    for (auto& word : header.block_slots) word.store(~std::uint64_t{0});
    header.subscriber_slots_high_water.store(layout.subscriber_slots);
    header.gate_epoch.fetch_add(1);
    return 0;
  });
  ASSERT_EQ(exit_code(child), 0) << child.output();
  // Four laps of the ring, each message within 100 ms: nothing gates.
  EXPECT_EQ(publish_many(pub, 4 * 64, 1000, 100ms), 4 * 64);
}

// A block subscriber of the channel's owner keeps gating whatever a read-only reader does to the
// states it can reach (the registry's), and the reader cannot reach the control segment's.
TEST(TrustModel, FlippedStatesInTheRegistryLeaveATrustedBlockSubscriberGating) {
  REQUIRE_ROOT();
  ChannelGuard ch(unique_channel("trust-flip"));
  Publisher pub = world_readable(ch);
  auto gate = Subscriber::open(ch.name(), sub_options(Policy::block));
  ASSERT_TRUE(gate) << gate.error().message;
  const std::string registry = object_path(ch, pub, ".readers");
  const std::string control = object_path(ch, pub, "");
  Child child = fork_as_nobody([&] {
    if (FileMapping::open(control, true)) return 1;
    auto mapped = FileMapping::open(registry, true);
    if (!mapped) return 2;
    auto& header = *reinterpret_cast<detail::ControlHeader*>(mapped->data());
    detail::ControlRef registry_ref(mapped->data(), detail::declared_layout(header));
    for (detail::SubscriberSlot& s : registry_ref.subscriber_slots()) {
      s.owner.store(detail::owner_word(0, detail::SlotState::evicted));
    }
    header.gate_epoch.fetch_add(1);
    return 0;
  });
  ASSERT_EQ(exit_code(child), 0) << child.output();
  // The block subscriber reads nothing: a lap later the producer is held back.
  EXPECT_LT(publish_many(pub, 4 * 64, 1000, 50ms), 4 * 64);
  auto files = ChannelFiles::open(ch.name());
  ASSERT_TRUE(files);
  bool gating = false;
  for (const detail::SubscriberSlot& s : files->subscriber_slots()) {
    gating = gating || (s.pid == static_cast<std::uint32_t>(::getpid()) &&
                        detail::owner_state(s.owner.load()) == detail::SlotState::active);
  }
  EXPECT_TRUE(gating);
}

// A read-only reader may hold an exclusive flock on the ring (any descriptor can): nothing waits
// for that lock any more. The use lock, which openers and gc do take, it cannot even open.
TEST(TrustModel, ExclusiveFlockOnTheRingByAReadOnlyReaderBlocksNoOpenerNorGc) {
  REQUIRE_ROOT();
  ChannelGuard ch(unique_channel("trust-flock"));
  std::optional<Publisher> pub(world_readable(ch));
  const std::string ring = ring_path(ch.name());
  const std::string lock = object_path(ch, *pub, ".lock");
  Child child = fork_as_nobody([&] {
    const int fd = ::open(ring.c_str(), O_RDONLY);
    if (fd < 0 || ::flock(fd, LOCK_EX | LOCK_NB) != 0) return 1;
    if (::open(lock.c_str(), O_RDONLY) >= 0 || errno != EACCES) return 2;
    std::printf("HOLDING\n");
    std::fflush(stdout);
    ::pause();  // holds the flock until killed
    return 0;
  });
  ASSERT_TRUE(child.wait_for_line("HOLDING", 5s)) << child.output();
  const auto start = std::chrono::steady_clock::now();
  auto sub = Subscriber::open(ch.name(), sub_options(Policy::block));
  ASSERT_TRUE(sub) << sub.error().message;
  ChannelOptions same = small_options();
  same.mode = 0644;
  auto second = Publisher::open(ch.name(), same);
  ASSERT_TRUE(second) << second.error().message;
  EXPECT_LT(std::chrono::steady_clock::now() - start, 500ms);
  // gc's exclusive lock: held back by the users, not by the reader's flock.
  auto in_use = detail::try_lock_unused_channel(ch.name());
  ASSERT_TRUE(in_use) << in_use.error().message;
  EXPECT_EQ(in_use->fd, -1);
  sub = tl::unexpected(Error{});
  second = tl::unexpected(Error{});
  pub.reset();
  auto unused = detail::try_lock_unused_channel(ch.name());
  ASSERT_TRUE(unused) << unused.error().message;
  EXPECT_GE(unused->fd, 0);
  if (unused->fd >= 0) ::close(unused->fd);
  child.kill_hard();
}

// The gating group may gate (block subscribers) without the right to publish; a reader outside
// it may not gate.
TEST(TrustModel, GatingGroupMemberMayBlockButNotPublishAndOthersMayNotBlock) {
  REQUIRE_ROOT();
  ChannelGuard ch(unique_channel("trust-group"));
  ChannelOptions o = small_options();
  o.mode = 0644;
  o.gating_group = static_cast<std::uint32_t>(nogroup_gid());
  auto pub = Publisher::open(ch.name(), o);
  ASSERT_TRUE(pub) << pub.error().message;
  Child member = fork_as_nobody([&] {
    if (Publisher::open(ch.name())) return 1;  // the ring is read-only for the group
    SubscriberOptions so = sub_options(Policy::block);
    so.liveness_timeout = 100ms;
    auto sub = Subscriber::open(ch.name(), so);
    if (!sub) {
      std::printf("ERROR %s\n", sub.error().message.c_str());
      return 2;
    }
    std::printf("GATING\n");
    std::fflush(stdout);
    ::pause();
    return 0;
  });
  ASSERT_TRUE(member.wait_for_line("GATING", 5s)) << member.output();
  // It reads nothing: the producer is held back after a lap.
  EXPECT_LT(publish_many(*pub, 4 * 64, 1000, 50ms), 4 * 64);
  // Killed, it is evicted after its liveness timeout and the producer goes on.
  member.kill_hard();
  EXPECT_EQ(publish_many(*pub, 4 * 64, 1000, 2s), 4 * 64);

  Child outsider = fork_as_nobody(
      [&] {
        auto sub = Subscriber::open(ch.name(), sub_options(Policy::block));
        return !sub && sub.error().code == ErrorCode::permission_denied ? 0 : 1;
      },
      gid_t{1});  // daemon: not the gating group
  EXPECT_EQ(exit_code(outsider), 0) << outsider.output();
}

// Even a trusted peer's forged slot (pid 1, start time 0: it used to match init, alive forever)
// gates only until its liveness timeout.
TEST(TrustModel, ForgedGatingSlotWithStartTimeZeroIsEvictedAfterItsLivenessTimeout) {
  ChannelGuard ch(unique_channel("trust-zero"));
  auto pub = Publisher::open(ch.name(), small_options());
  ASSERT_TRUE(pub) << pub.error().message;
  {
    auto files = ChannelFiles::open(ch.name(), true);
    ASSERT_TRUE(files);
    detail::SubscriberSlot& s = files->subscriber_slots()[5];
    s.pid = 1;
    s.start_time = 0;
    s.policy = static_cast<std::uint8_t>(Policy::block);
    s.liveness_timeout_ns = 100'000'000;
    s.position.store(files->ring().tail.position);
    s.owner.store(detail::owner_word(1, detail::SlotState::active));
    files->control().block_slots[0].fetch_or(1u << 5);
    files->control().subscriber_slots_high_water.store(6);
    files->control().gate_epoch.fetch_add(1);
  }
  const auto start = std::chrono::steady_clock::now();
  EXPECT_EQ(publish_many(*pub, 4 * 64, 1000, 3s), 4 * 64);
  const auto took = std::chrono::steady_clock::now() - start;
  EXPECT_GE(took, 100ms);
  std::printf("forged slot evicted after %lld ms\n",
              static_cast<long long>(
                  std::chrono::duration_cast<std::chrono::milliseconds>(took).count()));
  auto files = ChannelFiles::open(ch.name());
  ASSERT_TRUE(files);
  EXPECT_EQ(detail::owner_state(files->subscriber_slots()[5].owner.load()),
            detail::SlotState::evicted);
}

TEST(TrustModel, ReadersRegistryIsNeverTakenForTheControlSegment) {
  ChannelGuard ch(unique_channel("trust-role"));
  auto pub = Publisher::open(ch.name(), small_options());
  ASSERT_TRUE(pub) << pub.error().message;
  auto registry = FileMapping::open(object_path(ch, *pub, ".readers"), false);
  ASSERT_TRUE(registry);
  auto as_control =
      detail::check_control(registry->data(), registry->size(), pub->info().incarnation);
  ASSERT_FALSE(as_control);
  EXPECT_NE(as_control.error().find("role"), std::string::npos) << as_control.error();
  EXPECT_TRUE(detail::check_control(registry->data(), registry->size(), pub->info().incarnation,
                                    detail::ControlRole::readers));
}

}  // namespace
}  // namespace shmbus
