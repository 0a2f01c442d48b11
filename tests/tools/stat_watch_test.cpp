// The page of `stat --watch` (stat_watch_frame) on hand-built reads: it fits 80 columns whatever
// the names and counters, it still shows every field of the one-shot page, colour is only there
// when asked for, and names from other processes cannot move the cursor.
#include <gtest/gtest.h>

#include <algorithm>
#include <cstdint>
#include <string>
#include <vector>

#include "tests/support/command.hpp"
#include "tests/tools/latency_samples.hpp"
#include "tools/observe_format.hpp"

namespace {

using namespace shmbus;
using shmbus::test::lines_of;
using tools::ChannelRates;
using tools::display_width;
using tools::measure_rates;
using tools::stat_watch_frame;
using tools::truncate_middle;
using tools::WatchFrameStyle;

constexpr std::int64_t kSecond = 1'000'000'000;
constexpr std::int64_t kNow = 1'800'000'000 * kSecond;

std::string long_name(int i) {
  return "risk-engine.eu-west-1.order-book-consumer.primary.replica-" + std::to_string(i);
}

// A busy channel: three producers, twenty subscribers with long names and every state, counters
// in the billions, a journal in a deep directory, and every alarm.
ChannelStats crowded_channel(std::uint64_t received_offset) {
  ChannelStats s;
  s.name = "market-data.equities.europe.level-two.consolidated-feed.primary";
  s.incarnation = 0x0123'4567'89ab'cdef;
  s.capacity = 1ull << 30;
  s.max_message = 1 << 20;
  s.created_ns = kNow - 86'400 * kSecond;
  s.creator_pid = 4'194'303;
  s.creator_alive = true;
  s.head_sequence = 98'765'432'109;
  s.head_position = 9'876'543'210'987;
  s.published_messages = 98'765'432'109 + received_offset;
  s.published_bytes = 9'876'543'210'987;
  s.back_pressure_events = 123'456'789;
  s.evictions = 12'345;
  s.abandoned_repaired = 6'789;
  s.subscriber_slots = 64;
  s.producer_slots = 32;
  s.abandoned = true;
  s.corrupt_slots = 3;
  for (std::uint32_t p = 0; p < 3; ++p) {
    ProducerStats producer;
    producer.slot = p;
    producer.pid = 4'194'000 + p;
    producer.start_time = 100 + p;
    producer.alive = p != 2;
    producer.attached_ns = kNow - 7200 * kSecond;
    producer.published = 32'000'000'000 + received_offset;
    producer.published_bytes = 3'200'000'000'000;
    producer.claim_in_flight = p == 0;
    s.producers.push_back(producer);
  }
  const SubscriberState states[] = {SubscriberState::alive,   SubscriberState::lagging,
                                    SubscriberState::lapped,  SubscriberState::dead,
                                    SubscriberState::evicted, SubscriberState::detached};
  for (int i = 0; i < 20; ++i) {
    SubscriberStats sub;
    sub.slot = static_cast<std::uint32_t>(i);
    sub.name = i == 0 ? "" : long_name(i);
    sub.pid = 4'100'000 + static_cast<std::uint32_t>(i);
    sub.start_time = 200 + static_cast<std::uint64_t>(i);
    sub.alive = true;
    sub.policy = i % 3 == 0 ? Policy::block : i % 3 == 1 ? Policy::drop : Policy::spill;
    sub.state = states[i % 6];
    sub.attached_ns = kNow - 3600 * kSecond;
    sub.heartbeat_ns = kNow - 90 * kSecond;
    sub.lag_messages = 9'999'999'999;
    sub.lag_bytes = 999'999'999'999;
    sub.received = 88'888'888'888 + received_offset;
    sub.lost = 7'777'777'777;
    sub.spilled = 6'666'666'666;
    sub.evictions = 55'555;
    if (i % 2 == 0) {
      sub.latency = shmbus::test::latency_snapshot_of(
          {1000, 25'000 + received_offset, 3'000'000, 4'000'000'000});
    }
    s.subscribers.push_back(sub);
  }
  JournalStats j;
  j.pid = 4'194'301;
  j.alive = true;
  j.dir = "/var/lib/shmbus/journals/market-data.equities.europe.level-two.consolidated-feed";
  j.written_sequence = 98'765'432'000;
  j.durable_sequence = 98'765'431'000;
  j.heartbeat_ns = kNow - kSecond;
  s.journal = j;
  s.sampled_ns = kNow;
  s.sampled_monotonic_ns = 100 * kSecond;
  return s;
}

// The later read of crowded_channel, and rates over the second before it.
struct Reads {
  ChannelStats after = crowded_channel(1'000'000);
  ChannelRates rates;
  Reads() {
    ChannelStats before = crowded_channel(0);
    before.sampled_ns -= kSecond;
    before.sampled_monotonic_ns -= kSecond;
    rates = measure_rates(&before, after);
  }
};

WatchFrameStyle style_of(bool colour, std::size_t width = 80) {
  WatchFrameStyle style;
  style.clock = "21:05:09 CET";
  style.hint = "every 2 s, q quits";
  style.colour = colour;
  style.width = width;
  return style;
}

std::string without_colour(const std::string& text) {
  std::string out;
  for (std::size_t i = 0; i < text.size(); ++i) {
    if (text[i] == '\x1b') {
      i = text.find('m', i);
      continue;
    }
    out += text[i];
  }
  return out;
}

TEST(StatWatchFrame, EveryLineOfACrowdedChannelFitsEightyColumns) {
  const Reads reads;
  ASSERT_TRUE(reads.rates.measured);
  for (bool colour : {false, true}) {
    const std::string frame = stat_watch_frame(reads.after, reads.rates, style_of(colour));
    const auto lines = lines_of(frame);
    ASSERT_GT(lines.size(), 40u);
    for (const std::string& line : lines) {
      EXPECT_LE(display_width(line), 80u) << "colour " << colour << ": '" << line << "'";
      EXPECT_LE(without_colour(line).size(), 80u) << line;  // every name here is ASCII
    }
  }
}

TEST(StatWatchFrame, FitsANarrowerTerminalToo) {
  const Reads reads;
  for (const std::string& line :
       lines_of(stat_watch_frame(reads.after, reads.rates, style_of(false, 60)))) {
    EXPECT_LE(display_width(line), 60u) << "'" << line << "'";
  }
}

// Every header of the one-shot page's tables and every field label is still on the page; the
// slot and name columns come back in each column group, so every row is still identifiable.
TEST(StatWatchFrame, KeepsEveryFieldOfTheOneShotPage) {
  const Reads reads;
  const std::string frame = stat_watch_frame(reads.after, reads.rates, style_of(false));
  const std::string page = tools::stat_text(reads.after, reads.rates, true);
  for (const char* word : {"ring",
                           "slots",
                           "created",
                           "head",
                           "published",
                           "rate",
                           "events",
                           "journal",
                           "ABANDONED",
                           "CORRUPT",
                           "PUBLISHED",
                           "BYTES",
                           "AVG RATE",
                           "CLAIM",
                           "ATTACHED",
                           "NAME",
                           "PID",
                           "STATE",
                           "POLICY",
                           "LAG BYTES",
                           "RECEIVED",
                           "LOST",
                           "SPILLED",
                           "EVICTED",
                           "RATE",
                           "HEARTBEAT",
                           "WINDOW",
                           "COUNT",
                           "P50",
                           "P99.9",
                           "MAX",
                           "since attach",
                           "last 1.0 s",
                           "in flight",
                           "lapped",
                           "evicted",
                           "detached",
                           "4194000",
                           "4100019",
                           "1.00 M msg/s",
                           "durable seq 98765431000",
                           "21:05:09 CET",
                           "every 2 s, q quits"}) {
    EXPECT_NE(frame.find(word), std::string::npos) << "missing: " << word << "\n" << frame;
    if (std::string(word).find("CET") == std::string::npos &&
        std::string(word).find("q quits") == std::string::npos) {
      EXPECT_NE(page.find(word), std::string::npos) << "the one-shot page lacks " << word;
    }
  }
  // Subscriber 19's row in each group: its slot, then its name's start and end around "...".
  std::size_t rows_of_19 = 0;
  for (const std::string& line : lines_of(frame)) {
    if (line.rfind("    19  ris", 0) == 0) {
      ++rows_of_19;
      EXPECT_NE(line.find("..."), std::string::npos) << line;
      EXPECT_NE(line.find("plica-19 "), std::string::npos) << line;
    }
  }
  EXPECT_GE(rows_of_19, 2u) << frame;
}

TEST(StatWatchFrame, ShortNamesAreShownWhole) {
  Reads reads;
  reads.after.subscribers.resize(2);
  reads.after.subscribers[1].name = "risk";
  const std::string frame = stat_watch_frame(reads.after, reads.rates, style_of(false));
  EXPECT_NE(frame.find("  1  risk "), std::string::npos) << frame;
}

TEST(StatWatchFrame, ColoursOnlyWhenAskedAndThenTheStates) {
  const Reads reads;
  const std::string plain = stat_watch_frame(reads.after, reads.rates, style_of(false));
  EXPECT_EQ(plain.find('\x1b'), std::string::npos);
  const std::string coloured = stat_watch_frame(reads.after, reads.rates, style_of(true));
  EXPECT_NE(coloured.find("\x1b[32malive\x1b[0m"), std::string::npos);
  EXPECT_NE(coloured.find("\x1b[31mlapped\x1b[0m"), std::string::npos);
  EXPECT_NE(coloured.find("\x1b[33mlagging\x1b[0m"), std::string::npos);
  EXPECT_NE(coloured.find("\x1b[1;31mABANDONED\x1b[0m"), std::string::npos);
  EXPECT_EQ(without_colour(coloured), plain);  // the same page, only painted
}

// A name is whatever another process wrote: an escape sequence in it must not reach the screen.
TEST(StatWatchFrame, ControlCharactersInNamesAreNeutralized) {
  Reads reads;
  reads.after.name = "evil\x1b[2Jchannel";
  reads.after.subscribers[1].name = "sub\x1b]0;title\x07\r\nname";
  const std::string frame = stat_watch_frame(reads.after, reads.rates, style_of(false));
  EXPECT_EQ(frame.find('\x1b'), std::string::npos);
  EXPECT_EQ(frame.find('\r'), std::string::npos);
  EXPECT_EQ(frame.find('\x07'), std::string::npos);
  EXPECT_NE(frame.find("evil?[2Jchannel"), std::string::npos) << frame;
}

TEST(StatWatchFrame, TruncateMiddleKeepsStartAndEndInExactlyTheWidth) {
  EXPECT_EQ(truncate_middle("risk", 10), "risk");
  EXPECT_EQ(truncate_middle("abcdefghijklmnop", 10), "ab...lmnop");
  EXPECT_EQ(display_width(truncate_middle("abcdefghijklmnop", 10)), 10u);
  EXPECT_EQ(truncate_middle("abcdefghij", 4), "abcd");
  // UTF-8: cut between code points, counted as one column each.
  const std::string accented = "\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9";
  EXPECT_EQ(display_width(accented), 8u);
  EXPECT_EQ(truncate_middle(accented, 6), "\xc3\xa9...\xc3\xa9\xc3\xa9");
  EXPECT_EQ(display_width("\x1b[1mbold\x1b[0m"), 4u);
}

}  // namespace
