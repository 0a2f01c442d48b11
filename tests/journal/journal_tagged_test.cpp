// Tagged data records in the journal (kRecordFlagTagged, format version 2): laid and checked by
// the format, appended by the writer beside plain and gap records, read back by JournalReader
// with key and message type; garbage tags are damage, never a crash; version 1 segments are still
// read, and a writer reopening one continues in a new segment.
#include <gtest/gtest.h>

#include <cstring>
#include <string>
#include <vector>

#include "journal/format.hpp"
#include "journal/writer.hpp"
#include "shmbus/journal_reader.hpp"
#include "tests/journal/writer_testing.hpp"
#include "tests/support/journal_files.hpp"

namespace shmbus::journal {
namespace {

using ::shmbus::test::SegmentBuilder;
using ::shmbus::test::TempDir;
using test::payload_for;
using test::small_options;

std::span<const std::byte> bytes_of(const std::string& s) {
  return std::as_bytes(std::span(s.data(), s.size()));
}
std::string text_of(std::span<const std::byte> b) {
  return std::string(reinterpret_cast<const char*>(b.data()), b.size());
}

// The key and type record s gets: none for every third (a plain record), a type for the odd ones.
std::string key_of(std::uint64_t s) {
  if (s % 3 == 0) return {};
  std::string key = "key-";
  key += std::to_string(s);
  return key;
}
std::uint16_t type_of(std::uint64_t s) { return s % 3 == 0 ? 0 : static_cast<std::uint16_t>(s % 2 ? s : 0); }

std::vector<std::byte> tagged_payload(const std::string& key, std::uint16_t type,
                                      std::span<const std::byte> payload) {
  std::vector<std::byte> out(tag_size(static_cast<std::uint32_t>(key.size())) + payload.size());
  lay_tagged_payload(out.data(), bytes_of(key), type, payload);
  return out;
}

TEST(JournalTagged, ATaggedPayloadIsThePrefixThePaddedKeyAndThePayload) {
  const auto payload = payload_for(1, 20);
  const auto laid = tagged_payload("abc", 0x0201, payload);
  ASSERT_EQ(laid.size(), 16u + 20u);
  const std::uint8_t want[16] = {3, 0, 1, 2, 0, 0, 0, 0, 'a', 'b', 'c', 0, 0, 0, 0, 0};
  EXPECT_EQ(std::memcmp(laid.data(), want, sizeof want), 0);
  EXPECT_EQ(std::memcmp(laid.data() + 16, payload.data(), payload.size()), 0);
  const auto split = split_tagged(laid);
  ASSERT_TRUE(split);
  EXPECT_EQ(text_of(split->key), "abc");
  EXPECT_EQ(split->message_type, 0x0201);
  ASSERT_EQ(split->payload.size(), 20u);
  EXPECT_EQ(std::memcmp(split->payload.data(), payload.data(), 20), 0);
}

TEST(JournalTagged, CheckRecordRefusesBadTagsAndTheFlagWhereItDoesNotBelong) {
  auto check = [](const std::vector<std::byte>& payload, RecordType type, std::uint16_t flags) {
    RecordHeader h;
    make_record_header(h, type, 5, 1, payload, flags);
    return check_record(h, payload);
  };
  const auto good = tagged_payload("k", 3, payload_for(5, 10));
  EXPECT_FALSE(check(good, RecordType::data, kRecordFlagTagged));
  EXPECT_FALSE(check(good, RecordType::data, 0));  // plain: the bytes are just a payload

  struct Bad {
    const char* what;
    std::vector<std::byte> payload;
  };
  std::vector<Bad> bad;
  bad.push_back({"shorter than a prefix", std::vector<std::byte>(7)});
  auto past = tagged_payload("k", 0, {});
  past[0] = std::byte{9};  // key of 9 bytes in a 16-byte payload
  bad.push_back({"key past the record", past});
  std::vector<std::byte> huge(8 + 400);
  huge[0] = std::byte{0x2c};  // 300
  huge[1] = std::byte{0x01};
  bad.push_back({"key above the maximum", huge});
  auto reserved = good;
  reserved[6] = std::byte{1};
  bad.push_back({"reserved bits", reserved});
  for (const Bad& b : bad) {
    const auto why = check(b.payload, RecordType::data, kRecordFlagTagged);
    ASSERT_TRUE(why) << b.what;
    EXPECT_NE(why->find("bad tag"), std::string::npos) << *why;
  }
  const GapPayload gap{3};
  const auto gap_bytes = std::as_bytes(std::span(&gap, 1));
  const std::vector<std::byte> gap_payload(gap_bytes.begin(), gap_bytes.end());
  EXPECT_TRUE(check(gap_payload, RecordType::gap, kRecordFlagTagged));
  EXPECT_TRUE(check(good, RecordType::data, 2));  // an unknown flag
}

TEST(JournalTagged, WriterAndReaderKeepKeysAndTypesBesidePlainAndGapRecords) {
  TempDir dir;
  WriterOptions o = small_options(dir.path());
  o.segment_bytes = 32 << 10;  // several segments
  {
    auto w = JournalWriter::open(o);
    ASSERT_TRUE(w) << w.error().message;
    for (std::uint64_t s = 1; s <= 400; ++s) {
      if (s == 200) {
        ASSERT_TRUE(w->append_gap(200, 5, 7));
        s = 204;
        continue;
      }
      const auto payload = payload_for(s, s % 300);
      for (;;) {
        auto r = w->append_tagged(s, static_cast<std::int64_t>(s), bytes_of(key_of(s)), type_of(s),
                                  payload);
        if (r) break;
        ASSERT_EQ(r.error().code, ErrorCode::busy) << r.error().message;
        ASSERT_TRUE(w->reap(true));
      }
    }
    const std::string too_long(kMaxKeyLength + 1, 'x');
    const auto refused = w->append_tagged(401, 1, bytes_of(too_long), 0, {});
    ASSERT_FALSE(refused);
    EXPECT_EQ(refused.error().code, ErrorCode::invalid_argument);
    ASSERT_TRUE(w->drain());
  }
  auto reader = JournalReader::open(dir.path());
  ASSERT_TRUE(reader) << reader.error().message;
  EXPECT_GT(reader->segments().size(), 2u);
  JournalRecord r;
  std::uint64_t s = 1;
  while (reader->next(r) == ReadStatus::record) {
    SCOPED_TRACE("sequence " + std::to_string(s));
    ASSERT_EQ(r.sequence, s);
    if (s == 200) {
      ASSERT_EQ(r.type, RecordType::gap);
      EXPECT_EQ(r.gap_count, 5u);
      EXPECT_TRUE(r.key.empty());
      s = 205;
      continue;
    }
    ASSERT_EQ(r.type, RecordType::data);
    EXPECT_EQ(text_of(r.key), key_of(s));
    EXPECT_EQ(r.message_type, type_of(s));
    const auto payload = payload_for(s, s % 300);
    ASSERT_EQ(r.payload.size(), payload.size());
    if (!payload.empty()) {
      EXPECT_EQ(std::memcmp(r.payload.data(), payload.data(), payload.size()), 0);
    }
    ++s;
  }
  EXPECT_EQ(s, 401u) << reader->last_error();

  // seek by sequence and by time land on tagged records like on plain ones
  ASSERT_TRUE(reader->seek_sequence(301));
  ASSERT_EQ(reader->next(r), ReadStatus::record);
  EXPECT_EQ(r.sequence, 301u);
  EXPECT_EQ(text_of(r.key), key_of(301));
  ASSERT_TRUE(reader->seek_time(350));
  ASSERT_EQ(reader->next(r), ReadStatus::record);
  EXPECT_EQ(r.sequence, 350u);
  EXPECT_EQ(text_of(r.key), key_of(350));
}

// A tagged record whose tag is garbage but whose checksum is right (a writer bug, or a forged
// file) in the middle of a segment: the reader reports damage there, never reads past it.
TEST(JournalTagged, AGarbageTagWithAValidChecksumIsDamage) {
  TempDir dir;
  SegmentBuilder b(dir.path(), 1);
  b.data(1, 1, "first");
  std::vector<std::byte> payload = tagged_payload("k", 0, payload_for(2, 8));
  payload[0] = std::byte{200};  // key of 200 bytes in a 24-byte payload
  RecordHeader h;
  make_record_header(h, RecordType::data, 2, 2, payload, kRecordFlagTagged);
  std::vector<std::byte> record(padded_record_size(payload.size()));
  std::memcpy(record.data(), &h, sizeof h);
  std::memcpy(record.data() + sizeof h, payload.data(), payload.size());
  const std::uint64_t bad_offset = b.raw(record);
  b.data(3, 3, "third");
  b.write();
  auto reader = JournalReader::open(dir.path());
  ASSERT_TRUE(reader) << reader.error().message;
  JournalRecord r;
  ASSERT_EQ(reader->next(r), ReadStatus::record);
  EXPECT_EQ(r.sequence, 1u);
  ASSERT_EQ(reader->next(r), ReadStatus::damaged);
  EXPECT_NE(reader->last_error().find("bad tag"), std::string::npos) << reader->last_error();
  EXPECT_NE(reader->last_error().find(std::to_string(bad_offset)), std::string::npos)
      << reader->last_error();
}

// Rewrites a segment file's header as format version 1 wrote it.
void make_version_1(const std::string& path) {
  auto bytes = ::shmbus::test::read_whole_file(path);
  SegmentHeader h;
  std::memcpy(&h, bytes.data(), sizeof h);
  h.version = 1;
  h.header_crc = mask_crc(crc32c(&h, offsetof(SegmentHeader, header_crc)));
  std::memcpy(bytes.data(), &h, sizeof h);
  ::shmbus::test::write_whole_file(path, bytes);
}

TEST(JournalTagged, Version1SegmentsAreReadAndAWriterContinuesAfterThemInANewSegment) {
  TempDir dir;
  SegmentBuilder b(dir.path(), 1);
  for (std::uint64_t s = 1; s <= 10; ++s) b.data(s, static_cast<std::int64_t>(s), payload_for(s, 30));
  b.write();
  make_version_1(b.path());
  const auto before = ::shmbus::test::read_whole_file(b.path());
  {
    auto w = JournalWriter::open(small_options(dir.path()));
    ASSERT_TRUE(w) << w.error().message;
    EXPECT_EQ(w->next_sequence(), 11u);
    ASSERT_TRUE(w->append_tagged(11, 11, bytes_of(std::string("k11")), 4, payload_for(11, 30)));
    ASSERT_TRUE(w->drain());
  }
  // The version 1 segment is as it was: a version 1 reader never meets a tagged record in it.
  EXPECT_EQ(::shmbus::test::read_whole_file(b.path()), before);
  auto reader = JournalReader::open(dir.path());
  ASSERT_TRUE(reader) << reader.error().message;
  ASSERT_EQ(reader->segments().size(), 2u);
  JournalRecord r;
  for (std::uint64_t s = 1; s <= 11; ++s) {
    ASSERT_EQ(reader->next(r), ReadStatus::record) << reader->last_error();
    EXPECT_EQ(r.sequence, s);
    EXPECT_EQ(text_of(r.key), s == 11 ? "k11" : "");
    EXPECT_EQ(r.message_type, s == 11 ? 4u : 0u);
    const auto payload = payload_for(s, 30);
    ASSERT_EQ(r.payload.size(), payload.size());
    EXPECT_EQ(std::memcmp(r.payload.data(), payload.data(), payload.size()), 0);
  }
  EXPECT_EQ(reader->next(r), ReadStatus::end);
}

TEST(JournalTagged, ASegmentOfALaterVersionIsRefusedNamingBothVersions) {
  SegmentHeader h;
  make_segment_header(h, "c", 1, 1, 0, 1);
  EXPECT_FALSE(check_segment_header(h));
  h.version = kFormatVersion + 1;
  h.header_crc = mask_crc(crc32c(&h, offsetof(SegmentHeader, header_crc)));
  const auto why = check_segment_header(h);
  ASSERT_TRUE(why);
  EXPECT_EQ(*why, "journal format version 3 (this build reads versions 1 to 2)");
}

}  // namespace
}  // namespace shmbus::journal
