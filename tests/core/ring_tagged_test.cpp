// Tagged records (a key and/or a message type before the payload, core/layout.hpp): written
// beside plain records, read back by both readers with key, type and payload intact, and refused
// as corrupt, never read out of bounds, when their prefix is garbage.
#include <gtest/gtest.h>

#include <random>
#include <string>
#include <vector>

#include "tests/core/ring_testing.hpp"

namespace shmbus::core {
namespace {

using ringtest::fill_payload;
using ringtest::Memory;
using ringtest::payload_ok;
using ringtest::stamp;
using ringtest::TestRing;

// The key a test gives the record with sequence s: none for every third, else 1..40 bytes that
// name the sequence.
std::string key_for(std::uint64_t sequence) {
  if (sequence % 3 == 0) return {};
  std::string key = std::to_string(sequence);
  key.insert(key.begin(), 'k');
  key.resize(1 + sequence % 40, static_cast<char>('a' + sequence % 26));
  return key;
}
std::uint16_t type_for(std::uint64_t sequence) {
  return sequence % 5 == 0 ? 0 : static_cast<std::uint16_t>(1000 + sequence);
}
bool tagged(std::uint64_t sequence) { return !key_for(sequence).empty() || type_for(sequence); }

std::span<const std::byte> bytes_of(const std::string& s) {
  return std::as_bytes(std::span(s.data(), s.size()));
}

// Publishes record `sequence` (the ring's next) with the test's key and type, or plain when it
// has neither. Half go through write_header + commit, half through begin + commit_with_header.
ClaimStatus publish_tagged(RingWriter& w, std::uint32_t payload, std::uint64_t gate_floor) {
  const std::uint64_t sequence = w.ring().load_tail().next_sequence;
  const std::string key = key_for(sequence);
  const bool with_tag = tagged(sequence);
  const std::uint32_t tag = with_tag ? tag_size(static_cast<std::uint32_t>(key.size())) : 0;
  ClaimTicket t;
  const ClaimStatus st = w.try_claim(tag + payload, gate_floor, t);
  if (st != ClaimStatus::ok) return st;
  if (with_tag) {
    t.type = RecordType::tagged;
    write_tag(t.payload, bytes_of(key), type_for(sequence));
  }
  fill_payload(t.payload + tag, payload, t.sequence);
  if (sequence % 2 == 0) {
    w.write_header(t, stamp(t.sequence));
    if (w.commit(t) != CommitStatus::ok) throw std::logic_error("commit failed");
  } else {
    w.begin(t, stamp(t.sequence));
    if (w.commit_with_header(t, stamp(t.sequence)) != CommitStatus::ok) {
      throw std::logic_error("commit failed");
    }
  }
  return st;
}

struct SeenTagged {
  std::uint64_t sequence;
  RecordType type;
  std::string key;
  bool has_key;
  std::uint16_t message_type;
  std::uint32_t length;
  bool payload_intact;
};

SeenTagged seen(const RecordView& v) {
  return SeenTagged{v.sequence,
                    v.type,
                    std::string(reinterpret_cast<const char*>(v.key), v.key_length),
                    v.key != nullptr,
                    v.message_type,
                    v.length,
                    payload_ok(v.payload, v.length, v.sequence)};
}

void expect_record(const SeenTagged& s, std::uint64_t sequence, std::uint32_t payload) {
  SCOPED_TRACE("sequence " + std::to_string(sequence));
  EXPECT_EQ(s.sequence, sequence);
  EXPECT_EQ(s.type, tagged(sequence) ? RecordType::tagged : RecordType::data);
  EXPECT_EQ(s.key, key_for(sequence));
  EXPECT_EQ(s.has_key, !key_for(sequence).empty());
  EXPECT_EQ(s.message_type, type_for(sequence));
  EXPECT_EQ(s.length, payload);
  EXPECT_TRUE(s.payload_intact);
}

TEST(RingTagged, TagIsAnEightBytePrefixAndTheKeyPaddedToEightBytes) {
  EXPECT_EQ(tag_size(0), 8u);
  EXPECT_EQ(tag_size(1), 16u);
  EXPECT_EQ(tag_size(8), 16u);
  EXPECT_EQ(tag_size(9), 24u);
  EXPECT_EQ(tag_size(kMaxKeyLength), 8u + kMaxKeyLength);
  EXPECT_TRUE(tag_fits(TagPrefix{0, 7, 0}, 8));
  EXPECT_FALSE(tag_fits(TagPrefix{1, 0, 0}, 15));
  EXPECT_TRUE(tag_fits(TagPrefix{1, 0, 0}, 16));
  EXPECT_FALSE(tag_fits(TagPrefix{0, 0, 1}, 64));  // reserved bits
  EXPECT_FALSE(tag_fits(TagPrefix{kMaxKeyLength + 1, 0, 0}, 4096));
}

TEST(RingTagged, PlainRecordsKeepTheirBytes) {
  // A record without key and type is RecordType::data with the payload right after the header,
  // exactly as before tagged records existed.
  TestRing ring(1 << 14, 1000);
  RingWriter w(ring.ref(), 1);
  ASSERT_EQ(ringtest::publish(w, 64, UINT64_MAX), ClaimStatus::ok);
  const RecordHeader& h = ring.record_at(0);
  EXPECT_EQ(h.type, static_cast<std::uint16_t>(RecordType::data));
  EXPECT_EQ(h.length, 64u);
  EXPECT_TRUE(payload_ok(ring.data() + kRecordHeaderSize, 64, 1));
}

TEST(RingTagged, TaggedRecordHoldsPrefixKeyPaddingThenPayload) {
  TestRing ring(1 << 14, 1000);
  RingWriter w(ring.ref(), 1);
  ClaimTicket t;
  const std::string key = "abc";
  ASSERT_EQ(w.try_claim(tag_size(3) + 20, UINT64_MAX, t), ClaimStatus::ok);
  t.type = RecordType::tagged;
  std::memset(t.payload, 0xee, tag_size(3));  // what a previous lap left
  write_tag(t.payload, bytes_of(key), 513);
  fill_payload(t.payload + tag_size(3), 20, 1);
  w.write_header(t, 1);
  ASSERT_EQ(w.commit(t), CommitStatus::ok);

  const RecordHeader& h = ring.record_at(0);
  EXPECT_EQ(h.type, static_cast<std::uint16_t>(RecordType::tagged));
  EXPECT_EQ(h.length, 16u + 20u);
  const std::byte* p = ring.data() + kRecordHeaderSize;
  const std::uint8_t want[16] = {3, 0, 1, 2, 0, 0, 0, 0, 'a', 'b', 'c', 0, 0, 0, 0, 0};
  EXPECT_EQ(std::memcmp(p, want, sizeof want), 0);
  EXPECT_TRUE(payload_ok(p + 16, 20, 1));
}

TEST(RingTagged, InterleavedRecordsReadInPlaceAcrossLapsBySequenceKeyTypeAndPayload) {
  TestRing ring(1 << 13, 1000, Memory::guarded);
  RingWriter w(ring.ref(), 1);
  RingReader reader(ring.ref(), 0, 1);
  std::uint64_t next = 1;
  std::mt19937_64 rng(11);
  std::vector<std::uint32_t> sizes(1);  // by sequence
  for (int round = 0; round < 200; ++round) {
    // A gating reader: the writer may use the space up to one lap past it.
    for (int i = 0; i < 3; ++i) {
      const auto payload = static_cast<std::uint32_t>(rng() % 200);
      ASSERT_EQ(publish_tagged(w, payload, reader.position()), ClaimStatus::ok);
      sizes.push_back(payload);
    }
    std::size_t delivered = 0;
    std::vector<SeenTagged> got;
    ASSERT_EQ(reader.poll_inplace([&](const RecordView& v) { got.push_back(seen(v)); }, 1000,
                                  delivered),
              ReadState::empty);
    ASSERT_EQ(got.size(), 3u);
    for (const SeenTagged& s : got) expect_record(s, next, sizes[next]), ++next;
  }
  EXPECT_GT(ring.ref().claimed_position(std::memory_order_relaxed), 4 * ring.ref().capacity);  // relaxed: see above
}

TEST(RingTagged, InterleavedRecordsReadByCopyAcrossLapsBySequenceKeyTypeAndPayload) {
  TestRing ring(1 << 13, 1000, Memory::guarded);
  RingWriter w(ring.ref(), 1);
  RingReader reader(ring.ref(), 0, 1);
  std::vector<std::byte> buffer(1 << 13);
  std::uint64_t next = 1;
  std::mt19937_64 rng(12);
  std::vector<std::uint32_t> sizes(1);
  for (int round = 0; round < 200; ++round) {
    for (int i = 0; i < 4; ++i) {
      const auto payload = static_cast<std::uint32_t>(rng() % 200);
      ASSERT_EQ(publish_tagged(w, payload, UINT64_MAX), ClaimStatus::ok);
      sizes.push_back(payload);
    }
    std::vector<SeenTagged> got;
    for (;;) {
      std::size_t delivered = 0;
      const ReadState st =
          reader.poll_copy([&](const RecordView& v) { got.push_back(seen(v)); }, 3,
                           buffer.data(), buffer.size(), delivered);
      ASSERT_NE(st, ReadState::lapped);
      ASSERT_NE(st, ReadState::corrupt);
      if (st == ReadState::empty) break;
    }
    ASSERT_EQ(got.size(), 4u);
    for (const SeenTagged& s : got) expect_record(s, next, sizes[next]), ++next;
  }
}

// Writes a committed tagged record of `length` bytes at the ring's next position whose prefix is
// `prefix` (whatever it says), with `fill` after it. Returns its position.
std::uint64_t commit_raw_tagged(RingWriter& w, std::uint32_t length, const void* prefix,
                                std::size_t prefix_bytes) {
  ClaimTicket t;
  if (w.try_claim(length, UINT64_MAX, t) != ClaimStatus::ok) throw std::logic_error("claim");
  t.type = RecordType::tagged;
  std::memset(t.payload, 0x5a, length);
  std::memcpy(t.payload, prefix, std::min<std::size_t>(prefix_bytes, length));
  w.write_header(t, stamp(t.sequence));
  if (w.commit(t) != CommitStatus::ok) throw std::logic_error("commit");
  return t.position;
}

struct BadPrefix {
  const char* what;
  std::uint32_t length;
  TagPrefix prefix;
};

void PrintTo(const BadPrefix& bad, std::ostream* os) { *os << bad.what; }

class RingTaggedGarbage : public ::testing::TestWithParam<BadPrefix> {};

TEST_P(RingTaggedGarbage, BothReadersReportCorruptAndStayAtTheRecord) {
  const BadPrefix bad = GetParam();
  // The bad record is the last frame of the ring, against the guard page: a read beyond its
  // length faults.
  TestRing ring(4096, 900, Memory::guarded);
  RingWriter w(ring.ref(), 1);
  const std::uint64_t frame = frame_size(bad.length);
  // Fill the ring up to the last frame with plain records of one frame each (64-byte payload).
  while (ring.ref().claimed_position(std::memory_order_relaxed) + frame_size(64) + frame <= 4096) {
    ASSERT_EQ(ringtest::publish(w, 64, UINT64_MAX), ClaimStatus::ok);
  }
  std::uint64_t before = ring.ref().claimed_position(std::memory_order_relaxed);  // relaxed: see above
  while (before + frame < 4096) {
    ASSERT_EQ(ringtest::publish(w, 0, UINT64_MAX), ClaimStatus::ok);
    before += kFrameAlignment;
  }
  const std::uint64_t plain = ring.ref().load_tail().next_sequence - 1;
  const std::uint64_t position = commit_raw_tagged(w, bad.length, &bad.prefix, sizeof bad.prefix);
  ASSERT_EQ(position + frame, 4096u) << "the bad record must end at the guard page";

  {
    RingReader reader(ring.ref(), 0, 1);
    std::size_t delivered = 0;
    std::uint64_t last = 0;
    EXPECT_EQ(reader.poll_inplace([&](const RecordView& v) { last = v.sequence; }, 1000, delivered),
              ReadState::corrupt)
        << bad.what;
    EXPECT_EQ(last, plain);
    EXPECT_EQ(reader.position(), position);
    EXPECT_EQ(reader.next_sequence(), plain + 1);
  }
  {
    RingReader reader(ring.ref(), 0, 1);
    std::vector<std::byte> buffer(8192);
    std::uint64_t last = 0;
    ReadState st;
    for (;;) {
      std::size_t delivered = 0;
      st = reader.poll_copy([&](const RecordView& v) { last = v.sequence; }, 16, buffer.data(),
                            buffer.size(), delivered);
      if (st != ReadState::ready) break;
    }
    EXPECT_EQ(st, ReadState::corrupt) << bad.what;
    EXPECT_EQ(last, plain);
    EXPECT_EQ(reader.position(), position);
    EXPECT_EQ(reader.next_sequence(), plain + 1);
  }
}

INSTANTIATE_TEST_SUITE_P(
    Prefixes, RingTaggedGarbage,
    ::testing::Values(BadPrefix{"record shorter than a prefix", 4, TagPrefix{0, 1, 0}},
                      BadPrefix{"empty record", 0, TagPrefix{0, 1, 0}},
                      BadPrefix{"key past the record", 40, TagPrefix{33, 0, 0}},
                      BadPrefix{"key longer than the maximum", 600, TagPrefix{300, 0, 0}},
                      BadPrefix{"key of 65535 bytes", 64, TagPrefix{0xffff, 0, 0}},
                      BadPrefix{"reserved bits set", 64, TagPrefix{4, 2, 0x100}}),
    [](const auto& info) { return "case" + std::to_string(info.index); });

TEST(RingTagged, RandomPrefixesAreReadWithinTheRecordOrRefused) {
  // Fuzz-like: records of random length whose prefix is random bytes. A reader either hands on a
  // key and payload that lie inside the record, or reports corrupt; it never crashes.
  std::mt19937_64 rng(99);
  for (int trial = 0; trial < 400; ++trial) {
    TestRing ring(4096, 900, Memory::guarded);
    RingWriter w(ring.ref(), 1);
    const auto length = static_cast<std::uint32_t>(rng() % 300);
    std::uint64_t words[2] = {rng(), rng()};
    if (trial % 2 == 0) words[0] &= 0x0000'0000'ffff'01ffULL;  // often small keys, reserved 0
    const std::uint64_t position = commit_raw_tagged(w, length, words, sizeof words);
    const std::byte* record = ring.data() + position + kRecordHeaderSize;
    TagPrefix prefix{};
    if (length >= sizeof prefix) std::memcpy(&prefix, record, sizeof prefix);
    const bool valid = length >= sizeof prefix && tag_fits(prefix, length);

    RingReader reader(ring.ref(), 0, 1);
    std::size_t delivered = 0;
    const ReadState st = reader.poll_inplace(
        [&](const RecordView& v) {
          EXPECT_EQ(v.key_length, prefix.key_length);
          EXPECT_EQ(v.message_type, prefix.message_type);
          EXPECT_EQ(v.payload + v.length, record + length);
          if (v.key_length > 0) {
            EXPECT_EQ(v.key, record + sizeof(TagPrefix));
            EXPECT_LE(v.key + v.key_length, v.payload);
          }
        },
        10, delivered);
    ASSERT_EQ(st, valid ? ReadState::empty : ReadState::corrupt) << "trial " << trial;
    ASSERT_EQ(delivered, valid ? 1u : 0u);
  }
}

TEST(RingTagged, HeaderChecksAcceptTaggedRecordsUpToMaxMessage) {
  TestRing ring(1 << 14, 1000);
  RecordHeader h{};
  h.type = static_cast<std::uint16_t>(RecordType::tagged);
  h.sequence = 1;
  h.length = 1000;
  EXPECT_FALSE(check_record(ring.ref(), 0, h).has_value());
  h.length = 1001;
  EXPECT_TRUE(check_record(ring.ref(), 0, h).has_value());
}

TEST(RingTagged, AbandonedTaggedClaimIsSkippedAndCountedLost) {
  TestRing ring(1 << 14, 1000);
  RingWriter w(ring.ref(), 1);
  ClaimTicket t;
  ASSERT_EQ(w.try_claim(tag_size(5) + 30, UINT64_MAX, t), ClaimStatus::ok);
  t.type = RecordType::tagged;
  w.begin(t, 1);
  write_tag(t.payload, bytes_of("hello"), 9);
  w.abandon(t);
  ASSERT_EQ(publish_tagged(w, 10, UINT64_MAX), ClaimStatus::ok);  // sequence 2: key "k2..."

  RingReader reader(ring.ref(), 0, 1);
  std::vector<SeenTagged> got;
  std::vector<std::uint64_t> lost;
  std::size_t delivered = 0;
  EXPECT_EQ(reader.poll_inplace(
                [&](const RecordView& v) {
                  got.push_back(seen(v));
                  lost.push_back(v.lost_before);
                },
                10, delivered),
            ReadState::empty);
  ASSERT_EQ(got.size(), 1u);
  expect_record(got[0], 2, 10);
  EXPECT_EQ(lost[0], 1u);
}

}  // namespace
}  // namespace shmbus::core
