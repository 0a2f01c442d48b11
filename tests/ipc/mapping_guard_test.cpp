// shmbus::detail::MappingGuard: a SIGBUS from touching a page of a shmbus object that another
// process truncated is survived (the pages read as zeros, the object is named); without a guard,
// or for a mapping that is no shmbus object, SIGBUS ends the process as before.
#include <fcntl.h>
#include <sys/mman.h>
#include <unistd.h>

#include <csignal>
#include <cstdint>
#include <string>

#include <gtest/gtest.h>

#include "core/layout.hpp"
#include "shmbus/mapping_guard.hpp"
#include "shmbus/shmbus.hpp"
#include "tests/support/inprocess.hpp"
#include "tests/support/process.hpp"
#include "tests/support/segments.hpp"

namespace shmbus {
namespace {

using namespace shmbus::test;
using namespace std::chrono_literals;

constexpr off_t kTruncatedSize = 4096;

void truncate_from_another_process(const std::string& path, off_t bytes) {
  Child peer = Child::fork([path, bytes] {
    const int fd = ::open(path.c_str(), O_RDWR);
    if (fd < 0) return 2;
    return ::ftruncate(fd, bytes) == 0 ? 0 : 3;
  });
  const auto status = peer.wait(5s);
  ASSERT_TRUE(status && status->ok()) << (status ? status->describe() : "still running");
}

// Reads one byte the compiler may not drop.
std::uint8_t touch(const std::byte* p) { return *reinterpret_cast<const volatile std::uint8_t*>(p); }

// Ended by the bus error. Under AddressSanitizer its own SIGBUS handler reports the fault and then
// aborts (or exits with an error) instead.
void expect_ended_by_bus_error(const ExitStatus& status) {
#if defined(__SANITIZE_ADDRESS__)
  EXPECT_FALSE(status.ok()) << status.describe();
#else
  EXPECT_EQ(status.signal, SIGBUS) << status.describe();
#endif
}

// A channel whose ring holds a message at the start of its data area, where a read after the
// truncation lands.
void make_channel(const std::string& channel) {
  auto pub = Publisher::open(channel, small_options());
  ASSERT_TRUE(pub);
  ASSERT_EQ(pub->try_publish(bytes_of("hello")), PublishStatus::ok);
}

TEST(MappingGuard, ReadPastATruncationReadsZerosAndNamesTheObject) {
  ChannelGuard ch(unique_channel("guard-read"));
  make_channel(ch.name());
  auto ring = FileMapping::open(ring_path(ch.name()), false);
  ASSERT_TRUE(ring);
  const std::byte* data = ring->data() + core::kRingDataOffset;
  // The first record's commit word: the channel's random key at position 0, never zero (its
  // first byte alone is zero for one key in eight).
  ASSERT_NE(*reinterpret_cast<const volatile std::uint64_t*>(data), 0u);
  const detail::MappingGuard guard;
  EXPECT_FALSE(detail::MappingGuard::caught());
  truncate_from_another_process(ring_path(ch.name()), kTruncatedSize);
  EXPECT_EQ(touch(data), 0u);
  EXPECT_EQ(touch(data + 8192), 0u);
  EXPECT_TRUE(detail::MappingGuard::caught());
  const auto truncation = detail::MappingGuard::take();
  ASSERT_TRUE(truncation);
  EXPECT_EQ(truncation->object, ring_path(ch.name()));
  EXPECT_EQ(detail::describe(*truncation),
            "channel '" + ch.name() + "': its shared-memory object " + ring_path(ch.name()) +
                " was truncated to 4096 bytes by another process");
  EXPECT_FALSE(detail::MappingGuard::take());  // taken
  EXPECT_NE(touch(ring->data()), 0u);  // the header's page is still the object's
}

TEST(MappingGuard, SubscriberPollingATruncatedRingDeliversNothingAndSurvives) {
  ChannelGuard ch(unique_channel("guard-sub"));
  make_channel(ch.name());
  const std::string name = ch.name();
  // In a child of its own: the truncation spoils its mappings for good.
  Child reader = Child::fork([name] {
    const detail::MappingGuard guard;
    auto sub = Subscriber::open(name, sub_options(Policy::drop, StartFrom::earliest));
    if (!sub) return 2;
    std::size_t before = 0;
    for (int i = 0; i < 10; ++i) before += sub->poll([](const Message&) {});
    if (before != 1) return 6;
    Child truncator = Child::fork([name] {
      const int fd = ::open(ring_path(name).c_str(), O_RDWR);
      return fd >= 0 && ::ftruncate(fd, kTruncatedSize) == 0 ? 0 : 3;
    });
    if (auto st = truncator.wait(5s); !st || !st->ok()) return 3;
    std::size_t delivered = 0;
    for (int i = 0; i < 100; ++i) delivered += sub->poll([](const Message&) {});
    (void)sub->wait(1ms);
    if (delivered != 0) return 4;
    return detail::MappingGuard::caught() ? 0 : 5;
  });
  const auto status = reader.wait(10s);
  ASSERT_TRUE(status);
  EXPECT_TRUE(status->ok()) << status->describe();
}

TEST(MappingGuard, WithoutAGuardTheTruncationEndsTheProcessWithSIGBUS) {
  ChannelGuard ch(unique_channel("guard-none"));
  make_channel(ch.name());
  const std::string path = ring_path(ch.name());
  Child reader = Child::fork([path] {
    auto ring = FileMapping::open(path, false);
    if (!ring) return 2;
    const int fd = ::open(path.c_str(), O_RDWR);
    if (fd < 0 || ::ftruncate(fd, kTruncatedSize) != 0) return 3;
    return static_cast<int>(touch(ring->data() + core::kRingDataOffset));
  });
  const auto status = reader.wait(10s);
  ASSERT_TRUE(status);
  expect_ended_by_bus_error(*status);
}

TEST(MappingGuard, SIGBUSFromAMappingThatIsNoShmbusObjectStillEndsTheProcess) {
  const std::string path = ::testing::TempDir() + "/mapping_guard_other_" + std::to_string(::getpid());
  Child reader = Child::fork([path] {
    const detail::MappingGuard guard;
    const int fd = ::open(path.c_str(), O_RDWR | O_CREAT | O_TRUNC, 0600);
    if (fd < 0 || ::ftruncate(fd, 65536) != 0) return 2;
    void* p = ::mmap(nullptr, 65536, PROT_READ, MAP_SHARED, fd, 0);
    if (p == MAP_FAILED) return 3;
    if (::ftruncate(fd, 4096) != 0) return 4;
    return static_cast<int>(touch(static_cast<const std::byte*>(p) + 8192));
  });
  const auto status = reader.wait(10s);
  ::unlink(path.c_str());
  ASSERT_TRUE(status);
  expect_ended_by_bus_error(*status);
}

}  // namespace
}  // namespace shmbus
