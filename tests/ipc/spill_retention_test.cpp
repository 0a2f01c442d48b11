// A spill subscriber lapped so far that retention removed the journal segments holding its next
// sequence: it resumes from the journal's earliest retained sequence, counting as lost exactly
// the sequences retention removed, rather than skipping to the ring's earliest record (which would
// throw away everything the journal still holds).
#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <string>
#include <thread>
#include <vector>

#include "shmbus/journaler.hpp"
#include "shmbus/journal_reader.hpp"
#include "shmbus/shmbus.hpp"
#include "tests/support/inprocess.hpp"
#include "tests/support/journal_files.hpp"
#include "tests/support/process.hpp"

namespace shmbus {
namespace {

using namespace shmbus::test;

constexpr std::uint64_t kCapacity = 64 << 10;
constexpr std::uint64_t kPerLap = kCapacity / 256;  // a 200-byte message takes a 256-byte frame

std::string numbered(std::uint64_t i) {
  std::string s = "r";
  s += std::to_string(i);
  s.resize(200, '.');
  return s;
}

// A journaler on its own thread with small segments and a small retention, so that publishing a
// few thousand messages makes it delete its oldest segments.
class RetainingJournaler {
 public:
  RetainingJournaler(const std::string& channel, const std::string& dir) {
    JournalerOptions jo;
    jo.channel = channel;
    jo.writer.dir = dir;
    jo.writer.segment_bytes = 64 << 10;
    jo.writer.retain_bytes = 256 << 10;
    jo.writer.buffer_bytes = 16 << 10;
    jo.writer.buffers = 4;
    auto j = Journaler::open(jo);
    if (!j) throw std::runtime_error(j.error().message);
    journaler_.emplace(std::move(*j));
    thread_ = std::thread([this] { result_ = journaler_->run(stop_); });
  }
  ~RetainingJournaler() {
    stop_.store(true);  // relaxed would do: join orders the rest
    thread_.join();
  }

 private:
  std::optional<Journaler> journaler_;
  std::atomic<bool> stop_{false};
  Result<void> result_;
  std::thread thread_;
};

TEST(SpillRetention, ALappedSubscriberResumesAtTheJournalsEarliestAndLosesOnlyWhatRetentionRemoved) {
  ChannelGuard ch(unique_channel("spillretain"));
  TempDir dir("spillretain");
  ChannelOptions co;
  co.capacity = kCapacity;
  co.max_message = 1024;
  auto pub = Publisher::open(ch.name(), co);
  ASSERT_TRUE(pub) << pub.error().message;
  RetainingJournaler journaler(ch.name(), dir.path());
  auto sub = Subscriber::open(ch.name(), sub_options(Policy::spill));
  ASSERT_TRUE(sub) << sub.error().message;

  const std::uint64_t n = 24 * kPerLap;  // about 6 000 messages: 24 laps, ~22 segments
  for (std::uint64_t i = 1; i <= n; ++i) {
    ASSERT_EQ(pub->publish(bytes_of(numbered(i)), std::chrono::seconds(30)), PublishStatus::ok);
  }
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(30);
  while (pub->journaled_sequence() < n && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  ASSERT_GE(pub->journaled_sequence(), n);
  // Retention runs as segments roll; nothing rolls once publishing stopped.
  auto reader = journal::JournalReader::open(dir.path());
  ASSERT_TRUE(reader) << reader.error().message;
  const std::uint64_t earliest = reader->first_sequence();
  ASSERT_GT(earliest, 1u) << "retention removed no segment";
  ASSERT_LT(earliest + kPerLap, n) << "the journal must hold more than the ring";

  const auto got = receive_messages(*sub, n - earliest + 1, std::chrono::seconds(30));
  ASSERT_EQ(got.size(), n - earliest + 1);
  EXPECT_EQ(got.front().sequence, earliest);
  EXPECT_EQ(got.front().lost_before, earliest - 1) << "exactly the removed sequences";
  for (std::uint64_t i = 0; i < got.size(); ++i) {
    ASSERT_EQ(got[i].sequence, earliest + i);
    ASSERT_EQ(got[i].payload, numbered(earliest + i));
    if (i > 0) {
      ASSERT_EQ(got[i].lost_before, 0u) << "sequence " << got[i].sequence;
    }
  }
  EXPECT_EQ(sub->lost(), earliest - 1);
  EXPECT_GT(sub->spilled(), kPerLap) << "most of it came from the journal";
}

}  // namespace
}  // namespace shmbus
