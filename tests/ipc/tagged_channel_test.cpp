// Records with a key and/or a message type through a channel: published beside plain records,
// delivered with them by block (in place), drop (copying) and spill (from the journal)
// subscribers, filtered by subscribers, kept by the journaler and read back by JournalReader.
#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <string>
#include <thread>
#include <vector>

#include "shmbus/journal_reader.hpp"
#include "shmbus/journaler.hpp"
#include "shmbus/shmbus.hpp"
#include "tests/support/inprocess.hpp"
#include "tests/support/journal_files.hpp"
#include "tests/support/process.hpp"

namespace shmbus {
namespace {

using namespace shmbus::test;
using namespace std::chrono_literals;

// What the test publishes as message i (counting from 1, the channel's sequence): every fourth
// has no key, every third no type; messages with neither are plain records.
std::string key_of(std::uint64_t i) {
  if (i % 4 == 0) return {};
  std::string key = "acct-";
  key += std::to_string(i % 7);
  return key;
}
std::uint16_t type_of(std::uint64_t i) { return static_cast<std::uint16_t>(i % 3 == 0 ? 0 : 10 + i % 3); }
std::string payload_of(std::uint64_t i, std::size_t size = 200) {
  std::string s = "m";
  s += std::to_string(i);
  s.resize(size, '.');
  return s;
}
std::span<const std::byte> as_span(const std::string& s) {
  return std::as_bytes(std::span(s.data(), s.size()));
}
std::string text_of(std::span<const std::byte> bytes) {
  return std::string(reinterpret_cast<const char*>(bytes.data()), bytes.size());
}

struct Got {
  std::uint64_t sequence;
  std::string key;
  std::uint16_t message_type;
  std::string payload;
  std::uint64_t lost_before;
};

Got got_of(const Message& m) {
  return Got{m.sequence, text_of(m.key), m.message_type, text_of(m.payload), m.lost_before};
}

void expect_message(const Got& g, std::uint64_t i, std::size_t size = 200) {
  SCOPED_TRACE("message " + std::to_string(i));
  EXPECT_EQ(g.sequence, i);
  EXPECT_EQ(g.key, key_of(i));
  EXPECT_EQ(g.message_type, type_of(i));
  EXPECT_EQ(g.payload, payload_of(i, size));
}

// Publishes message i in one of three ways: the copying helper, a claim written in place, or the
// blocking helper.
PublishStatus publish_message(Publisher& pub, std::uint64_t i, std::size_t size = 200) {
  const std::string key = key_of(i);
  const std::string payload = payload_of(i, size);
  const RecordTag tag{as_span(key), type_of(i)};
  switch ((i / 2) % 3) {
    case 0: {
      // A block subscriber (or the journaler) may hold the ring full for a moment.
      const auto deadline = std::chrono::steady_clock::now() + 10s;
      PublishStatus st;
      while ((st = pub.try_publish(as_span(payload), tag)) == PublishStatus::back_pressured &&
             std::chrono::steady_clock::now() < deadline) {
        std::this_thread::sleep_for(50us);
      }
      return st;
    }
    case 1: {
      Claim c;
      const PublishStatus st = pub.claim(static_cast<std::uint32_t>(size), c, tag, 10s);
      if (st != PublishStatus::ok) return st;
      if (c.size() != size) return PublishStatus::corrupt;  // the claim is the payload alone
      std::memcpy(c.data(), payload.data(), size);
      return pub.commit(c);
    }
    default: return pub.publish(as_span(payload), tag, 10s);
  }
}

std::vector<Got> receive_all(Subscriber& sub, std::size_t want,
                             std::chrono::milliseconds timeout = 10s) {
  std::vector<Got> out;
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  while (out.size() < want && std::chrono::steady_clock::now() < deadline) {
    if (sub.poll([&](const Message& m) { out.push_back(got_of(m)); }, want - out.size()) == 0) {
      sub.wait(1ms);
    }
  }
  return out;
}

class TaggedPolicies : public ::testing::TestWithParam<Policy> {};

TEST_P(TaggedPolicies, TaggedAndPlainRecordsArriveInterleavedWithKeyTypeAndPayload) {
  ChannelGuard ch(unique_channel("tagmix"));
  auto pub = Publisher::open(ch.name(), small_options());
  ASSERT_TRUE(pub) << pub.error().message;
  auto sub = Subscriber::open(ch.name(), sub_options(GetParam()));
  ASSERT_TRUE(sub) << sub.error().message;
  // Three laps of the 64 KiB ring, read as they come (a block subscriber gates the producer).
  constexpr std::uint64_t kMessages = 3 * (64 << 10) / 256;
  std::vector<Got> got;
  for (std::uint64_t i = 1; i <= kMessages; ++i) {
    ASSERT_EQ(publish_message(*pub, i), PublishStatus::ok) << i;
    if (i % 16 == 0) {
      auto part = receive_all(*sub, 16);
      got.insert(got.end(), part.begin(), part.end());
    }
  }
  ASSERT_EQ(got.size(), kMessages);
  for (std::uint64_t i = 1; i <= kMessages; ++i) {
    expect_message(got[i - 1], i);
    EXPECT_EQ(got[i - 1].lost_before, 0u);
  }
  EXPECT_EQ(sub->lost(), 0u);
  EXPECT_EQ(sub->filtered(), 0u);
}

INSTANTIATE_TEST_SUITE_P(Policies, TaggedPolicies, ::testing::Values(Policy::block, Policy::drop));

TEST(TaggedRecords, AnEmptyTagPublishesAPlainRecord) {
  ChannelGuard ch(unique_channel("tagempty"));
  auto pub = Publisher::open(ch.name(), small_options());
  ASSERT_TRUE(pub) << pub.error().message;
  auto sub = Subscriber::open(ch.name(), sub_options(Policy::block));
  ASSERT_TRUE(sub) << sub.error().message;
  const std::string payload = "plain";
  ASSERT_EQ(pub->try_publish(as_span(payload), RecordTag{}), PublishStatus::ok);
  Claim c;
  ASSERT_EQ(pub->try_claim(5, c, RecordTag{}), PublishStatus::ok);
  std::memcpy(c.data(), "again", 5);
  ASSERT_EQ(pub->commit(c), PublishStatus::ok);
  const auto got = receive_all(*sub, 2);
  ASSERT_EQ(got.size(), 2u);
  EXPECT_EQ(got[0].payload, "plain");
  EXPECT_EQ(got[1].payload, "again");
  for (const Got& g : got) {
    EXPECT_TRUE(g.key.empty());
    EXPECT_EQ(g.message_type, 0u);
  }
}

TEST(TaggedRecords, KeyLongerThanTheMaximumOrRecordAboveMaxMessageIsTooLarge) {
  ChannelGuard ch(unique_channel("tagbig"));
  auto pub = Publisher::open(ch.name(), small_options());  // max_message 1024
  ASSERT_TRUE(pub) << pub.error().message;
  const std::string too_long(kMaxKeyLength + 1, 'k');
  const std::string longest(kMaxKeyLength, 'k');
  const std::string payload(1024 - 8 - kMaxKeyLength, 'p');
  Claim c;
  EXPECT_EQ(pub->try_claim(1, c, RecordTag{as_span(too_long), 0}), PublishStatus::too_large);
  // The tag counts against max_message: 8 bytes of prefix and the padded key.
  EXPECT_EQ(pub->try_publish(as_span(payload + "x"), RecordTag{as_span(longest), 1}),
            PublishStatus::too_large);
  EXPECT_EQ(pub->try_publish(as_span(payload + "x")), PublishStatus::ok);  // plain: fits
  EXPECT_EQ(pub->try_publish(as_span(payload), RecordTag{as_span(longest), 1}), PublishStatus::ok);
  EXPECT_EQ(pub->try_publish(as_span(payload), RecordTag{{}, 7}), PublishStatus::ok);

  auto sub = Subscriber::open(ch.name(), sub_options(Policy::drop, StartFrom::earliest));
  ASSERT_TRUE(sub) << sub.error().message;
  const auto got = receive_all(*sub, 3);
  ASSERT_EQ(got.size(), 3u);
  EXPECT_EQ(got[0].sequence, 1u);
  EXPECT_EQ(got[0].payload, payload + "x");
  EXPECT_EQ(got[1].sequence, 2u);
  EXPECT_EQ(got[1].key, longest);
  EXPECT_EQ(got[1].message_type, 1u);
  EXPECT_EQ(got[1].payload, payload);
  EXPECT_EQ(got[2].key, "");
  EXPECT_EQ(got[2].message_type, 7u);
}

TEST(TaggedRecords, AnAbandonedTaggedClaimIsCountedLostAndReadersStepOverIt) {
  ChannelGuard ch(unique_channel("tagabandon"));
  auto pub = Publisher::open(ch.name(), small_options());
  ASSERT_TRUE(pub) << pub.error().message;
  auto block = Subscriber::open(ch.name(), sub_options(Policy::block));
  auto drop = Subscriber::open(ch.name(), sub_options(Policy::drop));
  ASSERT_TRUE(block && drop);
  ASSERT_EQ(publish_message(*pub, 1), PublishStatus::ok);
  Claim c;
  const std::string key = key_of(2);
  ASSERT_EQ(pub->try_claim(300, c, RecordTag{as_span(key), 5}), PublishStatus::ok);
  pub->abandon(c);
  ASSERT_EQ(publish_message(*pub, 3), PublishStatus::ok);
  for (Subscriber* sub : {&*block, &*drop}) {
    const auto got = receive_all(*sub, 2);
    ASSERT_EQ(got.size(), 2u);
    expect_message(got[0], 1);
    expect_message(got[1], 3);
    EXPECT_EQ(got[1].lost_before, 1u);
  }
}

// --- filters ------------------------------------------------------------------------------------

struct FilterCase {
  const char* name;
  MessageFilter filter;
  bool (*matches)(std::uint64_t i);
};

void PrintTo(const FilterCase& c, std::ostream* os) { *os << c.name; }

class TaggedFilters
    : public ::testing::TestWithParam<std::tuple<FilterCase, Policy>> {};

TEST_P(TaggedFilters, DeliversOnlyMatchingRecordsAndCountsTheOthers) {
  const auto& [c, policy] = GetParam();
  ChannelGuard ch(unique_channel("tagfilter"));
  auto pub = Publisher::open(ch.name(), small_options());
  ASSERT_TRUE(pub) << pub.error().message;
  SubscriberOptions so = sub_options(policy);
  so.filter = c.filter;
  auto sub = Subscriber::open(ch.name(), so);
  ASSERT_TRUE(sub) << sub.error().message;
  constexpr std::uint64_t kMessages = 600;  // two laps and more
  std::vector<Got> got;
  // Reads until the subscriber has passed `i`, matching or not (a block subscriber that stopped
  // at a filtered stretch would hold the producer).
  auto read_past = [&](std::uint64_t i) {
    const auto deadline = std::chrono::steady_clock::now() + 10s;
    while (sub->next_sequence() <= i && std::chrono::steady_clock::now() < deadline) {
      sub->poll([&](const Message& m) { got.push_back(got_of(m)); });
    }
  };
  for (std::uint64_t i = 1; i <= kMessages; ++i) {
    ASSERT_EQ(publish_message(*pub, i), PublishStatus::ok) << i;
    if (i % 16 == 0) read_past(i);
  }
  read_past(kMessages);
  std::vector<std::uint64_t> expected;
  for (std::uint64_t i = 1; i <= kMessages; ++i) {
    if (c.matches(i)) expected.push_back(i);
  }
  ASSERT_GT(expected.size(), 0u);
  ASSERT_LT(expected.size(), kMessages);
  ASSERT_EQ(got.size(), expected.size());
  for (std::size_t k = 0; k < got.size(); ++k) expect_message(got[k], expected[k]);
  EXPECT_EQ(sub->filtered(), kMessages - expected.size());
  EXPECT_EQ(sub->received(), expected.size());
  EXPECT_EQ(sub->lost(), 0u);
  EXPECT_EQ(sub->next_sequence(), kMessages + 1);
}

const FilterCase kFilterCases[] = {
    {"key acct-3", MessageFilter{std::string("acct-3"), {}},
     [](std::uint64_t i) { return key_of(i) == "acct-3"; }},
    {"type 11", MessageFilter{std::nullopt, {11}},
     [](std::uint64_t i) { return type_of(i) == 11; }},
    {"types 0 and 12", MessageFilter{std::nullopt, {0, 12}},
     [](std::uint64_t i) { return type_of(i) == 0 || type_of(i) == 12; }},
    {"key acct-5 and type 12", MessageFilter{std::string("acct-5"), {12}},
     [](std::uint64_t i) { return key_of(i) == "acct-5" && type_of(i) == 12; }},
};

INSTANTIATE_TEST_SUITE_P(Cases, TaggedFilters,
                         ::testing::Combine(::testing::ValuesIn(kFilterCases),
                                            ::testing::Values(Policy::block, Policy::drop)));

TEST(TaggedRecords, ALossBeforeAFilteredRecordIsReportedWithTheNextOneDelivered) {
  ChannelGuard ch(unique_channel("tagfiltlost"));
  auto pub = Publisher::open(ch.name(), small_options());
  ASSERT_TRUE(pub) << pub.error().message;
  SubscriberOptions so = sub_options(Policy::drop);
  so.filter.key = "wanted";
  auto sub = Subscriber::open(ch.name(), so);
  ASSERT_TRUE(sub) << sub.error().message;
  const std::string wanted = "wanted", other = "other";
  ASSERT_EQ(pub->try_publish(as_span(std::string("a")), RecordTag{as_span(wanted), 0}),
            PublishStatus::ok);  // 1
  Claim c;
  ASSERT_EQ(pub->try_claim(10, c), PublishStatus::ok);  // 2: abandoned
  pub->abandon(c);
  ASSERT_EQ(pub->try_publish(as_span(std::string("b")), RecordTag{as_span(other), 0}),
            PublishStatus::ok);  // 3: filtered out, carries the loss of 2
  ASSERT_EQ(pub->try_publish(as_span(std::string("c")), RecordTag{as_span(wanted), 0}),
            PublishStatus::ok);  // 4
  const auto got = receive_all(*sub, 2);
  ASSERT_EQ(got.size(), 2u);
  EXPECT_EQ(got[0].sequence, 1u);
  EXPECT_EQ(got[0].lost_before, 0u);
  EXPECT_EQ(got[1].sequence, 4u);
  EXPECT_EQ(got[1].payload, "c");
  EXPECT_EQ(got[1].lost_before, 1u);
  EXPECT_EQ(sub->lost(), 1u);
  EXPECT_EQ(sub->filtered(), 1u);
}

TEST(TaggedRecords, AFilterKeyLongerThanAnyKeyIsRefusedAtOpen) {
  ChannelGuard ch(unique_channel("tagfiltlong"));
  auto pub = Publisher::open(ch.name(), small_options());
  ASSERT_TRUE(pub) << pub.error().message;
  SubscriberOptions so = sub_options(Policy::drop);
  so.filter.key = std::string(kMaxKeyLength + 1, 'x');
  auto sub = Subscriber::open(ch.name(), so);
  ASSERT_FALSE(sub);
  EXPECT_EQ(sub.error().code, ErrorCode::invalid_argument);
  EXPECT_NE(sub.error().message.find("at most 256"), std::string::npos) << sub.error().message;
}

// --- the journal and spill ----------------------------------------------------------------------

TEST(TaggedRecords, TheJournalKeepsKeysAndTypesAndSpillDeliversThemFiltered) {
  ChannelGuard ch(unique_channel("tagjournal"));
  TempDir dir("tagjournal");
  auto pub = Publisher::open(ch.name(), small_options());
  ASSERT_TRUE(pub) << pub.error().message;
  JournalerOptions jo;
  jo.channel = ch.name();
  jo.writer.dir = dir.path();
  jo.writer.segment_bytes = 64 << 10;  // the catch-up crosses segment files
  auto journaler = Journaler::open(jo);
  ASSERT_TRUE(journaler) << journaler.error().message;
  std::atomic<bool> stop{false};
  std::thread running([&] { (void)journaler->run(stop); });

  constexpr std::uint64_t kMessages = 4 * (64 << 10) / 256;  // four laps: the ring keeps the last
  for (std::uint64_t i = 1; i <= kMessages; ++i) {
    ASSERT_EQ(publish_message(*pub, i), PublishStatus::ok) << i;
  }
  const auto deadline = std::chrono::steady_clock::now() + 30s;
  while (pub->journaled_sequence() < kMessages && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(1ms);
  }
  ASSERT_GE(pub->journaled_sequence(), kMessages);

  {  // every sequence from 5, the early ones from the journal files
    SubscriberOptions so = sub_options(Policy::spill, StartFrom::sequence);
    so.start_sequence = 5;
    auto sub = Subscriber::open(ch.name(), so);
    ASSERT_TRUE(sub) << sub.error().message;
    EXPECT_TRUE(sub->catching_up());
    const auto got = receive_all(*sub, kMessages - 4, 30s);
    ASSERT_EQ(got.size(), kMessages - 4);
    for (std::uint64_t i = 5; i <= kMessages; ++i) expect_message(got[i - 5], i);
    EXPECT_GT(sub->spilled(), 0u);
  }
  {  // filtered, from the journal as from the ring
    SubscriberOptions so = sub_options(Policy::spill, StartFrom::sequence);
    so.start_sequence = 1;
    so.filter.key = "acct-2";
    so.filter.message_types = {11, 12};
    auto sub = Subscriber::open(ch.name(), so);
    ASSERT_TRUE(sub) << sub.error().message;
    std::vector<std::uint64_t> expected;
    for (std::uint64_t i = 1; i <= kMessages; ++i) {
      if (key_of(i) == "acct-2" && type_of(i) != 0) expected.push_back(i);
    }
    const auto got = receive_all(*sub, expected.size(), 30s);
    ASSERT_EQ(got.size(), expected.size());
    for (std::size_t k = 0; k < got.size(); ++k) expect_message(got[k], expected[k]);
    EXPECT_GT(sub->spilled(), 0u);
    EXPECT_GT(sub->filtered(), 0u);
  }
  stop = true;
  running.join();

  auto reader = journal::JournalReader::open(dir.path());
  ASSERT_TRUE(reader) << reader.error().message;
  ASSERT_GT(reader->segments().size(), 1u);
  ASSERT_TRUE(reader->seek_sequence(1));
  journal::JournalRecord r;
  std::uint64_t i = 0;
  while (reader->next(r) == journal::ReadStatus::record) {
    ++i;
    ASSERT_EQ(r.type, journal::RecordType::data);
    expect_message(Got{r.sequence, text_of(r.key), r.message_type, text_of(r.payload), 0}, i);
  }
  EXPECT_EQ(i, kMessages) << reader->last_error();
}

}  // namespace
}  // namespace shmbus
