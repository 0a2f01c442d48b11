// `shmbus record` killed with SIGKILL at random moments while a producer process publishes: after
// every kill the journal verifies, holds everything up to the durable sequence the channel had
// announced, and the restarted journaler continues it without a gap.
#include <gtest/gtest.h>
#include <signal.h>

#include <cstdlib>
#include <filesystem>
#include <random>
#include <thread>

#include "ipc/journal_link.hpp"
#include "shmbus/journal_reader.hpp"
#include "tests/support/journal_files.hpp"
#include "tests/support/payload.hpp"
#include "tests/support/process.hpp"

namespace shmbus::journal {
namespace {

using namespace std::chrono_literals;
using test::Child;
using test::ChannelGuard;

using ::shmbus::test::TempDir;

constexpr std::uint32_t kProducer = 5;
const test::SizeRule kRule{.seed = 11, .min_size = 8, .max_size = 200};

Child start_journaler(const std::string& channel, const std::string& dir) {
  return Child::spawn({SHMBUS_CLI, "record", channel, "--dir", dir, "--fsync", "interval:10",
                       "--segment-size", "1MiB", "--liveness-timeout-ms", "60000", "--quiet"});
}

// Reads the whole journal: every record must be data, sequences 1, 2, 3... with the payload the
// producer generated for it. Returns the last sequence.
std::uint64_t check_journal(const std::string& dir) {
  auto reader = JournalReader::open(dir);
  EXPECT_TRUE(reader) << reader.error().message;
  if (!reader) return 0;
  EXPECT_TRUE(reader->seek_sequence(1));
  JournalRecord r;
  std::uint64_t expected = 1;
  std::vector<std::byte> bytes;
  for (;;) {
    const ReadStatus st = reader->next(r);
    if (st == ReadStatus::end) break;
    EXPECT_EQ(st, ReadStatus::record) << reader->last_error();
    if (st != ReadStatus::record) break;
    EXPECT_EQ(r.type, RecordType::data) << "a gap at sequence " << r.sequence;
    EXPECT_EQ(r.sequence, expected);
    if (r.type != RecordType::data || r.sequence != expected) break;
    const test::PayloadId id{kProducer, expected - 1};
    bytes.resize(test::payload_length(kRule, id));
    test::fill_payload(bytes, id);
    EXPECT_TRUE(std::equal(bytes.begin(), bytes.end(), r.payload.begin(), r.payload.end()))
        << "payload of sequence " << expected;
    ++expected;
  }
  return expected - 1;
}

// 20 kills, or SHMBUS_JOURNALER_KILLS: the test command's AddressSanitizer run does 8, where each
// kill's verification of the whole journal, growing to 40 MB, costs seconds (46 s for the 20, the
// longest test of that run); its Release run does the 20.
int kills_from_env() {
  const char* v = std::getenv("SHMBUS_JOURNALER_KILLS");
  if (v == nullptr || *v == '\0') return 20;
  return static_cast<int>(std::strtol(v, nullptr, 10));
}

TEST(JournalerCrash, KilledTwentyTimesWhileAProducerRunsItLosesNothing) {
  constexpr std::uint64_t kCount = 400'000;
  const int kills = kills_from_env();
  ASSERT_GE(kills, 4) << "SHMBUS_JOURNALER_KILLS";
  ChannelGuard channel(test::unique_channel("jkill"));
  TempDir dir("jkill");
  ChannelOptions co;
  co.capacity = 1 << 20;
  co.max_message = 1024;
  auto observer = Publisher::open(channel.name(), co);  // reads the journal progress words
  ASSERT_TRUE(observer) << observer.error().message;

  Child journaler = start_journaler(channel.name(), dir.path());
  const auto attach_deadline = std::chrono::steady_clock::now() + 10s;
  auto mapping = detail::ChannelMapping::open(channel.name(), false, 1s);
  ASSERT_TRUE(mapping) << mapping.error().message;
  while (!detail::find_journal(**mapping)) {
    ASSERT_LT(std::chrono::steady_clock::now(), attach_deadline) << journaler.output();
    std::this_thread::sleep_for(1ms);
  }
  Child producer = Child::fork([&] {
    auto pub = Publisher::open(channel.name(), co);
    if (!pub) return 1;
    for (std::uint64_t counter = 0; counter < kCount; ++counter) {
      const test::PayloadId id{kProducer, counter};
      Claim c;
      // Long timeout: while the journaler is down its gate holds the producer back.
      if (pub->claim(test::payload_length(kRule, id), c, 60s) != PublishStatus::ok) return 2;
      test::fill_payload(c.span(), id);
      if (pub->commit(c) != PublishStatus::ok) return 3;
      if (counter % 2000 == 1999) std::this_thread::sleep_for(10ms);  // ~150k msg/s at most
    }
    return 0;
  });

  std::mt19937_64 rng(std::random_device{}());
  std::uint64_t last_durable = 0;
  int kills_while_publishing = 0;
  for (int kill = 1; kill <= kills; ++kill) {
    std::this_thread::sleep_for(std::chrono::milliseconds(20 + rng() % 130));
    const std::uint64_t durable = observer->durable_sequence();
    if (producer.running()) ++kills_while_publishing;
    ::kill(journaler.pid(), SIGKILL);
    auto status = journaler.wait(10s);
    ASSERT_TRUE(status) << "kill " << kill;
    ASSERT_EQ(status->signal, SIGKILL) << status->describe() << "\n" << journaler.output();

    // Restart: the new journaler recovers the directory (cuts the torn tail, repairs what writes
    // completing out of order left) and attaches. Then freeze it, so the files hold still while
    // they are verified and read back.
    journaler = start_journaler(channel.name(), dir.path());
    const auto deadline = std::chrono::steady_clock::now() + 10s;
    for (;;) {
      auto link = detail::find_journal(**mapping);
      if (link && link->owner.pid == static_cast<std::uint32_t>(journaler.pid())) break;
      ASSERT_LT(std::chrono::steady_clock::now(), deadline) << journaler.output();
      std::this_thread::sleep_for(1ms);
    }
    ::kill(journaler.pid(), SIGSTOP);
    std::this_thread::sleep_for(50ms);  // writes the kernel already had complete meanwhile

    Child verify = Child::spawn({SHMBUS_CLI, "journal", "verify", "--dir", dir.path()});
    auto verified = verify.wait(60s);
    ASSERT_TRUE(verified);
    ASSERT_TRUE(verified->ok()) << "after restart " << kill << ": " << verify.output();

    const std::uint64_t last = check_journal(dir.path());
    ASSERT_FALSE(::testing::Test::HasFailure()) << "after restart " << kill;
    ASSERT_GE(last, durable) << "kill " << kill << ": the journal lost durable records";
    EXPECT_GE(durable, last_durable);
    last_durable = durable;
    ::kill(journaler.pid(), SIGCONT);
  }

  // The kills must have landed while records were flowing, or the test proves nothing (15 of 20).
  EXPECT_GE(kills_while_publishing, kills * 3 / 4);
  auto produced = producer.wait(120s);
  ASSERT_TRUE(produced);
  ASSERT_TRUE(produced->ok()) << produced->describe();
  const auto deadline = std::chrono::steady_clock::now() + 60s;
  while (observer->journaled_sequence() < kCount) {
    ASSERT_LT(std::chrono::steady_clock::now(), deadline)
        << "journaled " << observer->journaled_sequence() << "\n" << journaler.output();
    std::this_thread::sleep_for(5ms);
  }
  ::kill(journaler.pid(), SIGTERM);
  auto stopped = journaler.wait(20s);
  ASSERT_TRUE(stopped);
  EXPECT_TRUE(stopped->ok()) << stopped->describe() << "\n" << journaler.output();
  EXPECT_EQ(check_journal(dir.path()), kCount);
  EXPECT_GT(last_durable, 0u) << "the durable sequence never advanced";
}

TEST(JournalerCrash, AJournalerDownPastItsLivenessTimeoutIsEvictedAndWritesAGapOnRestart) {
  ChannelGuard channel(test::unique_channel("jevict"));
  TempDir dir("jevict");
  ChannelOptions co;
  co.capacity = 64 << 10;
  co.max_message = 1024;
  auto pub = Publisher::open(channel.name(), co);
  ASSERT_TRUE(pub) << pub.error().message;
  auto publish = [&](std::uint64_t from, std::uint64_t to) {
    for (std::uint64_t counter = from; counter < to; ++counter) {
      const test::PayloadId id{kProducer, counter};
      Claim c;
      ASSERT_EQ(pub->claim(test::payload_length(kRule, id), c, 20s), PublishStatus::ok);
      test::fill_payload(c.span(), id);
      ASSERT_EQ(pub->commit(c), PublishStatus::ok);
    }
  };
  auto start = [&] {
    return Child::spawn({SHMBUS_CLI, "record", channel.name(), "--dir", dir.path(),
                         "--liveness-timeout-ms", "100", "--quiet"});
  };
  auto wait_journaled = [&](std::uint64_t seq, const Child& who) {
    const auto deadline = std::chrono::steady_clock::now() + 20s;
    while (pub->journaled_sequence() < seq) {
      ASSERT_LT(std::chrono::steady_clock::now(), deadline) << who.output();
      std::this_thread::sleep_for(1ms);
    }
  };
  Child journaler = start();
  auto mapping = detail::ChannelMapping::open(channel.name(), false, 1s);
  ASSERT_TRUE(mapping) << mapping.error().message;
  while (!detail::find_journal(**mapping)) std::this_thread::sleep_for(1ms);
  publish(0, 100);
  wait_journaled(100, journaler);
  ::kill(journaler.pid(), SIGKILL);
  ASSERT_TRUE(journaler.wait(10s));
  // Past the dead journaler's liveness timeout the producer evicts its gate and laps it.
  publish(100, 5000);
  journaler = start();
  wait_journaled(5000, journaler);

  auto reader = JournalReader::open(dir.path());
  ASSERT_TRUE(reader) << reader.error().message;
  ASSERT_TRUE(reader->seek_sequence(1));
  JournalRecord r;
  std::uint64_t expected = 1, gaps = 0;
  std::vector<std::byte> want;
  while (reader->next(r) == ReadStatus::record) {
    ASSERT_EQ(r.sequence, expected);
    if (r.type == RecordType::gap) {
      ++gaps;
      EXPECT_EQ(r.sequence, 101u) << "the gap starts right after what was written before the kill";
    } else {
      const test::PayloadId id{kProducer, r.sequence - 1};
      want.resize(test::payload_length(kRule, id));
      test::fill_payload(want, id);
      ASSERT_TRUE(std::equal(want.begin(), want.end(), r.payload.begin(), r.payload.end()));
    }
    expected = r.next_sequence();
  }
  EXPECT_EQ(expected, 5001u);
  EXPECT_EQ(gaps, 1u);
  ::kill(journaler.pid(), SIGTERM);
  auto stopped = journaler.wait(10s);
  ASSERT_TRUE(stopped);
  EXPECT_TRUE(stopped->ok()) << stopped->describe();
}

// A small tmpfs mounted over a fresh directory, unmounted at the end; empty path if mounting is
// not allowed here.
class SmallFileSystem {
 public:
  explicit SmallFileSystem(const char* size) : dir_("jfull") {
    const std::string cmd = std::string("mount -t tmpfs -o size=") + size + " tmpfs " + dir_.path() +
                            " 2>/dev/null";
    mounted_ = std::system(cmd.c_str()) == 0;
  }
  ~SmallFileSystem() {
    if (mounted_) std::system(("umount " + dir_.path()).c_str());
  }
  bool mounted() const { return mounted_; }
  const std::string& path() const { return dir_.path(); }

