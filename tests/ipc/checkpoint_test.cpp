// StateCheckpoint: round trips, damage of every kind is corrupt (never an empty state), and the
// atomic replace: under kill -9 at random moments, and on full disks, size limits and read-only
// directories, the file is always the previous checkpoint or the new one.
#include <signal.h>
#include <sys/mount.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include <chrono>
#include <csignal>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <random>
#include <thread>

#include <gtest/gtest.h>

#include "ipc/checkpoint_format.hpp"
#include "journal/format.hpp"
#include "shmbus/checkpoint.hpp"
#include "tests/support/inprocess.hpp"
#include "tests/support/journal_files.hpp"
#include "tests/support/process.hpp"
#include "tests/support/unprivileged.hpp"

namespace shmbus {
namespace {

using namespace std::chrono_literals;
using test::TempDir;

std::vector<std::byte> file_bytes(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::vector<char> raw((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  std::vector<std::byte> out(raw.size());
  std::memcpy(out.data(), raw.data(), raw.size());
  return out;
}

void put_file(const std::string& path, std::span<const std::byte> bytes) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out.write(reinterpret_cast<const char*>(bytes.data()), static_cast<std::streamsize>(bytes.size()));
}

std::vector<std::byte> text_bytes(std::string_view s) {
  std::vector<std::byte> out(s.size());
  std::memcpy(out.data(), s.data(), s.size());
  return out;
}

CheckpointData sample() {
  CheckpointData d;
  d.state = text_bytes("state: 42 apples");
  d.applied.through = 100;
  d.applied.sequences = {100, 103, 250};
  return d;
}

void expect_same(const CheckpointData& a, const CheckpointData& b) {
  EXPECT_EQ(a.state, b.state);
  EXPECT_EQ(a.applied.through, b.applied.through);
  EXPECT_EQ(a.applied.sequences, b.applied.sequences);
}

TEST(AppliedSet, CoversListedSequencesAndEverythingBelowThrough) {
  AppliedSet s;
  s.through = 10;
  s.sequences = {12, 15};
  EXPECT_TRUE(s.covers(0));
  EXPECT_TRUE(s.covers(9));
  EXPECT_FALSE(s.covers(10));
  EXPECT_FALSE(s.covers(11));
  EXPECT_TRUE(s.covers(12));
  EXPECT_TRUE(s.covers(15));
  EXPECT_FALSE(s.covers(16));
}

TEST(AppliedSet, AddMergesInOrderAndTrimDropsWhatIsBelowTheNewThrough) {
  AppliedSet s;
  s.through = 10;
  s.sequences = {12, 15, 30};
  const std::vector<std::uint64_t> more{11, 20, 31};
  s.add(more);
  EXPECT_EQ(s.sequences, (std::vector<std::uint64_t>{11, 12, 15, 20, 30, 31}));
  s.trim(20);
  EXPECT_EQ(s.through, 20u);
  EXPECT_EQ(s.sequences, (std::vector<std::uint64_t>{20, 30, 31}));
  s.trim(5);  // never lowers it
  EXPECT_EQ(s.through, 20u);
  EXPECT_EQ(s.sequences.size(), 3u);
}

TEST(StateCheckpoint, AMissingFileLoadsAsAnEmptyState) {
  TempDir dir("ckpt");
  auto c = StateCheckpoint::open(dir.file("m.ckpt"));
  ASSERT_TRUE(c) << c.error().message;
  auto d = c->load();
  ASSERT_TRUE(d) << d.error().message;
  EXPECT_TRUE(d->state.empty());
  EXPECT_EQ(d->applied.through, 0u);
  EXPECT_TRUE(d->applied.sequences.empty());
}

TEST(StateCheckpoint, OpenRefusesAMissingDirectory) {
  TempDir dir("ckpt");
  auto c = StateCheckpoint::open(dir.file("nowhere/m.ckpt"));
  ASSERT_FALSE(c);
  EXPECT_EQ(c.error().code, ErrorCode::not_found) << c.error().message;
}

TEST(StateCheckpoint, CommitThenLoadRoundTripsStateAndAppliedSet) {
  TempDir dir("ckpt");
  auto c = StateCheckpoint::open(dir.file("m.ckpt")).value();
  ASSERT_TRUE(c.commit(sample()));
  expect_same(c.load().value(), sample());
  // Replacing it: the newest wins, no temporary is left behind.
  CheckpointData next;
  next.state = std::vector<std::byte>(100000, std::byte{7});
  next.applied.through = 300;
  ASSERT_TRUE(c.commit(next));
  expect_same(c.load().value(), next);
  expect_same(read_checkpoint(dir.file("m.ckpt")).value(), next);
  EXPECT_FALSE(std::filesystem::exists(dir.file("m.ckpt.tmp")));
  // An empty state and list are a valid checkpoint too.
  ASSERT_TRUE(c.commit(CheckpointData{}));
  const auto empty = c.load().value();
  EXPECT_TRUE(empty.state.empty());
  EXPECT_TRUE(empty.applied.sequences.empty());
  EXPECT_EQ(std::filesystem::file_size(dir.file("m.ckpt")), sizeof(detail::CheckpointHeader));
}

TEST(StateCheckpoint, CommitRefusesAnAppliedListOutOfOrderOrBelowThrough) {
  TempDir dir("ckpt");
  auto c = StateCheckpoint::open(dir.file("m.ckpt")).value();
  ASSERT_TRUE(c.commit(sample()));
  CheckpointData bad = sample();
  bad.applied.sequences = {100, 100};
  auto r = c.commit(bad);
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code, ErrorCode::invalid_argument) << r.error().message;
  bad.applied.sequences = {99};
  r = c.commit(bad);
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code, ErrorCode::invalid_argument) << r.error().message;
  expect_same(c.load().value(), sample());
}

TEST(StateCheckpoint, EveryTruncationIsCorruptAndNamesTheFile) {
  TempDir dir("ckpt");
  const std::string path = dir.file("m.ckpt");
  auto c = StateCheckpoint::open(path).value();
  ASSERT_TRUE(c.commit(sample()));
  const auto whole = file_bytes(path);
  ASSERT_EQ(whole.size(), 48u + 3 * 8 + 16);
  for (std::size_t n = 0; n < whole.size(); ++n) {
    put_file(path, std::span(whole).first(n));
    const auto d = c.load();
    ASSERT_FALSE(d) << "a checkpoint cut to " << n << " bytes loaded";
    EXPECT_EQ(d.error().code, ErrorCode::corrupt) << n << ": " << d.error().message;
    EXPECT_NE(d.error().message.find(path), std::string::npos) << d.error().message;
  }
  // Bytes after the end are damage too.
  auto longer = whole;
  longer.push_back(std::byte{0});
  put_file(path, longer);
  const auto d = c.load();
  ASSERT_FALSE(d);
  EXPECT_EQ(d.error().code, ErrorCode::corrupt) << d.error().message;
}

TEST(StateCheckpoint, EveryFlippedBitIsCorrupt) {
  TempDir dir("ckpt");
  const std::string path = dir.file("m.ckpt");
  auto c = StateCheckpoint::open(path).value();
  ASSERT_TRUE(c.commit(sample()));
  const auto whole = file_bytes(path);
  for (std::size_t i = 0; i < whole.size(); ++i) {
    for (int bit = 0; bit < 8; ++bit) {
      auto damaged = whole;
      damaged[i] ^= std::byte(1u << bit);
      put_file(path, damaged);
      const auto d = c.load();
      ASSERT_FALSE(d) << "byte " << i << " bit " << bit << " flipped, and it loaded";
      EXPECT_EQ(d.error().code, ErrorCode::corrupt) << d.error().message;
    }
  }
  put_file(path, whole);
  expect_same(c.load().value(), sample());
}

// A file whose CRC matches but whose applied list breaks the rules (no writer produces it).
TEST(StateCheckpoint, ADescendingAppliedListIsCorruptEvenWithAValidCrc) {
  TempDir dir("ckpt");
  const std::string path = dir.file("m.ckpt");
  auto c = StateCheckpoint::open(path).value();
  ASSERT_TRUE(c.commit(sample()));
  auto bytes = file_bytes(path);
  const std::uint64_t swapped[2] = {103, 100};
  std::memcpy(bytes.data() + 48, swapped, sizeof swapped);
  std::uint32_t crc = journal::crc32c(bytes.data(), detail::kCheckpointCrcOffset);
  crc = journal::crc32c(crc, bytes.data() + 48, bytes.size() - 48);
  crc = journal::mask_crc(crc);
  std::memcpy(bytes.data() + detail::kCheckpointCrcOffset, &crc, sizeof crc);
  put_file(path, bytes);
  const auto d = c.load();
  ASSERT_FALSE(d);
  EXPECT_EQ(d.error().code, ErrorCode::corrupt);
  EXPECT_NE(d.error().message.find("ascending"), std::string::npos) << d.error().message;
}

// The state of commit number i: its counter and bytes derived from it, and applied {i, i+1, i+2}
// above through = i, so that a mix of two commits would show.
CheckpointData numbered(std::uint64_t i) {
  CheckpointData d;
  d.state.resize(8192);
  std::memcpy(d.state.data(), &i, sizeof i);
  for (std::size_t k = 8; k < d.state.size(); ++k) d.state[k] = std::byte((i * 31 + k) & 0xff);
  d.applied.through = i;
  d.applied.sequences = {i, i + 1, i + 2};
  return d;
}

TEST(StateCheckpoint, KilledWhileCommittingLeavesTheOldOrTheNewCheckpoint) {
  TempDir dir("ckpt");
  const std::string path = dir.file("m.ckpt");
  std::mt19937_64 rng(12345);
  std::uint64_t last = 0;
  int caught_mid_run = 0;
  for (int round = 0; round < 150; ++round) {
    test::Child child = test::Child::fork([&] {
      auto c = StateCheckpoint::open(path);
      if (!c) return 2;
      auto d = c->load();
      if (!d) return 3;
      std::uint64_t i = 0;
      if (!d->state.empty()) std::memcpy(&i, d->state.data(), sizeof i);
      const char ready[] = "READY\n";
      if (::write(1, ready, sizeof ready - 1) < 0) return 4;
      for (;;) {
        if (!c->commit(numbered(++i))) return 5;
      }
    });
    ASSERT_TRUE(child.wait_for_line("READY", 10s)) << child.output();
    std::this_thread::sleep_for(std::chrono::microseconds(rng() % 20000));
    ASSERT_TRUE(child.running()) << "the committing child ended by itself";
    child.kill_hard();
    const auto d = read_checkpoint(path);
    ASSERT_TRUE(d) << "round " << round << ": " << d.error().message;
    if (d->state.empty()) continue;  // killed before its first commit
    std::uint64_t i = 0;
    std::memcpy(&i, d->state.data(), sizeof i);
    expect_same(*d, numbered(i));
    EXPECT_GE(i, last) << "a committed checkpoint went back";
    if (i > last) ++caught_mid_run;
    last = i;
  }
  EXPECT_GT(caught_mid_run, 0) << "no round committed anything";
}

// A small tmpfs mounted for the test (we run as root); unmounted however the test ends.
class SmallFileSystem {
 public:
  SmallFileSystem(const std::string& path, const char* size) : path_(path) {
    const std::string options = std::string("size=") + size;
    if (::mount("tmpfs", path.c_str(), "tmpfs", 0, options.c_str()) == 0) {
      mounted_ = true;
    } else {
      error_ = std::strerror(errno);
    }
  }
  ~SmallFileSystem() {
    if (mounted_) ::umount2(path_.c_str(), MNT_DETACH);
  }
  bool mounted() const { return mounted_; }
  const std::string& error() const { return error_; }

