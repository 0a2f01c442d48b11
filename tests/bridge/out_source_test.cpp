// Bridge out's ordered source (bridge/out_source.hpp), without a NATS server: records from the
// ring in order; what the ring no longer holds from the journal; with no journal, exactly one
// GAP record naming the exact range. Every record is checked by sequence and content.
#include "bridge/out_source.hpp"

#include <gtest/gtest.h>

#include <chrono>
#include <string>
#include <thread>
#include <vector>

#include "shmbus/shmbus.hpp"
#include "tests/support/inprocess.hpp"
#include "tests/support/journal_files.hpp"
#include "tests/support/process.hpp"

namespace shmbus::bridge {
namespace {

using namespace shmbus::test;

constexpr std::uint64_t kCapacity = 64 << 10;
constexpr std::uint64_t kPerLap = kCapacity / 256;  // a 200-byte payload takes a 256-byte frame

std::string numbered(std::uint64_t i) {
  std::string s = "record " + std::to_string(i) + " ";
  s.resize(200, static_cast<char>('a' + i % 26));
  return s;
}

std::string text_of(std::span<const std::byte> bytes) {
  return std::string(reinterpret_cast<const char*>(bytes.data()), bytes.size());
}

// The source's options: from `next`, the channel's own journal, notices collected in `notices`.
OutSourceOptions from(std::uint64_t next, std::vector<std::string>* notices = nullptr) {
  OutSourceOptions o;
  o.next = next;
  if (notices != nullptr) o.notice = [notices](const std::string& n) { notices->push_back(n); };
  return o;
}

// What the source yielded, copied.
struct Yielded {
  RecordKind kind;
  std::uint64_t sequence;
  std::uint64_t count;
  std::string payload;
  OutRecord::From from;
};

class OutSourceTest : public ::testing::Test {
 protected:
  void SetUp() override {
    channel_ = unique_channel("bridge-src");
    ChannelOptions co;
    co.capacity = kCapacity;
    co.max_message = 1024;
    auto pub = Publisher::open(channel_, co);
    ASSERT_TRUE(pub.has_value()) << pub.error().message;
    pub_.emplace(std::move(*pub));
  }
  void TearDown() override {
    sub_.reset();
    pub_.reset();
    remove_channel_objects(channel_);
  }

  void publish(std::uint64_t first, std::uint64_t last) {
    for (std::uint64_t i = first; i <= last; ++i) {
      ASSERT_EQ(pub_->publish(bytes_of(numbered(i)), std::chrono::seconds(10)), PublishStatus::ok)
          << "record " << i;
    }
  }

  // The bridge's subscriber: named, manual release, from `start` (or the earliest retained).
  void open_subscriber(std::uint64_t start, Policy policy = Policy::block) {
    SubscriberOptions so;
    so.name = "bridge-out.test";
    so.policy = policy;
    so.manual_release = true;
    so.start = StartFrom::sequence;
    so.start_sequence = start;
    auto sub = Subscriber::open(channel_, so);
    ASSERT_TRUE(sub.has_value()) << sub.error().message;
    sub_.emplace(std::move(*sub));
  }

  // Everything the source yields until it is idle.
  std::vector<Yielded> drain(OutSource& source) {
    std::vector<Yielded> out;
    OutRecord r;
    for (;;) {
      const OutSource::Status status = source.next(r);
      EXPECT_NE(status, OutSource::Status::failed) << source.last_error();
      if (status != OutSource::Status::record) return out;
      out.push_back(Yielded{r.kind, r.sequence, r.count, text_of(r.payload), r.from});
    }
  }

  // `got` holds data records first..last in order, each with its own payload.
  static void expect_data(const std::vector<Yielded>& got, std::size_t at, std::uint64_t first,
                          std::uint64_t last) {
    ASSERT_GE(got.size(), at + (last - first + 1));
    for (std::uint64_t s = first; s <= last; ++s) {
      const Yielded& y = got[at + (s - first)];
      ASSERT_EQ(y.kind, RecordKind::data) << "at sequence " << s;
      ASSERT_EQ(y.sequence, s);
      ASSERT_EQ(y.count, 1u);
      ASSERT_EQ(y.payload, numbered(s));
    }
  }

