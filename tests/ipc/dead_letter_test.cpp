// The dead-letter encoding (include/shmbus/dead_letter.hpp): round trips, the byte layout
// docs/dead-letters.md documents, the bounds and the reason's truncation, and decode over hostile
// input (every truncation, every length field changed, random bytes): an Error, never a read out
// of its input (ASan checks that in the sanitizer build).
#include <gtest/gtest.h>

#include <cstring>
#include <random>
#include <string>
#include <vector>

#include "shmbus/dead_letter.hpp"
#include "shmbus/shmbus.hpp"
#include "tests/support/inprocess.hpp"
#include "tests/support/process.hpp"

namespace shmbus {
namespace {

using test::ChannelGuard;
using test::unique_channel;

std::vector<std::byte> bytes_of(std::string_view text) {
  std::vector<std::byte> out(text.size());
  if (!text.empty()) std::memcpy(out.data(), text.data(), text.size());
  return out;
}

std::string text_of(std::span<const std::byte> bytes) {
  return std::string(reinterpret_cast<const char*>(bytes.data()), bytes.size());
}

// A dead letter with every part set; its views point into the strings and vectors it holds.
struct Sample {
  std::vector<std::byte> key = bytes_of("customer-42");
  std::vector<std::byte> payload = bytes_of("{\"order\":7,\"qty\":3}");
  DeadLetter letter() const {
    DeadLetter d;
    d.original_sequence = 0x0102030405060708;
    d.original_timestamp_ns = 1'795'773'600'123'456'789;
    d.dead_lettered_ns = 1'795'773'601'000'000'000;
    d.attempts = 5;
    d.reason_code = DeadLetterReason::rejected;
    d.channel = "orders";
    d.group = "billing";
    d.reason = "price missing";
    d.key = key;
    d.message_type = 0x0a0b;
    d.payload = payload;
    return d;
  }
};

std::vector<std::byte> encoded(const DeadLetter& d) {
  std::vector<std::byte> out(encoded_size(d));
  EXPECT_EQ(encode(d, out), out.size());
  return out;
}

void expect_same(const DeadLetter& a, const DeadLetter& b) {
  EXPECT_EQ(a.original_sequence, b.original_sequence);
  EXPECT_EQ(a.original_timestamp_ns, b.original_timestamp_ns);
  EXPECT_EQ(a.dead_lettered_ns, b.dead_lettered_ns);
  EXPECT_EQ(a.attempts, b.attempts);
  EXPECT_EQ(a.reason_code, b.reason_code);
  EXPECT_EQ(a.channel, b.channel);
  EXPECT_EQ(a.group, b.group);
  EXPECT_EQ(a.reason, b.reason);
  EXPECT_EQ(text_of(a.key), text_of(b.key));
  EXPECT_EQ(a.message_type, b.message_type);
  EXPECT_EQ(text_of(a.payload), text_of(b.payload));
}

bool inside(std::span<const std::byte> outer, const void* p, std::size_t n) {
  const auto* b = static_cast<const std::byte*>(p);
  return n == 0 || (b >= outer.data() && b + n <= outer.data() + outer.size());
}

TEST(DeadLetter, RoundTripKeepsEveryFieldAndTheViewsPointIntoTheInput) {
  const Sample s;
  const DeadLetter d = s.letter();
  const std::vector<std::byte> bytes = encoded(d);
  EXPECT_EQ(bytes.size(), kDeadLetterHeaderSize + 6 + 7 + 13 + 11 + s.payload.size());
  auto back = decode(bytes);
  ASSERT_TRUE(back) << back.error().message;
  expect_same(*back, d);
  EXPECT_TRUE(inside(bytes, back->channel.data(), back->channel.size()));
  EXPECT_TRUE(inside(bytes, back->payload.data(), back->payload.size()));
  EXPECT_EQ(back->payload.data(), bytes.data() + bytes.size() - s.payload.size());
}

TEST(DeadLetter, EmptyPartsTakeTheHeaderAlone) {
  DeadLetter d;
  d.original_sequence = 9;
  d.reason_code = DeadLetterReason::unreadable;
  const std::vector<std::byte> bytes = encoded(d);
  EXPECT_EQ(bytes.size(), kDeadLetterHeaderSize);
  auto back = decode(bytes);
  ASSERT_TRUE(back) << back.error().message;
  expect_same(*back, d);
  EXPECT_TRUE(back->payload.empty());
  EXPECT_TRUE(back->key.empty());
}

// The offsets docs/dead-letters.md documents, little endian.
TEST(DeadLetter, EncodingIsTheDocumentedLittleEndianLayout) {
  const Sample s;
  const std::vector<std::byte> b = encoded(s.letter());
  auto u = [&](std::size_t at, int n) {
    std::uint64_t v = 0;
    for (int i = n - 1; i >= 0; --i) v = v << 8 | static_cast<std::uint8_t>(b[at + i]);
    return v;
  };
  EXPECT_EQ(text_of(std::span(b).first(4)), "SBDL");
  EXPECT_EQ(u(4, 2), 1u);        // version
  EXPECT_EQ(u(6, 1), 6u);        // channel size
  EXPECT_EQ(u(7, 1), 7u);        // group size
  EXPECT_EQ(u(8, 8), 0x0102030405060708u);
  EXPECT_EQ(u(16, 8), 1'795'773'600'123'456'789u);
  EXPECT_EQ(u(24, 8), 1'795'773'601'000'000'000u);
  EXPECT_EQ(u(32, 4), 5u);       // attempts
  EXPECT_EQ(u(36, 4), s.payload.size());
  EXPECT_EQ(u(40, 2), 1u);       // reason code: rejected
  EXPECT_EQ(u(42, 2), 0x0a0bu);  // message type
  EXPECT_EQ(u(44, 2), 13u);      // reason size
  EXPECT_EQ(u(46, 2), 11u);      // key size
  EXPECT_EQ(text_of(std::span(b).subspan(48)),
            "ordersbillingprice missingcustomer-42" + text_of(s.payload));
}

TEST(DeadLetter, AReasonOverTheBoundIsTruncatedAtACharacterBoundary) {
  DeadLetter d;
  std::string ascii(3000, 'r');
  d.reason = ascii;
  EXPECT_EQ(encoded_size(d), kDeadLetterHeaderSize + kMaxDeadLetterReason);
  const std::vector<std::byte> ascii_bytes = encoded(d);  // the views point into it
  auto back = decode(ascii_bytes);
  ASSERT_TRUE(back) << back.error().message;
  EXPECT_EQ(back->reason, ascii.substr(0, kMaxDeadLetterReason));

  // "é" (2 bytes) at 1023..1024 would be cut in half: the truncation stops before it.
  std::string accented(kMaxDeadLetterReason - 1, 'a');
  accented += "\xc3\xa9 and more";
  d.reason = accented;
  const std::vector<std::byte> accented_bytes = encoded(d);  // the views point into it
  back = decode(accented_bytes);
  ASSERT_TRUE(back) << back.error().message;
  EXPECT_EQ(back->reason, std::string(kMaxDeadLetterReason - 1, 'a'));

  // A reason of exactly the bound is kept whole.
  std::string exact(kMaxDeadLetterReason, 'x');
  d.reason = exact;
  const std::vector<std::byte> exact_bytes = encoded(d);  // the views point into it
  back = decode(exact_bytes);
  ASSERT_TRUE(back) << back.error().message;
  EXPECT_EQ(back->reason, exact);
}

TEST(DeadLetter, ANameOrKeyOverItsBoundCannotBeEncodedAndNothingIsWritten) {
  const Sample s;
  const std::string name_at_bound(kMaxDeadLetterName, 'n');
  const std::string name_over(kMaxDeadLetterName + 1, 'n');
  const std::vector<std::byte> key_at_bound(kMaxDeadLetterKey, std::byte{7});
  const std::vector<std::byte> key_over(kMaxDeadLetterKey + 1, std::byte{7});

  DeadLetter d = s.letter();
  d.channel = name_at_bound;
  d.group = name_at_bound;
  d.key = key_at_bound;
  const std::vector<std::byte> bytes = encoded(d);  // the views point into it
  auto back = decode(bytes);
  ASSERT_TRUE(back) << back.error().message;
  expect_same(*back, d);

  std::vector<std::byte> out(4096, std::byte{0xee});
  for (int which = 0; which < 3; ++which) {
    DeadLetter bad = s.letter();
    if (which == 0) bad.channel = name_over;
    if (which == 1) bad.group = name_over;
    if (which == 2) bad.key = key_over;
    EXPECT_EQ(encoded_size(bad), 0u) << which;
    EXPECT_EQ(encode(bad, out), 0u) << which;
    EXPECT_EQ(out[0], std::byte{0xee}) << which;
  }
}

TEST(DeadLetter, EncodingIntoTooSmallASpaceWritesNothing) {
  const Sample s;
  const DeadLetter d = s.letter();
  std::vector<std::byte> out(encoded_size(d) - 1, std::byte{0xee});
  EXPECT_EQ(encode(d, out), 0u);
  EXPECT_EQ(out[0], std::byte{0xee});
  std::vector<std::byte> roomy(encoded_size(d) + 10, std::byte{0xee});
  EXPECT_EQ(encode(d, roomy), encoded_size(d));
  EXPECT_EQ(roomy[encoded_size(d)], std::byte{0xee});  // nothing past what it says it wrote
}

TEST(DeadLetter, EveryTruncationAndAnyTrailingByteIsCorrupt) {
  const Sample s;
  std::vector<std::byte> bytes = encoded(s.letter());
  for (std::size_t n = 0; n < bytes.size(); ++n) {
    // A copy of exactly n bytes: ASan catches any read past it.
    const std::vector<std::byte> prefix(bytes.begin(), bytes.begin() + static_cast<long>(n));
    auto r = decode(prefix);
    ASSERT_FALSE(r) << n;
    EXPECT_EQ(r.error().code, ErrorCode::corrupt) << n << ": " << r.error().message;
    EXPECT_NE(r.error().message.find("not a dead letter"), std::string::npos) << n;
  }
  bytes.push_back(std::byte{0});
  auto r = decode(bytes);
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code, ErrorCode::corrupt);
  EXPECT_NE(r.error().message.find("but the record holds"), std::string::npos)
      << r.error().message;
}

TEST(DeadLetter, LengthsOverTheirBoundsAnotherMagicAndAnotherVersionAreRefused) {
  const Sample s;
  const std::vector<std::byte> good = encoded(s.letter());
  auto with = [&](std::size_t at, std::uint16_t v) {
    std::vector<std::byte> b = good;
    b[at] = static_cast<std::byte>(v & 0xff);
    b[at + 1] = static_cast<std::byte>(v >> 8);
    return b;
  };
  auto reason = decode(with(44, kMaxDeadLetterReason + 1));
  ASSERT_FALSE(reason);
  EXPECT_EQ(reason.error().code, ErrorCode::corrupt);
  EXPECT_NE(reason.error().message.find("reason"), std::string::npos) << reason.error().message;
  auto key = decode(with(46, kMaxDeadLetterKey + 1));
  ASSERT_FALSE(key);
  EXPECT_EQ(key.error().code, ErrorCode::corrupt);
  EXPECT_NE(key.error().message.find("key"), std::string::npos) << key.error().message;

  std::vector<std::byte> magic = good;
  magic[3] = std::byte{'X'};
  auto m = decode(magic);
  ASSERT_FALSE(m);
  EXPECT_EQ(m.error().code, ErrorCode::corrupt);
  EXPECT_NE(m.error().message.find("SBDL"), std::string::npos) << m.error().message;

  auto version = decode(with(4, 2));
  ASSERT_FALSE(version);
  EXPECT_EQ(version.error().code, ErrorCode::version_mismatch) << version.error().message;
}

// Every value of every length field: either refused, or (when the lengths still add up, which a
// shift between two parts does) a dead letter whose views all lie inside the input.
TEST(DeadLetter, ChangedLengthFieldsAreRefusedOrStayInsideTheInput) {
  const Sample s;
  const std::vector<std::byte> good = encoded(s.letter());
  for (std::size_t at : {6u, 7u, 36u, 37u, 38u, 39u, 44u, 45u, 46u, 47u}) {
    for (int v = 0; v < 256; ++v) {
      std::vector<std::byte> b = good;
      b[at] = static_cast<std::byte>(v);
      auto r = decode(b);
      if (!r) {
        EXPECT_EQ(r.error().code, ErrorCode::corrupt) << at << "=" << v;
        continue;
      }
      EXPECT_TRUE(inside(b, r->channel.data(), r->channel.size()));
      EXPECT_TRUE(inside(b, r->group.data(), r->group.size()));
      EXPECT_TRUE(inside(b, r->reason.data(), r->reason.size()));
      EXPECT_TRUE(inside(b, r->key.data(), r->key.size()));
      EXPECT_TRUE(inside(b, r->payload.data(), r->payload.size()));
    }
  }
}

TEST(DeadLetter, RandomBytesAreRefusedEvenBehindAValidMagicAndVersion) {
  std::mt19937_64 rng(20261203);
  int refused = 0;
  for (int i = 0; i < 20000; ++i) {
    std::vector<std::byte> b(rng() % 400);
    for (auto& x : b) x = static_cast<std::byte>(rng());
    if (i % 2 == 1 && b.size() >= 6) {  // half of them get past the magic and version
      std::memcpy(b.data(), "SBDL\x01\x00", 6);
    }
    auto r = decode(b);
    if (!r) {
      EXPECT_TRUE(r.error().code == ErrorCode::corrupt) << r.error().message;
      ++refused;
      continue;
    }
    EXPECT_TRUE(inside(b, r->payload.data(), r->payload.size()));
  }
  // Random lengths add up to the record's size about never.
  EXPECT_GE(refused, 19990);
}

TEST(DeadLetter, ReasonCodesHaveNamesAndUnknownOnesDecode) {
  EXPECT_STREQ(to_string(DeadLetterReason::rejected), "rejected");
  EXPECT_STREQ(to_string(DeadLetterReason::ack_timeout), "ack_timeout");
  EXPECT_STREQ(to_string(DeadLetterReason::member_died), "member_died");
  EXPECT_STREQ(to_string(DeadLetterReason::unreadable), "unreadable");
  DeadLetter d;
  d.reason_code = static_cast<DeadLetterReason>(77);
  const std::vector<std::byte> bytes = encoded(d);  // the views point into it
  auto back = decode(bytes);
  ASSERT_TRUE(back) << back.error().message;
  EXPECT_EQ(static_cast<int>(back->reason_code), 77);
  EXPECT_STREQ(to_string(back->reason_code), "unknown");
}

TEST(DeadLetter, TheDeadLetterChannelOfTheLongestChannelNameIsAValidChannel) {
  EXPECT_EQ(dead_letter_channel("orders"), "orders.dlq");
  std::string longest = unique_channel("dlq");
  longest += std::string(48 - longest.size(), '_');
  const std::string dlq = dead_letter_channel(longest);
  ChannelGuard guard(dlq);
  auto pub = Publisher::open(dlq, test::small_options());
  ASSERT_TRUE(pub) << pub.error().message;
  EXPECT_EQ(pub->info().name, dlq);
  // The allowance is for the suffix alone: 52 characters without it, or a second suffix, are not.
  for (const std::string& bad : {longest + "abcd", dlq + ".dlq", longest + "..dlq"}) {
    auto refused = Publisher::open(bad, test::small_options());
    ASSERT_FALSE(refused) << bad;
    EXPECT_EQ(refused.error().code, ErrorCode::invalid_argument) << refused.error().message;
  }
}

}  // namespace
}  // namespace shmbus