 private:
  TempDir dir_;
  bool mounted_ = false;
};

void fill_file(const std::string& path, std::size_t bytes) {
  std::vector<char> zeros(bytes);
  FILE* f = std::fopen(path.c_str(), "w");
  ASSERT_NE(f, nullptr);
  ASSERT_EQ(std::fwrite(zeros.data(), 1, zeros.size(), f), zeros.size());
  ASSERT_EQ(std::fclose(f), 0);
}

TEST(JournalerCrash, AFullDiskHoldsTheRecordsAndRecordingResumesWhenSpaceIsFreed) {
  constexpr std::uint64_t kCount = 20'000;
  SmallFileSystem fs("4m");
  if (!fs.mounted()) GTEST_SKIP() << "cannot mount a tmpfs here (needs root)";
  ChannelGuard channel(test::unique_channel("jfull"));
  ChannelOptions co;
  co.capacity = 256 << 10;
  co.max_message = 1024;
  auto observer = Publisher::open(channel.name(), co);
  ASSERT_TRUE(observer) << observer.error().message;
  const std::string filler = fs.path() + "/filler";
  fill_file(filler, 3 << 20);  // leaves about 1 MiB for the journal, which needs about 2.5 MiB
  const std::string dir = fs.path() + "/journal";
  Child journaler = Child::spawn({SHMBUS_CLI, "record", channel.name(), "--dir", dir,
                                  "--segment-size", "512KiB", "--quiet"});
  auto mapping = detail::ChannelMapping::open(channel.name(), false, 1s);
  ASSERT_TRUE(mapping) << mapping.error().message;
  while (!detail::find_journal(**mapping)) std::this_thread::sleep_for(1ms);
  Child producer = Child::fork([&] {
    auto pub = Publisher::open(channel.name(), co);
    if (!pub) return 1;
    for (std::uint64_t counter = 0; counter < kCount; ++counter) {
      const test::PayloadId id{kProducer, counter};
      Claim c;
      if (pub->claim(test::payload_length(kRule, id), c, 60s) != PublishStatus::ok) return 2;
      test::fill_payload(c.span(), id);
      if (pub->commit(c) != PublishStatus::ok) return 3;
    }
    return 0;
  });

  // The disk fills: the journal stops short and stays there, holding the producer back. Stuck
  // means unchanged for half a second: on a loaded 2-core machine (the sanitizer build under
  // ctest -j2) the journaler can miss a 50 ms sample while it is merely descheduled.
  std::uint64_t stuck_at = 0;
  int unchanged = 0;
  for (int i = 0; i < 400 && unchanged < 10; ++i) {
    std::this_thread::sleep_for(50ms);
    const std::uint64_t now = observer->journaled_sequence();
    unchanged = now == stuck_at && now > 0 ? unchanged + 1 : 0;
    stuck_at = now;
  }
  std::this_thread::sleep_for(300ms);
  ASSERT_EQ(observer->journaled_sequence(), stuck_at) << "still moving: the disk never filled";
  ASSERT_LT(stuck_at, kCount);
  EXPECT_TRUE(producer.running()) << "the producer must be held back, not have lost records";
  EXPECT_TRUE(journaler.running()) << "with --on-error wait the journaler waits";
  Child verify = Child::spawn({SHMBUS_CLI, "journal", "verify", "--dir", dir});
  auto verified = verify.wait(30s);
  ASSERT_TRUE(verified);
  EXPECT_TRUE(verified->ok()) << "nothing corrupted while the disk is full: " << verify.output();

  ASSERT_EQ(::unlink(filler.c_str()), 0);
  const auto deadline = std::chrono::steady_clock::now() + 30s;
  while (observer->journaled_sequence() < kCount) {
    ASSERT_LT(std::chrono::steady_clock::now(), deadline) << "recording did not resume";
    std::this_thread::sleep_for(5ms);
  }
  auto produced = producer.wait(30s);
  ASSERT_TRUE(produced);
  EXPECT_TRUE(produced->ok()) << produced->describe();
  ::kill(journaler.pid(), SIGTERM);
  auto stopped = journaler.wait(20s);
  ASSERT_TRUE(stopped);
  EXPECT_TRUE(stopped->ok()) << stopped->describe();
  EXPECT_EQ(check_journal(dir), kCount);
}

TEST(JournalerCrash, WithOnErrorExitAFullDiskEndsTheJournalerAndARestartLosesNothing) {
  constexpr std::uint64_t kCount = 20'000;
  SmallFileSystem fs("4m");
  if (!fs.mounted()) GTEST_SKIP() << "cannot mount a tmpfs here (needs root)";
  ChannelGuard channel(test::unique_channel("jfullx"));
  ChannelOptions co;
  co.capacity = 256 << 10;
  co.max_message = 1024;
  auto pub = Publisher::open(channel.name(), co);
  ASSERT_TRUE(pub) << pub.error().message;
  const std::string filler = fs.path() + "/filler";
  fill_file(filler, 3 << 20);
  const std::string dir = fs.path() + "/journal";
  Child journaler = Child::spawn({SHMBUS_CLI, "record", channel.name(), "--dir", dir,
                                  "--segment-size", "512KiB", "--on-error", "exit",
                                  "--give-up-ms", "100", "--quiet"});
  auto mapping = detail::ChannelMapping::open(channel.name(), false, 1s);
  ASSERT_TRUE(mapping) << mapping.error().message;
  while (!detail::find_journal(**mapping)) std::this_thread::sleep_for(1ms);
  std::uint64_t published = 0;
  while (journaler.running() && published < kCount) {
    const test::PayloadId id{kProducer, published};
    Claim c;
    const PublishStatus st = pub->claim(test::payload_length(kRule, id), c, 100ms);
    if (st == PublishStatus::timed_out) continue;
    ASSERT_EQ(st, PublishStatus::ok);
    test::fill_payload(c.span(), id);
    ASSERT_EQ(pub->commit(c), PublishStatus::ok);
    ++published;
  }
  auto ended = journaler.wait(20s);
  ASSERT_TRUE(ended) << "the journaler did not give up";
  EXPECT_TRUE(ended->exited && ended->code == 1) << ended->describe();

  ASSERT_EQ(::unlink(filler.c_str()), 0);
  journaler = Child::spawn({SHMBUS_CLI, "record", channel.name(), "--dir", dir, "--segment-size",
                            "512KiB", "--quiet"});
  for (; published < kCount; ++published) {
    const test::PayloadId id{kProducer, published};
    Claim c;
    ASSERT_EQ(pub->claim(test::payload_length(kRule, id), c, 30s), PublishStatus::ok);
    test::fill_payload(c.span(), id);
    ASSERT_EQ(pub->commit(c), PublishStatus::ok);
  }
  const auto deadline = std::chrono::steady_clock::now() + 30s;
  while (pub->journaled_sequence() < kCount) {
    ASSERT_LT(std::chrono::steady_clock::now(), deadline) << journaler.output();
    std::this_thread::sleep_for(5ms);
  }
  ::kill(journaler.pid(), SIGTERM);
  ASSERT_TRUE(journaler.wait(20s));
  EXPECT_EQ(check_journal(dir), kCount);
}

}  // namespace
}  // namespace shmbus::journal