  std::string channel_;
  std::optional<Publisher> pub_;
  std::optional<Subscriber> sub_;
};

TEST_F(OutSourceTest, RecordsComeFromTheRingInOrderAndResumeSkipsWhatTheStreamHas) {
  open_subscriber(1);
  publish(1, 100);
  {
    OutSource source(*sub_, from(1));
    const auto got = drain(source);
    ASSERT_EQ(got.size(), 100u);
    expect_data(got, 0, 1, 100);
    for (const Yielded& y : got) EXPECT_EQ(y.from, OutRecord::From::ring);
    EXPECT_EQ(source.next_sequence(), 101u);
    EXPECT_EQ(source.gaps(), 0u);
  }
  // A restarted bridge whose stream already holds 1..60, its subscriber resumed before them.
  sub_.reset();
  open_subscriber(1);
  OutSource resumed(*sub_, from(61));
  const auto got = drain(resumed);
  ASSERT_EQ(got.size(), 40u);
  expect_data(got, 0, 61, 100);
  publish(101, 110);
  const auto more = drain(resumed);
  ASSERT_EQ(more.size(), 10u);
  expect_data(more, 0, 101, 110);
}

TEST_F(OutSourceTest, WhatTheRingLappedComesFromTheJournal) {
  TempDir dir("bridge-src");
  JournalerThread journaler(TestJournalerOptions{.channel = channel_, .dir = dir.path()});
  ASSERT_FALSE(journaler.open_error()) << *journaler.open_error();
  const std::uint64_t total = 4 * kPerLap;
  publish(1, total);
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(20);
  while (pub_->journaled_sequence() < total && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  ASSERT_EQ(pub_->journaled_sequence(), total);

  open_subscriber(1);  // the ring no longer holds 1: it starts at the earliest retained
  std::vector<std::string> notices;
  OutSource source(*sub_, from(1, &notices));
  const auto got = drain(source);
  ASSERT_EQ(got.size(), total);
  expect_data(got, 0, 1, total);
  EXPECT_EQ(got.front().from, OutRecord::From::journal);
  EXPECT_EQ(got.back().from, OutRecord::From::ring);
  EXPECT_GE(source.from_journal(), total - kPerLap);
  EXPECT_EQ(source.gaps(), 0u);
  EXPECT_TRUE(notices.empty()) << notices.front();

  // The stream lost records it had acknowledged: they come again, from the journal.
  source.rewind(total - 20);
  const auto again = drain(source);
  ASSERT_EQ(again.size(), 21u);
  expect_data(again, 0, total - 20, total);
  EXPECT_FALSE(journaler.stop());
}

TEST_F(OutSourceTest, WithoutAJournalTheLapIsExactlyOneGapWithTheExactRange) {
  const std::uint64_t total = 4 * kPerLap;
  publish(1, total);  // no gating subscriber: the ring keeps only the last lap or so
  open_subscriber(1);
  std::vector<std::string> notices;
  OutSource source(*sub_, from(1, &notices));
  const auto got = drain(source);
  ASSERT_GE(got.size(), 2u);
  const Yielded& gap = got.front();
  ASSERT_EQ(gap.kind, RecordKind::gap);
  EXPECT_EQ(gap.from, OutRecord::From::lost);
  EXPECT_EQ(gap.sequence, 1u);
  ASSERT_GT(gap.count, 0u);
  const std::uint64_t first_kept = gap.count + 1;
  EXPECT_GT(first_kept, total - kPerLap);  // the ring holds at most a lap
  ASSERT_EQ(got.size(), 1 + (total - first_kept + 1));
  expect_data(got, 1, first_kept, total);
  EXPECT_EQ(source.gaps(), 1u);
  EXPECT_EQ(source.gap_sequences(), first_kept - 1);
  ASSERT_EQ(notices.size(), 1u);
  EXPECT_NE(notices[0].find("sequences 1-" + std::to_string(first_kept - 1)), std::string::npos)
      << notices[0];
  EXPECT_NE(notices[0].find("no journal"), std::string::npos) << notices[0];

  // Rewound past what the subscriber holds, with no journal: one GAP again, of exactly that.
  source.rewind(total - 9);
  const auto again = drain(source);
  ASSERT_EQ(again.size(), 1u);
  EXPECT_EQ(again[0].kind, RecordKind::gap);
  EXPECT_EQ(again[0].sequence, total - 9);
  EXPECT_EQ(again[0].count, 10u);
}

TEST_F(OutSourceTest, ADropSubscriberLappedWhileReadingGetsOneGapPerLoss) {
  open_subscriber(1, Policy::drop);
  publish(1, 10);
  OutSource source(*sub_, from(1));
  auto got = drain(source);
  ASSERT_EQ(got.size(), 10u);
  expect_data(got, 0, 1, 10);
  const std::uint64_t total = 10 + 3 * kPerLap;
  publish(11, total);  // laps the subscriber
  got = drain(source);
  ASSERT_GE(got.size(), 2u);
  ASSERT_EQ(got[0].kind, RecordKind::gap);
  EXPECT_EQ(got[0].sequence, 11u);
  const std::uint64_t resumed = 11 + got[0].count;
  ASSERT_EQ(got.size(), 1 + (total - resumed + 1));
  expect_data(got, 1, resumed, total);
  EXPECT_EQ(source.gaps(), 1u);
}

}  // namespace
}  // namespace shmbus::bridge
