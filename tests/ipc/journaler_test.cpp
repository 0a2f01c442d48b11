// The journaler end to end in one process: a producer, a witness subscriber and the journaler on
// threads; then the journal is read back and compared with what the witness saw.
#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <filesystem>
#include <random>
#include <thread>

#include "shmbus/journaler.hpp"
#include "shmbus/journal_reader.hpp"
#include "tests/support/journal_files.hpp"
#include "tests/support/payload.hpp"
#include "tests/support/process.hpp"

namespace shmbus::journal {
namespace {

using namespace std::chrono_literals;
using test::ChannelGuard;
using test::PayloadId;

using ::shmbus::test::TempDir;

struct Seen {
  std::int64_t timestamp_ns;
  std::uint64_t checksum;
  std::uint32_t size;
};

Publisher open_channel(const std::string& name, std::uint64_t capacity, std::uint32_t max_message) {
  ChannelOptions co;
  co.capacity = capacity;
  co.max_message = max_message;
  auto p = Publisher::open(name, co);
  EXPECT_TRUE(p) << p.error().message;
  return std::move(*p);
}

void publish_generated(Publisher& pub, const test::SizeRule& rule, std::uint32_t producer,
                       std::uint64_t count) {
  for (std::uint64_t counter = 0; counter < count; ++counter) {
    const PayloadId id{producer, counter};
    Claim c;
    ASSERT_EQ(pub.claim(test::payload_length(rule, id), c, 10s), PublishStatus::ok);
    test::fill_payload(c.span(), id);
    ASSERT_EQ(pub.commit(c), PublishStatus::ok);
  }
}

// A journaler of `channel` recording into `dir`, the other options at their defaults.
JournalerOptions recording(const std::string& channel, const std::string& dir) {
  JournalerOptions jo;
  jo.channel = channel;
  jo.writer.dir = dir;
  return jo;
}

bool wait_journaled(const Publisher& pub, std::uint64_t sequence, std::chrono::seconds timeout) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  while (pub.journaled_sequence() < sequence) {
    if (std::chrono::steady_clock::now() > deadline) return false;
    std::this_thread::sleep_for(1ms);
  }
  return true;
}

TEST(Journaler, RecordsAMillionRandomSizeMessagesAndReplaysThemByteForByte) {
  constexpr std::uint64_t kCount = 1'000'000;
  const test::SizeRule rule{.seed = 42, .min_size = 0, .max_size = 300};
  ChannelGuard channel(test::unique_channel("jrec"));
  TempDir dir("jrec");
  Publisher pub = open_channel(channel.name(), 4 << 20, 1024);

  // The witness: a block subscriber that notes what every sequence carried.
  SubscriberOptions so;
  so.start = StartFrom::earliest;
  auto witness = Subscriber::open(channel.name(), so);
  ASSERT_TRUE(witness) << witness.error().message;
  std::vector<Seen> seen(kCount + 1);
  std::thread witness_thread([&] {
    std::uint64_t got = 0;
    while (got < kCount) {
      got += witness->poll([&](const Message& m) {
        if (m.sequence <= kCount) {
          seen[m.sequence] = Seen{m.timestamp_ns, test::payload_checksum(m.payload),
                                  static_cast<std::uint32_t>(m.payload.size())};
        }
      });
    }
  });

  JournalerOptions jo = recording(channel.name(), dir.path());
  jo.writer.segment_bytes = 32 << 20;  // several segments, so seeks cross files
  RecoveryReport report;
  auto journaler = Journaler::open(jo, &report);
  ASSERT_TRUE(journaler) << journaler.error().message;
  EXPECT_EQ(report.next_sequence, 0u);
  std::atomic<bool> stop{false};
  Result<void> run_result;
  std::thread journal_thread([&] { run_result = journaler->run(stop); });

  publish_generated(pub, rule, 1, kCount);
  witness_thread.join();
  ASSERT_TRUE(wait_journaled(pub, kCount, 120s)) << "journaled " << pub.journaled_sequence();
  stop.store(true);  // relaxed would do: join orders the rest
  journal_thread.join();
  ASSERT_TRUE(run_result) << run_result.error().message;
  EXPECT_EQ(journaler->stats().recorded, kCount);
  EXPECT_EQ(journaler->stats().gap_records, 0u);

  auto reader = JournalReader::open(dir.path());
  ASSERT_TRUE(reader) << reader.error().message;
  EXPECT_GT(reader->segments().size(), 1u);
  ASSERT_TRUE(reader->seek_sequence(1));
  JournalRecord r;
  for (std::uint64_t seq = 1; seq <= kCount; ++seq) {
    ASSERT_EQ(reader->next(r), ReadStatus::record) << "at sequence " << seq << ": "
                                                   << reader->last_error();
    ASSERT_EQ(r.type, RecordType::data);
    ASSERT_EQ(r.sequence, seq);
    ASSERT_EQ(r.timestamp_ns, seen[seq].timestamp_ns) << "sequence " << seq;
    ASSERT_EQ(r.payload.size(), seen[seq].size) << "sequence " << seq;
    ASSERT_EQ(test::payload_checksum(r.payload), seen[seq].checksum) << "sequence " << seq;
    // And the bytes are the ones the producer generated, not just the ones the witness saw.
    const PayloadId id{1, seq - 1};
    ASSERT_EQ(r.payload.size(), test::payload_length(rule, id));
    std::vector<std::byte> expected(r.payload.size());
    test::fill_payload(expected, id);
    ASSERT_TRUE(std::equal(expected.begin(), expected.end(), r.payload.begin()))
        << "sequence " << seq;
  }
  EXPECT_EQ(reader->next(r), ReadStatus::end);

  // Seeks by sequence land on that record.
  std::mt19937_64 rng(7);
  for (int i = 0; i < 300; ++i) {
    const std::uint64_t seq = 1 + rng() % kCount;
    ASSERT_TRUE(reader->seek_sequence(seq));
    ASSERT_EQ(reader->next(r), ReadStatus::record) << reader->last_error();
    ASSERT_EQ(r.sequence, seq);
    ASSERT_EQ(test::payload_checksum(r.payload), seen[seq].checksum);
  }
  // Seeks by time land on the first record (in sequence order) stamped at or after the time.
  std::vector<std::int64_t> running_max(kCount + 1, INT64_MIN);
  for (std::uint64_t seq = 1; seq <= kCount; ++seq) {
    running_max[seq] = std::max(running_max[seq - 1], seen[seq].timestamp_ns);
  }
  for (int i = 0; i < 300; ++i) {
    const std::uint64_t pick = 1 + rng() % kCount;
    const std::int64_t t = seen[pick].timestamp_ns + static_cast<std::int64_t>(rng() % 3) - 1;
    const auto first = static_cast<std::uint64_t>(
        std::lower_bound(running_max.begin() + 1, running_max.end(), t) - running_max.begin());
    ASSERT_TRUE(reader->seek_time(t));
    ASSERT_EQ(reader->next(r), ReadStatus::record) << reader->last_error();
    ASSERT_EQ(r.sequence, first) << "seek_time(" << t << ")";
    ASSERT_GE(r.timestamp_ns, t);
  }
}

TEST(Journaler, RestartSkipsWhatTheJournalHasAndRecordsWhatWasPublishedWhileDown) {
  const test::SizeRule rule{.seed = 3, .min_size = 8, .max_size = 64};
  ChannelGuard channel(test::unique_channel("jresume"));
  TempDir dir("jresume");
  Publisher pub = open_channel(channel.name(), 1 << 20, 1024);
  JournalerOptions jo = recording(channel.name(), dir.path());
  {
    auto j = Journaler::open(jo);
    ASSERT_TRUE(j) << j.error().message;
    publish_generated(pub, rule, 1, 1000);
    while (j->stats().written_sequence < 1000) ASSERT_TRUE(j->step());
  }  // closed cleanly: its named subscriber slot keeps its place (detached)
  // Published while no journaler runs: the ring (1 MiB) still holds all of it.
  for (std::uint64_t counter = 1000; counter < 1500; ++counter) {
    Claim c;
    const PayloadId id{1, counter};
    ASSERT_EQ(pub.claim(test::payload_length(rule, id), c, 1s), PublishStatus::ok);
    test::fill_payload(c.span(), id);
    ASSERT_EQ(pub.commit(c), PublishStatus::ok);
  }
  RecoveryReport report;
  auto j = Journaler::open(jo, &report);
  ASSERT_TRUE(j) << j.error().message;
  EXPECT_EQ(report.next_sequence, 1001u);
  while (j->stats().written_sequence < 1500) ASSERT_TRUE(j->step());
  EXPECT_EQ(j->stats().gap_records, 0u);
  EXPECT_EQ(j->stats().recorded, 500u);

  auto reader = JournalReader::open(dir.path());
  ASSERT_TRUE(reader) << reader.error().message;
  ASSERT_TRUE(reader->seek_sequence(1));
  JournalRecord r;
  for (std::uint64_t seq = 1; seq <= 1500; ++seq) {
    ASSERT_EQ(reader->next(r), ReadStatus::record) << reader->last_error();
    ASSERT_EQ(r.sequence, seq);
    ASSERT_EQ(r.type, RecordType::data);
    std::vector<std::byte> expected(test::payload_length(rule, {1, seq - 1}));
    test::fill_payload(expected, {1, seq - 1});
    ASSERT_TRUE(std::equal(expected.begin(), expected.end(), r.payload.begin(), r.payload.end()));
  }
}

TEST(Journaler, ALossyJournalerNeverSlowsTheProducerAndWritesAGapRecordForWhatItMissed) {
  constexpr std::uint64_t kCount = 20'000;
  const test::SizeRule rule{.seed = 5, .min_size = 16, .max_size = 128};
  ChannelGuard channel(test::unique_channel("jlossy"));
  TempDir dir("jlossy");
  Publisher pub = open_channel(channel.name(), 64 << 10, 1024);
  JournalerOptions jo = recording(channel.name(), dir.path());
  jo.lossy = true;
  auto j = Journaler::open(jo);
  ASSERT_TRUE(j) << j.error().message;
  // The journaler looks in only every 2000 messages (a few steps of up to 256 records): the
  // 64 KiB ring (~700 messages) laps it in between.
  for (std::uint64_t counter = 0; counter < kCount; ++counter) {
    const PayloadId id{1, counter};
    Claim c;
    ASSERT_EQ(pub.try_claim(test::payload_length(rule, id), c), PublishStatus::ok)
        << "a lossy journaler must never hold the producer back (message " << counter << ")";
    test::fill_payload(c.span(), id);
    ASSERT_EQ(pub.commit(c), PublishStatus::ok);
    if (counter % 2000 == 1999) {
      for (int k = 0; k < 3; ++k) ASSERT_TRUE(j->step(0ms));
    }
  }
  const auto deadline = std::chrono::steady_clock::now() + 10s;
  while (j->stats().written_sequence < kCount) {
    ASSERT_TRUE(j->step(0ms));
    ASSERT_LT(std::chrono::steady_clock::now(), deadline);
  }
  const JournalerStats st = j->stats();
  EXPECT_GT(st.gap_records, 0u);
  EXPECT_GT(st.lost, 0u);

  auto reader = JournalReader::open(dir.path());
  ASSERT_TRUE(reader) << reader.error().message;
  ASSERT_TRUE(reader->seek_sequence(1));
  JournalRecord r;
  std::uint64_t expected = 0, data = 0, lost = 0, gaps = 0;
  while (reader->next(r) == ReadStatus::record) {
    if (expected != 0) {
      ASSERT_EQ(r.sequence, expected) << "the journal's sequence has a hole";
    }
    if (r.type == RecordType::gap) {
      ++gaps;
      lost += r.gap_count;
    } else {
      ++data;
      std::vector<std::byte> want(test::payload_length(rule, {1, r.sequence - 1}));
      test::fill_payload(want, {1, r.sequence - 1});
      ASSERT_TRUE(std::equal(want.begin(), want.end(), r.payload.begin(), r.payload.end()))
          << "sequence " << r.sequence;
    }
    if (expected == 0) expected = r.sequence;
    expected = r.next_sequence();
  }
  EXPECT_EQ(expected, kCount + 1);
  EXPECT_EQ(gaps, st.gap_records);
  EXPECT_EQ(lost, st.lost);
  EXPECT_EQ(data, st.recorded);
}

TEST(Journaler, ASecondJournalerOnTheChannelIsRefused) {
  ChannelGuard channel(test::unique_channel("jtwo"));
  TempDir a("jtwo-a"), b("jtwo-b");
  Publisher pub = open_channel(channel.name(), 1 << 20, 1024);
  JournalerOptions jo = recording(channel.name(), a.path());
  auto first = Journaler::open(jo);
  ASSERT_TRUE(first) << first.error().message;
  jo.writer.dir = b.path();
  jo.name = "journal-b";
  auto second = Journaler::open(jo);
  ASSERT_FALSE(second);
  EXPECT_EQ(second.error().code, ErrorCode::busy);
  EXPECT_NE(second.error().message.find(std::to_string(::getpid())), std::string::npos)
      << second.error().message;
  // The refused one never held the link, so it leaves the first one's alone: a spill subscriber
  // still finds a journaler attached.
  SubscriberOptions spill;
  spill.policy = Policy::spill;
  auto reader = Subscriber::open(channel.name(), spill);
  EXPECT_TRUE(reader) << reader.error().message;
}

TEST(Journaler, AJournalerMovedOverGivesUpItsChannelsLink) {
  ChannelGuard x(test::unique_channel("jmvx")), y(test::unique_channel("jmvy"));
  TempDir x_dir("jmvx"), y_dir("jmvy"), x_again("jmvx2");
  Publisher x_pub = open_channel(x.name(), 1 << 20, 1024);
  Publisher y_pub = open_channel(y.name(), 1 << 20, 1024);
  JournalerOptions jo = recording(x.name(), x_dir.path());
  auto on_x = Journaler::open(jo);
  ASSERT_TRUE(on_x) << on_x.error().message;
  auto on_y = Journaler::open(recording(y.name(), y_dir.path()));
  ASSERT_TRUE(on_y) << on_y.error().message;
  *on_x = std::move(*on_y);  // the journaler of x is gone: its link must go with it
  auto again = Journaler::open(recording(x.name(), x_again.path()));
  EXPECT_TRUE(again) << again.error().message;
}

TEST(Journaler, AJournalOfAnEarlierIncarnationOfTheChannelIsRefused) {
  ChannelGuard channel(test::unique_channel("jinc"));
  TempDir dir("jinc");
  JournalerOptions jo = recording(channel.name(), dir.path());
  {
    Publisher pub = open_channel(channel.name(), 1 << 20, 1024);
    auto j = Journaler::open(jo);
    ASSERT_TRUE(j) << j.error().message;
    ASSERT_EQ(pub.publish(std::as_bytes(std::span("x", 1)), 1s), PublishStatus::ok);
    while (j->stats().written_sequence < 1) ASSERT_TRUE(j->step());
  }
  ASSERT_TRUE(remove_channel(channel.name()));
  Publisher pub = open_channel(channel.name(), 1 << 20, 1024);  // a new incarnation
  auto j = Journaler::open(jo);
  ASSERT_FALSE(j);
  EXPECT_EQ(j.error().code, ErrorCode::invalid_argument);
  EXPECT_NE(j.error().message.find("incarnation"), std::string::npos) << j.error().message;
}

}  // namespace
}  // namespace shmbus::journal
