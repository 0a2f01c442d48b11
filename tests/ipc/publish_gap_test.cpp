// Publisher::publish_gap: sequences that carry nothing, laid out as abandoned zero-length records.
// Subscribers see exactly the gap's size as lost_before on the next record (and every record around
// it by sequence and payload); a journaler writes one gap record; the claim word moves past it.
#include <atomic>
#include <chrono>
#include <string>
#include <thread>
#include <vector>

#include <gtest/gtest.h>

#include "shmbus/journal_reader.hpp"
#include "shmbus/journaler.hpp"
#include "shmbus/shmbus.hpp"
#include "tests/support/inprocess.hpp"
#include "tests/support/journal_files.hpp"
#include "tests/support/process.hpp"

namespace shmbus {
namespace {

using namespace std::chrono_literals;
using namespace shmbus::test;

void publish_text(Publisher& pub, const std::string& text) {
  ASSERT_EQ(pub.publish(bytes_of(text), 5s), PublishStatus::ok) << text;
}

TEST(PublishGap, SubscriberSeesTheExactGapBetweenTheRecordsAroundIt) {
  ChannelGuard ch(unique_channel("gapsmall"));
  auto pub = Publisher::open(ch.name(), small_options());
  ASSERT_TRUE(pub) << pub.error().message;
  auto sub = Subscriber::open(ch.name(), sub_options(Policy::block, StartFrom::earliest));
  ASSERT_TRUE(sub) << sub.error().message;
  EXPECT_EQ(pub->next_sequence(), 1u);
  for (int i = 1; i <= 3; ++i) publish_text(*pub, "before " + std::to_string(i));
  EXPECT_EQ(pub->next_sequence(), 4u);
  std::uint64_t laid = 0;
  ASSERT_EQ(pub->publish_gap(5, 1s, &laid), PublishStatus::ok);
  EXPECT_EQ(laid, 5u);
  EXPECT_EQ(pub->next_sequence(), 9u);
  publish_text(*pub, "after 9");
  publish_text(*pub, "after 10");

  const std::vector<Received> got = receive_messages(*sub, 5);
  ASSERT_EQ(got.size(), 5u);
  const std::vector<std::uint64_t> sequences{1, 2, 3, 9, 10};
  const std::vector<std::uint64_t> lost{0, 0, 0, 5, 0};
  const std::vector<std::string> payloads{"before 1", "before 2", "before 3", "after 9",
                                          "after 10"};
  for (std::size_t i = 0; i < got.size(); ++i) {
    EXPECT_EQ(got[i].sequence, sequences[i]) << "record " << i;
    EXPECT_EQ(got[i].lost_before, lost[i]) << "record " << i;
    EXPECT_EQ(got[i].payload, payloads[i]) << "record " << i;
  }
}

TEST(PublishGap, ZeroIsNothing) {
  ChannelGuard ch(unique_channel("gapzero"));
  auto pub = Publisher::open(ch.name(), small_options());
  ASSERT_TRUE(pub) << pub.error().message;
  std::uint64_t laid = 7;
  EXPECT_EQ(pub->publish_gap(0, 1s, &laid), PublishStatus::ok);
  EXPECT_EQ(laid, 0u);
  EXPECT_EQ(pub->next_sequence(), 1u);
}

// 100,000 sequences through a 64 KiB ring (3.2 MB of frames: 49 laps) while a block subscriber
// reads: publish_gap waits for it like any producer, and the subscriber sees one gap.
TEST(PublishGap, AGapOfOneHundredThousandLapsTheRingBehindABlockSubscriber) {
  constexpr std::uint64_t kGap = 100'000;
  ChannelGuard ch(unique_channel("gaplarge"));
  auto pub = Publisher::open(ch.name(), small_options());
  ASSERT_TRUE(pub) << pub.error().message;
  auto sub = Subscriber::open(ch.name(), sub_options(Policy::block, StartFrom::earliest));
  ASSERT_TRUE(sub) << sub.error().message;
  std::vector<Received> got;
  std::thread reader([&] { got = receive_messages(*sub, 3, 60s); });
  publish_text(*pub, "first");
  std::uint64_t laid = 0;
  const PublishStatus st = pub->publish_gap(kGap, 30s, &laid);
  publish_text(*pub, "after the gap");
  publish_text(*pub, "last");
  reader.join();
  ASSERT_EQ(st, PublishStatus::ok);
  EXPECT_EQ(laid, kGap);
  EXPECT_EQ(pub->next_sequence(), kGap + 4);
  ASSERT_EQ(got.size(), 3u);
  EXPECT_EQ(got[0].sequence, 1u);
  EXPECT_EQ(got[0].lost_before, 0u);
  EXPECT_EQ(got[0].payload, "first");
  EXPECT_EQ(got[1].sequence, kGap + 2);
  EXPECT_EQ(got[1].lost_before, kGap);
  EXPECT_EQ(got[1].payload, "after the gap");
  EXPECT_EQ(got[2].sequence, kGap + 3);
  EXPECT_EQ(got[2].lost_before, 0u);
  EXPECT_EQ(got[2].payload, "last");
}

// A channel whose max_message holds fewer than a full batch of 32-byte frames: the batches shrink
// to fit and the count is still exact.
TEST(PublishGap, SmallMaxMessageClaimsSmallerBatches) {
  ChannelGuard ch(unique_channel("gapnarrow"));
  ChannelOptions o = small_options();
  o.max_message = 64;  // a batch of at most three 32-byte frames
  auto pub = Publisher::open(ch.name(), o);
  ASSERT_TRUE(pub) << pub.error().message;
  auto sub = Subscriber::open(ch.name(), sub_options(Policy::block, StartFrom::earliest));
  ASSERT_TRUE(sub) << sub.error().message;
  publish_text(*pub, "a");
  std::uint64_t laid = 0;
  ASSERT_EQ(pub->publish_gap(1000, 5s, &laid), PublishStatus::ok);
  EXPECT_EQ(laid, 1000u);
  std::vector<Received> got;
  std::thread reader([&] { got = receive_messages(*sub, 2, 20s); });
  publish_text(*pub, "b");
  reader.join();
  ASSERT_EQ(got.size(), 2u);
  EXPECT_EQ(got[0].sequence, 1u);
  EXPECT_EQ(got[0].payload, "a");
  EXPECT_EQ(got[1].sequence, 1002u);
  EXPECT_EQ(got[1].lost_before, 1000u);
  EXPECT_EQ(got[1].payload, "b");
}

// Back-pressured past the timeout: timed_out, with the number laid out so far, which is exactly
// what the claim word moved by and what the subscriber then counts as lost.
TEST(PublishGap, TimeoutReportsHowManyWereLaidOut) {
  ChannelGuard ch(unique_channel("gaptimeout"));
  auto pub = Publisher::open(ch.name(), small_options());
  ASSERT_TRUE(pub) << pub.error().message;
  auto sub = Subscriber::open(ch.name(), sub_options(Policy::block, StartFrom::earliest));
  ASSERT_TRUE(sub) << sub.error().message;
  std::uint64_t laid = 0;
  EXPECT_EQ(pub->publish_gap(1'000'000, 20ms, &laid), PublishStatus::timed_out);
  EXPECT_GT(laid, 0u);
  EXPECT_LT(laid, 1'000'000u);
  EXPECT_EQ(pub->next_sequence(), laid + 1);
  std::vector<Received> got;
  std::thread reader([&] { got = receive_messages(*sub, 1, 20s); });
  publish_text(*pub, "after");
  reader.join();
  ASSERT_EQ(got.size(), 1u);
  EXPECT_EQ(got[0].sequence, laid + 1);
  EXPECT_EQ(got[0].lost_before, laid);
  EXPECT_EQ(got[0].payload, "after");
}

TEST(PublishGap, JournalerWritesOneGapRecord) {
  ChannelGuard ch(unique_channel("gapjournal"));
  TempDir dir("gapjournal");
  auto pub = Publisher::open(ch.name(), small_options());
  ASSERT_TRUE(pub) << pub.error().message;
  JournalerOptions jo;
  jo.channel = ch.name();
  jo.writer.dir = dir.path();
  auto journaler = Journaler::open(jo);
  ASSERT_TRUE(journaler) << journaler.error().message;
  std::atomic<bool> stop{false};
  Result<void> run_result;
  std::thread journal_thread([&] { run_result = journaler->run(stop); });
  publish_text(*pub, "one");
  publish_text(*pub, "two");
  std::uint64_t laid = 0;
  const PublishStatus st = pub->publish_gap(700, 5s, &laid);
  publish_text(*pub, "seven hundred and three");
  const auto deadline = std::chrono::steady_clock::now() + 20s;
  while (pub->journaled_sequence() < 703 && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(1ms);
  }
  stop.store(true);  // join orders the rest
  journal_thread.join();
  ASSERT_EQ(st, PublishStatus::ok);
  EXPECT_EQ(laid, 700u);
  ASSERT_TRUE(run_result) << run_result.error().message;
  EXPECT_EQ(journaler->stats().recorded, 3u);
  EXPECT_EQ(journaler->stats().gap_records, 1u);
  EXPECT_EQ(journaler->stats().lost, 700u);

  auto reader = journal::JournalReader::open(dir.path());
  ASSERT_TRUE(reader) << reader.error().message;
  ASSERT_TRUE(reader->seek_sequence(1));
  journal::JournalRecord r;
  auto text = [&] {
    return std::string(reinterpret_cast<const char*>(r.payload.data()), r.payload.size());
  };
  ASSERT_EQ(reader->next(r), journal::ReadStatus::record) << reader->last_error();
  EXPECT_EQ(r.type, journal::RecordType::data);
  EXPECT_EQ(r.sequence, 1u);
  EXPECT_EQ(text(), "one");
  ASSERT_EQ(reader->next(r), journal::ReadStatus::record) << reader->last_error();
  EXPECT_EQ(r.sequence, 2u);
  EXPECT_EQ(text(), "two");
  ASSERT_EQ(reader->next(r), journal::ReadStatus::record) << reader->last_error();
  EXPECT_EQ(r.type, journal::RecordType::gap);
  EXPECT_EQ(r.sequence, 3u);
  EXPECT_EQ(r.gap_count, 700u);
  ASSERT_EQ(reader->next(r), journal::ReadStatus::record) << reader->last_error();
  EXPECT_EQ(r.type, journal::RecordType::data);
  EXPECT_EQ(r.sequence, 703u);
  EXPECT_EQ(text(), "seven hundred and three");
  EXPECT_EQ(reader->next(r), journal::ReadStatus::end);
}

// A restarted single producer reads where its predecessor stopped.
TEST(PublishGap, NextSequenceSurvivesTheProducersRestart) {
  ChannelGuard ch(unique_channel("gapnext"));
  ChannelOptions o = small_options();
  o.single_producer = true;
  {
    auto pub = Publisher::open(ch.name(), o);
    ASSERT_TRUE(pub) << pub.error().message;
    publish_text(*pub, "x");
    ASSERT_EQ(pub->publish_gap(41, 1s), PublishStatus::ok);
  }
  auto again = Publisher::open(ch.name(), o);
  ASSERT_TRUE(again) << again.error().message;
  EXPECT_EQ(again->next_sequence(), 43u);
}

}  // namespace
}  // namespace shmbus