 private:
  std::string path_;
  bool mounted_ = false;
  std::string error_;
};

TEST(StateCheckpoint, AFullFileSystemIsNoSpaceAndLeavesThePreviousCheckpoint) {
  TempDir base("ckpt");
  SmallFileSystem fs(base.path(), "64k");
  if (!fs.mounted()) GTEST_SKIP() << "cannot mount a tmpfs: " << fs.error();
  const std::string path = base.file("m.ckpt");
  auto c = StateCheckpoint::open(path).value();
  ASSERT_TRUE(c.commit(sample()));
  CheckpointData big;
  big.state = std::vector<std::byte>(256 << 10, std::byte{1});
  const auto r = c.commit(big);
  ASSERT_FALSE(r) << "a 256 KiB checkpoint fit a 64 KiB file system";
  EXPECT_EQ(r.error().code, ErrorCode::no_space) << r.error().message;
  EXPECT_NE(r.error().message.find(path), std::string::npos) << r.error().message;
  expect_same(c.load().value(), sample());
  EXPECT_FALSE(std::filesystem::exists(path + ".tmp"));
  // The space the failed attempt took is free again.
  CheckpointData next = sample();
  next.applied.sequences.push_back(400);
  ASSERT_TRUE(c.commit(next));
  expect_same(c.load().value(), next);
}

// RLIMIT_FSIZE applies to the whole process, so it runs in a child; SIGXFSZ is ignored so that a
// write past the limit fails with EFBIG instead of killing it.
TEST(StateCheckpoint, AFileSizeLimitIsNoSpaceAndLeavesThePreviousCheckpoint) {
  TempDir dir("ckpt");
  const std::string path = dir.file("m.ckpt");
  ASSERT_TRUE(StateCheckpoint::open(path).value().commit(sample()));
  test::Child child = test::Child::fork([&] {
    std::signal(SIGXFSZ, SIG_IGN);
    rlimit limit{16 << 10, RLIM_INFINITY};
    if (::setrlimit(RLIMIT_FSIZE, &limit) != 0) return 2;
    auto c = StateCheckpoint::open(path);
    if (!c) return 3;
    CheckpointData big;
    big.state = std::vector<std::byte>(64 << 10, std::byte{1});
    const auto r = c->commit(big);
    if (r) return 4;
    std::printf("REFUSED code=%d\n", static_cast<int>(r.error().code));
    std::fflush(stdout);
    return 0;
  });
  const auto st = child.wait(20s);
  ASSERT_TRUE(st);
  ASSERT_TRUE(st->ok()) << st->describe() << child.output();
  EXPECT_NE(child.output().find("REFUSED code=" + std::to_string(static_cast<int>(ErrorCode::no_space))),
            std::string::npos)
      << child.output();
  expect_same(read_checkpoint(path).value(), sample());
  EXPECT_FALSE(std::filesystem::exists(path + ".tmp"));
}

TEST(StateCheckpoint, AnUnwritableDirectoryIsPermissionDeniedAndLeavesThePreviousCheckpoint) {
  if (!test::can_drop_privileges()) GTEST_SKIP() << "needs root to become nobody";
  TempDir dir("ckpt");
  ASSERT_EQ(::chmod(dir.path().c_str(), 0755), 0);
  const std::string path = dir.file("m.ckpt");
  ASSERT_TRUE(StateCheckpoint::open(path).value().commit(sample()));
  ASSERT_EQ(::chmod(path.c_str(), 0644), 0);
  test::Child child = test::Child::fork([&] {
    if (!test::become_nobody()) return 2;
    auto c = StateCheckpoint::open(path);
    if (!c) return 3;
    if (!c->load()) return 4;  // reading is allowed
    const auto r = c->commit(CheckpointData{});
    if (r) return 5;
    std::printf("REFUSED code=%d message=%s\n", static_cast<int>(r.error().code),
                r.error().message.c_str());
    std::fflush(stdout);
    return 0;
  });
  const auto st = child.wait(20s);
  ASSERT_TRUE(st);
  ASSERT_TRUE(st->ok()) << st->describe() << child.output();
  EXPECT_NE(child.output().find("REFUSED code=" +
                                std::to_string(static_cast<int>(ErrorCode::permission_denied))),
            std::string::npos)
      << child.output();
  expect_same(read_checkpoint(path).value(), sample());
}

}  // namespace
}  // namespace shmbus
