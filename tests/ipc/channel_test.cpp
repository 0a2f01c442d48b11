// Channels over POSIX shared memory: creation and opening, option and name checking, the creation
// race between processes, segments of another layout version or full of garbage, and read-only
// mappings for drop subscribers.
#include <fcntl.h>
#include <sys/statvfs.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstring>
#include <random>
#include <set>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "core/layout.hpp"
#include "ipc/control_layout.hpp"
#include "shmbus/shmbus.hpp"
#include "shmbus/stats.hpp"
#include "tests/support/inprocess.hpp"
#include "tests/support/process.hpp"
#include "tests/support/segments.hpp"

namespace shmbus {
namespace {

using namespace shmbus::test;
using Clock = std::chrono::steady_clock;

// Writes `bytes` as the whole content of the shared-memory file `path`.
void write_file(const std::string& path, const std::vector<unsigned char>& bytes) {
  const int fd = ::open(path.c_str(), O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  ASSERT_GE(fd, 0) << path << ": " << std::strerror(errno);
  std::size_t off = 0;
  while (off < bytes.size()) {
    const ssize_t n = ::write(fd, bytes.data() + off, bytes.size() - off);
    ASSERT_GT(n, 0);
    off += static_cast<std::size_t>(n);
  }
  ::close(fd);
}

TEST(Channel, PublisherCreatesAndSubscribersOpenTheSameIncarnation) {
  ChannelGuard ch(unique_channel("create"));
  auto pub = Publisher::open(ch.name(), small_options());
  ASSERT_TRUE(pub) << pub.error().message;
  EXPECT_EQ(pub->info().name, ch.name());
  EXPECT_EQ(pub->info().capacity, 64u << 10);
  EXPECT_EQ(pub->info().max_message, 1024u);
  EXPECT_NE(pub->info().incarnation, 0u);
  // The ring, and its incarnation's control segment, readers' registry and use lock; no
  // temporary left.
  EXPECT_EQ(channel_objects(ch.name()).size(), 4u);

  auto block = Subscriber::open(ch.name(), sub_options(Policy::block));
  ASSERT_TRUE(block) << block.error().message;
  auto drop = Subscriber::open(ch.name(), sub_options(Policy::drop));
  ASSERT_TRUE(drop) << drop.error().message;
  EXPECT_EQ(block->info().incarnation, pub->info().incarnation);
  EXPECT_EQ(drop->info().incarnation, pub->info().incarnation);
  EXPECT_EQ(drop->info().capacity, 64u << 10);

  // A second publisher asking for another capacity is refused; accepting the existing
  // configuration, it opens the channel as it is (its own options do not re-create it).
  ChannelOptions other = small_options();
  other.capacity = 1 << 20;
  auto refused = Publisher::open(ch.name(), other);
  ASSERT_FALSE(refused);
  EXPECT_EQ(refused.error().code, ErrorCode::invalid_argument) << refused.error().message;
  other.accept_existing = true;
  auto pub2 = Publisher::open(ch.name(), other);
  ASSERT_TRUE(pub2) << pub2.error().message;
  EXPECT_EQ(pub2->info().incarnation, pub->info().incarnation);
  EXPECT_EQ(pub2->info().capacity, 64u << 10);

  for (const char* text : {"one", "two", "three"}) {
    const auto payload = bytes_of(text);
    ASSERT_EQ(pub->publish(payload, std::chrono::seconds(5)), PublishStatus::ok);
  }
  const std::vector<std::string> want{"one", "two", "three"};
  EXPECT_EQ(receive(*block, 3), want);
  EXPECT_EQ(receive(*drop, 3), want);
  EXPECT_EQ(block->received(), 3u);
  EXPECT_EQ(block->lost(), 0u);
}

TEST(Channel, BadCapacityIsInvalidArgumentAndCreatesNothing) {
  ChannelGuard ch(unique_channel("badcap"));
  for (std::uint64_t capacity :
       {std::uint64_t{0}, std::uint64_t{1000}, std::uint64_t{2048}, std::uint64_t{3} << 12,
        (std::uint64_t{1} << 20) + 4096, std::uint64_t{1} << 41}) {
    ChannelOptions o = small_options();
    o.capacity = capacity;
    auto pub = Publisher::open(ch.name(), o);
    ASSERT_FALSE(pub) << "capacity " << capacity;
    EXPECT_EQ(pub.error().code, ErrorCode::invalid_argument) << pub.error().message;
    EXPECT_NE(pub.error().message.find(ch.name()), std::string::npos) << pub.error().message;
    EXPECT_TRUE(channel_objects(ch.name()).empty());
  }
}

TEST(Channel, MaxMessageAboveAQuarterLapIsInvalidArgument) {
  ChannelGuard ch(unique_channel("badmax"));
  const std::uint64_t capacity = 64 << 10;
  for (std::uint32_t max_message :
       {0u, static_cast<std::uint32_t>(capacity / 4 - 31), static_cast<std::uint32_t>(capacity),
        1u << 30}) {
    ChannelOptions o = small_options();
    o.max_message = max_message;
    auto pub = Publisher::open(ch.name(), o);
    ASSERT_FALSE(pub) << "max_message " << max_message;
    EXPECT_EQ(pub.error().code, ErrorCode::invalid_argument) << pub.error().message;
    EXPECT_TRUE(channel_objects(ch.name()).empty());
  }
  ChannelOptions o = small_options();
  o.max_message = static_cast<std::uint32_t>(capacity / 4 - 32);  // the largest allowed
  auto pub = Publisher::open(ch.name(), o);
  ASSERT_TRUE(pub) << pub.error().message;
  EXPECT_EQ(pub->info().max_message, capacity / 4 - 32);
  std::vector<std::byte> big(capacity / 4 - 32);
  EXPECT_EQ(pub->try_publish(big), PublishStatus::ok);
  std::vector<std::byte> bigger(capacity / 4 - 31);
  EXPECT_EQ(pub->try_publish(bigger), PublishStatus::too_large);
}

TEST(Channel, BadNamesAreInvalidArgument) {
  const std::string too_long(49, 'a');
  for (const std::string& name :
       {std::string(""), std::string(".hidden"), std::string("-dash"), std::string("a/b"),
        std::string("a b"), std::string("a\nb"), std::string("ü"), too_long,
        std::string("x.ctl.y"), std::string("x.tmp.y"), std::string("..")}) {
    auto pub = Publisher::open(name, small_options());
    ASSERT_FALSE(pub) << "'" << name << "'";
    EXPECT_EQ(pub.error().code, ErrorCode::invalid_argument) << pub.error().message;
    auto sub = Subscriber::open(name, sub_options(Policy::drop));
    ASSERT_FALSE(sub) << "'" << name << "'";
    EXPECT_EQ(sub.error().code, ErrorCode::invalid_argument) << sub.error().message;
    auto rm = remove_channel(name);
    ASSERT_FALSE(rm) << "'" << name << "'";
    EXPECT_EQ(rm.error().code, ErrorCode::invalid_argument);
  }
  // 48 characters of the allowed set is fine.
  std::string longest = unique_channel("n");
  longest += std::string(48 - longest.size(), '_');
  ChannelGuard ch(longest);
  auto pub = Publisher::open(longest, small_options());
  EXPECT_TRUE(pub) << pub.error().message;
}

TEST(Channel, OpeningAMissingChannelFailsWithNotFoundAfterItsTimeout) {
  const std::string name = unique_channel("missing");
  ChannelGuard ch(name);
  SubscriberOptions o = sub_options(Policy::block);
  o.open_timeout = std::chrono::milliseconds(150);
  const auto start = Clock::now();
  auto sub = Subscriber::open(name, o);
  const auto waited = Clock::now() - start;
  ASSERT_FALSE(sub);
  EXPECT_EQ(sub.error().code, ErrorCode::not_found) << sub.error().message;
  EXPECT_NE(sub.error().message.find(name), std::string::npos) << sub.error().message;
  EXPECT_GE(waited, std::chrono::milliseconds(150));  // it did wait for the channel
  EXPECT_LT(waited, std::chrono::seconds(10));        // liveness only
  EXPECT_TRUE(channel_objects(name).empty());
  auto rm = remove_channel(name);
  ASSERT_FALSE(rm);
  EXPECT_EQ(rm.error().code, ErrorCode::not_found);
}

TEST(Channel, SubscriberWaitsForAChannelCreatedDuringItsOpenTimeout) {
  ChannelGuard ch(unique_channel("late"));
  Child creator = Child::fork([&] {
    ::usleep(200'000);
    auto pub = Publisher::open(ch.name(), small_options());
    return pub ? 0 : 1;
  });
  SubscriberOptions o = sub_options(Policy::block);
  o.open_timeout = std::chrono::seconds(10);
  auto sub = Subscriber::open(ch.name(), o);
  ASSERT_TRUE(sub) << sub.error().message;
  auto st = creator.wait(std::chrono::seconds(10));
  ASSERT_TRUE(st);
  EXPECT_TRUE(st->ok()) << st->describe();
}

// Eight processes open the same new name at the same moment: each either creates the channel or
// opens the one that won, and all of them end up in the same incarnation with one ring.
TEST(Channel, SimultaneousCreatorsAgreeOnOneIncarnation) {
  constexpr int kProcesses = 8;
  int contenders = 0;  // processes that found no channel and raced to create it
  constexpr int kRounds = 30;
  for (int round = 0; round < kRounds; ++round) {
    ChannelGuard ch(unique_channel("race"));
    int go[2];
    ASSERT_EQ(::pipe(go), 0);
    std::vector<Child> children;
    for (int i = 0; i < kProcesses; ++i) {
      children.push_back(Child::fork([&] {
        ::close(go[1]);
        char c;
        while (::read(go[0], &c, 1) < 0 && errno == EINTR) {
        }
        // Diagnostic only: did this process find no channel, and so take the creating path?
        const bool contender = ::access(ring_path(ch.name()).c_str(), F_OK) != 0;
        auto pub = Publisher::open(ch.name(), small_options());
        if (!pub) {
          std::printf("FAILED %s\n", pub.error().message.c_str());
          return 1;
        }
        std::printf("INCARNATION %llu\n",
                    static_cast<unsigned long long>(pub->info().incarnation));
        return contender ? 10 : 0;
      }));
    }
    ::close(go[0]);
    ::close(go[1]);  // every child's read returns: they start together
    std::set<std::string> incarnations;
    for (Child& c : children) {
      auto line = c.wait_for_line("INCARNATION", std::chrono::seconds(20));
      ASSERT_TRUE(line) << "child " << c.pid() << " said: " << c.output();
      incarnations.insert(*line);
      auto st = c.wait(std::chrono::seconds(10));
      ASSERT_TRUE(st);
      EXPECT_TRUE(st->exited && (st->code == 0 || st->code == 10)) << st->describe();
      if (st->code == 10) ++contenders;
    }
    EXPECT_EQ(incarnations.size(), 1u) << "round " << round;
    auto pub = Publisher::open(ch.name(), small_options());
    ASSERT_TRUE(pub) << pub.error().message;
    EXPECT_EQ("INCARNATION " + std::to_string(pub->info().incarnation), *incarnations.begin());
    // One ring and one incarnation's control segment, registry and lock (the losers removed
    // theirs), no temporaries.
    auto objects = channel_objects(ch.name());
    std::sort(objects.begin(), objects.end());
    ASSERT_EQ(objects.size(), 4u) << ::testing::PrintToString(objects);
    EXPECT_EQ(objects[0], "shmbus." + ch.name());
    const std::string control = objects[1];
    EXPECT_TRUE(control.starts_with("shmbus." + ch.name() + ".ctl.")) << control;
    EXPECT_EQ(objects[2], control + ".lock");
    EXPECT_EQ(objects[3], control + ".readers");
  }
  std::printf("%d of %d processes raced to create (the rest found the channel)\n", contenders,
              kRounds * kProcesses);
}

TEST(Channel, RingOfAnotherLayoutVersionIsVersionMismatchNamingBothVersions) {
  ChannelGuard ch(unique_channel("version"));
  ASSERT_TRUE(Publisher::open(ch.name(), small_options()));
  {
    auto ring = FileMapping::open(ring_path(ch.name()), true);
    ASSERT_TRUE(ring);
    reinterpret_cast<core::RingHeader*>(ring->data())->layout_version = core::kLayoutVersion + 1;
  }
  const std::string found = "version " + std::to_string(core::kLayoutVersion + 1);
  const std::string ours = "version " + std::to_string(core::kLayoutVersion);
  auto pub = Publisher::open(ch.name(), small_options());
  ASSERT_FALSE(pub);
  EXPECT_EQ(pub.error().code, ErrorCode::version_mismatch) << pub.error().message;
  EXPECT_NE(pub.error().message.find(found), std::string::npos) << pub.error().message;
  EXPECT_NE(pub.error().message.find(ours), std::string::npos) << pub.error().message;
  EXPECT_NE(pub.error().message.find(ring_path(ch.name())), std::string::npos)
      << pub.error().message;
  for (Policy policy : {Policy::block, Policy::drop}) {
    auto sub = Subscriber::open(ch.name(), sub_options(policy));
    ASSERT_FALSE(sub);
    EXPECT_EQ(sub.error().code, ErrorCode::version_mismatch) << sub.error().message;
    EXPECT_NE(sub.error().message.find(found), std::string::npos) << sub.error().message;
  }
}

// An older build's control segment is smaller than ours: its version is what differs, and that is
// what the error must say (not "too small"), for openers and for tools alike.
TEST(Channel, SmallerControlSegmentOfAnOlderVersionIsVersionMismatch) {
  ChannelGuard ch(unique_channel("oldctl"));
  ASSERT_TRUE(Publisher::open(ch.name(), small_options()));
  auto files = ChannelFiles::open(ch.name(), true);
  ASSERT_TRUE(files);
  const std::string control = files->control_path();
  files->control().version = detail::kControlVersion - 1;
  files.reset();
  ASSERT_EQ(::truncate(control.c_str(), offsetof(detail::ControlHeader, journal_written)), 0);
  const std::string found = "version " + std::to_string(detail::kControlVersion - 1);
  auto sub = Subscriber::open(ch.name(), sub_options(Policy::drop));
  ASSERT_FALSE(sub);
  EXPECT_EQ(sub.error().code, ErrorCode::version_mismatch) << sub.error().message;
  EXPECT_NE(sub.error().message.find(found), std::string::npos) << sub.error().message;
  auto pub = Publisher::open(ch.name(), small_options());
  ASSERT_FALSE(pub);
  EXPECT_EQ(pub.error().code, ErrorCode::version_mismatch) << pub.error().message;
  auto stats = read_channel_stats(ch.name());
  ASSERT_FALSE(stats);
  EXPECT_EQ(stats.error().code, ErrorCode::version_mismatch) << stats.error().message;
}

TEST(Channel, RingOfAnotherLayoutFingerprintIsVersionMismatch) {
  ChannelGuard ch(unique_channel("fingerprint"));
  ASSERT_TRUE(Publisher::open(ch.name(), small_options()));
  {
    auto ring = FileMapping::open(ring_path(ch.name()), true);
    ASSERT_TRUE(ring);
    reinterpret_cast<core::RingHeader*>(ring->data())->layout_fingerprint ^= 0x10;
  }
  auto pub = Publisher::open(ch.name(), small_options());
  ASSERT_FALSE(pub);
  EXPECT_EQ(pub.error().code, ErrorCode::version_mismatch) << pub.error().message;
}

// remove_channel is how a user gets rid of a channel it cannot open; it must not leave the
// control segment behind because the ring's header is of another version.
TEST(Channel, RemoveChannelRemovesTheControlSegmentOfAnIncompatibleRing) {
  ChannelGuard ch(unique_channel("rmversion"));
  ASSERT_TRUE(Publisher::open(ch.name(), small_options()));
  {
    auto ring = FileMapping::open(ring_path(ch.name()), true);
    ASSERT_TRUE(ring);
    reinterpret_cast<core::RingHeader*>(ring->data())->layout_version = core::kLayoutVersion + 1;
  }
  ASSERT_TRUE(remove_channel(ch.name()));
  EXPECT_TRUE(channel_objects(ch.name()).empty())
      << ::testing::PrintToString(channel_objects(ch.name()));
}

void expect_corrupt(const std::string& channel, const std::string& what) {
  auto pub = Publisher::open(channel, small_options());
  ASSERT_FALSE(pub) << what;
  EXPECT_EQ(pub.error().code, ErrorCode::corrupt) << what << ": " << pub.error().message;
  for (Policy policy : {Policy::block, Policy::drop}) {
    auto sub = Subscriber::open(channel, sub_options(policy));
    ASSERT_FALSE(sub) << what;
    EXPECT_EQ(sub.error().code, ErrorCode::corrupt) << what << ": " << sub.error().message;
  }
}

TEST(Channel, GarbageSegmentIsCorruptAndNeverCrashesTheOpener) {
  ChannelGuard ch(unique_channel("garbage"));
  const std::string path = ring_path(ch.name());
  const std::size_t size = core::ring_segment_size(64 << 10);
  std::mt19937_64 rng(0x5eed);
  for (int round = 0; round < 20; ++round) {
    std::vector<unsigned char> bytes(size);
    for (auto& b : bytes) b = static_cast<unsigned char>(rng());
    write_file(path, bytes);
    expect_corrupt(ch.name(), "random bytes, round " + std::to_string(round));
  }
  write_file(path, std::vector<unsigned char>(size, 0));
  expect_corrupt(ch.name(), "zero-filled (a creator that died before writing the header)");
  write_file(path, std::vector<unsigned char>(100, 0xab));
  expect_corrupt(ch.name(), "smaller than a header");
  write_file(path, {});
  expect_corrupt(ch.name(), "empty");
  ASSERT_TRUE(remove_channel(ch.name()));
  EXPECT_TRUE(channel_objects(ch.name()).empty());
}

// A header that passes the identity checks (magic, version, fingerprint, ready) but declares a
// geometry no writer produces: every such field must be caught before it is used.
TEST(Channel, PlausibleHeaderWithBadGeometryIsCorrupt) {
  ChannelGuard ch(unique_channel("geometry"));
  const std::string path = ring_path(ch.name());
  ASSERT_TRUE(Publisher::open(ch.name(), small_options()));
  auto original = FileMapping::open(path, false);
  ASSERT_TRUE(original);
  const std::vector<unsigned char> good(
      reinterpret_cast<const unsigned char*>(original->data()),
      reinterpret_cast<const unsigned char*>(original->data()) + original->size());
  original.reset();

  auto patched = [&](auto&& change) {
    std::vector<unsigned char> bytes = good;
    change(*reinterpret_cast<core::RingHeader*>(bytes.data()));
    return bytes;
  };
  const std::vector<std::pair<std::string, std::vector<unsigned char>>> cases = {
      {"capacity not a power of two", patched([](core::RingHeader& h) { h.capacity = 60000; })},
      {"capacity larger than the file", patched([](core::RingHeader& h) { h.capacity <<= 1; })},
      {"capacity smaller than the file", patched([](core::RingHeader& h) { h.capacity >>= 1; })},
      {"capacity zero", patched([](core::RingHeader& h) { h.capacity = 0; })},
      {"capacity huge", patched([](core::RingHeader& h) { h.capacity = 1ULL << 62; })},
      {"max message zero", patched([](core::RingHeader& h) { h.max_message = 0; })},
      {"max message above a quarter lap",
       patched([](core::RingHeader& h) { h.max_message = 1 << 20; })},
      {"commit key with state bits", patched([](core::RingHeader& h) { h.commit_key |= 3; })},
      {"not ready", patched([](core::RingHeader& h) { h.ready.store(0); })},
  };
  for (const auto& [what, bytes] : cases) {
    write_file(path, bytes);
    expect_corrupt(ch.name(), what);
  }
}

TEST(Channel, TruncatedRingIsCorrupt) {
  ChannelGuard ch(unique_channel("truncated"));
  ASSERT_TRUE(Publisher::open(ch.name(), small_options()));
  ASSERT_EQ(::truncate(ring_path(ch.name()).c_str(), core::ring_segment_size(32 << 10)), 0);
  expect_corrupt(ch.name(), "half the ring cut off");
}

bool writable_mapping(const std::string& line) {
  // "address perms offset dev inode path": perms is the second field, e.g. "rw-s".
  const auto sp = line.find(' ');
  return sp != std::string::npos && line.size() > sp + 2 && line[sp + 2] == 'w';
}

TEST(Channel, DropSubscriberMapsTheRingReadOnlyAndBlockSubscriberReadWrite) {
  ChannelGuard ch(unique_channel("rdonly"));
  ASSERT_TRUE(Publisher::open(ch.name(), small_options()));  // created, then unmapped
  const std::string ring = ring_path(ch.name());
  ASSERT_TRUE(mappings_of(ring).empty());
  {
    auto drop = Subscriber::open(ch.name(), sub_options(Policy::drop));
    ASSERT_TRUE(drop) << drop.error().message;
    auto files = ChannelFiles::open(ch.name());
    ASSERT_TRUE(files);
    const auto ring_maps = mappings_of(ring);
    ASSERT_FALSE(ring_maps.empty());
    for (const std::string& m : ring_maps) {
      // Our own ChannelFiles mapping is read-only too; none may be writable.
      EXPECT_FALSE(writable_mapping(m)) << m;
    }
    const auto control_maps = mappings_of(files->control_path());
    ASSERT_FALSE(control_maps.empty());
    EXPECT_TRUE(std::any_of(control_maps.begin(), control_maps.end(), writable_mapping))
        << ::testing::PrintToString(control_maps);

    // And it still reads what a publisher writes.
    auto pub = Publisher::open(ch.name(), small_options());
    ASSERT_TRUE(pub);
    ASSERT_EQ(pub->publish(bytes_of("hello"), std::chrono::seconds(5)), PublishStatus::ok);
    EXPECT_EQ(receive(*drop, 1), std::vector<std::string>{"hello"});
  }
  ASSERT_TRUE(mappings_of(ring).empty());
  auto block = Subscriber::open(ch.name(), sub_options(Policy::block));
  ASSERT_TRUE(block) << block.error().message;
  const auto ring_maps = mappings_of(ring);
  ASSERT_EQ(ring_maps.size(), 1u) << ::testing::PrintToString(ring_maps);
  EXPECT_TRUE(writable_mapping(ring_maps[0])) << ring_maps[0];
}

// Tests run as root, for whom permission bits do not bind, so the subscriber runs in a child that
// gives up root first. Ring mode 0644: others may read the ring, and (by the documented rule) write
// the control segment, so a drop subscriber works and a block subscriber is refused.
TEST(Channel, DropSubscriberWorksOnARingItMayOnlyRead) {
  if (::geteuid() != 0) GTEST_SKIP() << "needs root to switch to an unprivileged user";
  ChannelGuard ch(unique_channel("mode"));
  ChannelOptions o = small_options();
  o.mode = 0644;
  auto pub = Publisher::open(ch.name(), o);
  ASSERT_TRUE(pub) << pub.error().message;
  for (const char* text : {"a", "b", "c"}) {
    ASSERT_EQ(pub->publish(bytes_of(text), std::chrono::seconds(5)), PublishStatus::ok);
  }
  Child child = Child::fork([&] {
    if (::setgid(65534) != 0 || ::setuid(65534) != 0) return 3;
    auto block = Subscriber::open(ch.name(), sub_options(Policy::block));
    std::printf("BLOCK %s\n",
                block ? "opened"
                      : (block.error().code == ErrorCode::permission_denied ? "permission_denied"
                                                                            : "other-error"));
    auto drop = Subscriber::open(ch.name(), sub_options(Policy::drop, StartFrom::earliest));
    if (!drop) {
      std::printf("DROP failed %s\n", drop.error().message.c_str());
      return 1;
    }
    const auto got = receive(*drop, 3);
    std::printf("DROP received=%zu lost=%llu\n", got.size(),
                static_cast<unsigned long long>(drop->lost()));
    return 0;
  });
  auto st = child.wait(std::chrono::seconds(20));
  ASSERT_TRUE(st);
  EXPECT_TRUE(st->ok()) << st->describe() << "\n" << child.output();
  EXPECT_TRUE(child.output().find("BLOCK permission_denied") != std::string::npos)
      << child.output();
  EXPECT_TRUE(child.output().find("DROP received=3 lost=0") != std::string::npos)
      << child.output();
}

// posix_fallocate makes a full /dev/shm fail at creation, cleanly, instead of with SIGBUS later.
TEST(Channel, CapacityBeyondFreeSharedMemoryFailsWithNoSpaceAndLeavesNothing) {
  struct statvfs vfs{};
  ASSERT_EQ(::statvfs("/dev/shm", &vfs), 0);
  const std::uint64_t capacity = core::kMaxCapacity;  // 1 TiB
  const long double free_bytes = static_cast<long double>(vfs.f_bavail) * vfs.f_frsize;
  if (vfs.f_blocks == 0 || free_bytes >= static_cast<long double>(capacity)) {
    GTEST_SKIP() << "/dev/shm is unlimited or has 1 TiB free: cannot request more than it has";
  }
  ChannelGuard ch(unique_channel("nospace"));
  ChannelOptions o = small_options();
  o.capacity = capacity;
  auto pub = Publisher::open(ch.name(), o);
  ASSERT_FALSE(pub);
  EXPECT_EQ(pub.error().code, ErrorCode::no_space) << pub.error().message;
  EXPECT_TRUE(channel_objects(ch.name()).empty())
      << ::testing::PrintToString(channel_objects(ch.name()));
  // Nothing was published under the name: a subscriber still finds no channel.
  auto sub = Subscriber::open(ch.name(), sub_options(Policy::drop));
  ASSERT_FALSE(sub);
  EXPECT_EQ(sub.error().code, ErrorCode::not_found);
}

TEST(Channel, SpillPolicyWithoutAJournalerIsInvalidArgument) {
  ChannelGuard ch(unique_channel("spill"));
  ASSERT_TRUE(Publisher::open(ch.name(), small_options()));
  auto sub = Subscriber::open(ch.name(), sub_options(Policy::spill));
  ASSERT_FALSE(sub);
  EXPECT_EQ(sub.error().code, ErrorCode::invalid_argument) << sub.error().message;
  EXPECT_NE(sub.error().message.find("shmbus record"), std::string::npos) << sub.error().message;
}

}  // namespace
}  // namespace shmbus
