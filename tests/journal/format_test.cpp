// The journal format's checksums against known answers, so that a change to how they are chained
// cannot silently change what is on disk.
#include <gtest/gtest.h>

#include <cstring>
#include <vector>

#include "journal/format.hpp"

namespace shmbus::journal {
namespace {

TEST(JournalFormat, Crc32cMatchesTheStandardCheckValue) {
  const char* digits = "123456789";
  EXPECT_EQ(crc32c(digits, 9), 0xe3069283u);  // the CRC-32C check value (RFC 3720, B.4)
  // Continuing a finished crc over the rest equals one pass over the whole.
  EXPECT_EQ(crc32c(crc32c(digits, 4), digits + 4, 5), 0xe3069283u);
  std::vector<unsigned char> zeros(32, 0);
  EXPECT_EQ(crc32c(zeros.data(), zeros.size()), 0x8a9136aau);  // RFC 3720 B.4: 32 bytes of zero
}

TEST(JournalFormat, Crc32cEqualsTheBytewiseTableForEveryLengthAndAlignment) {
  // Lengths around every block size of the interleaved chains (3 x 64, 3 x 256, 3 x 4096) and
  // the record sizes the journal writes most; every start offset modulo 8.
  std::vector<unsigned char> bytes(40'000);
  std::uint64_t x = 0x243f6a8885a308d3ull;
  for (auto& b : bytes) {
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    b = static_cast<unsigned char>(x);
  }
  std::vector<std::size_t> lengths;
  for (std::size_t n = 0; n <= 1100; ++n) lengths.push_back(n);
  for (std::size_t around : {3 * 4096, 2 * 3 * 4096, 3 * 4096 + 3 * 256 + 3 * 64}) {
    for (std::size_t n = around - 9; n <= around + 9; ++n) lengths.push_back(n);
  }
  lengths.push_back(32'768 + 28);
  for (std::size_t offset = 0; offset < 8; ++offset) {
    for (std::size_t n : lengths) {
      ASSERT_EQ(crc32c(0, bytes.data() + offset, n), crc32c_software(0, bytes.data() + offset, n))
          << "length " << n << " at offset " << offset;
      // Continuing a crc over the rest gives the same as one pass, wherever the cut is.
      const std::size_t cut = n / 3;
      ASSERT_EQ(crc32c(crc32c(0, bytes.data() + offset, cut), bytes.data() + offset + cut, n - cut),
                crc32c_software(0, bytes.data() + offset, n))
          << "length " << n << " cut at " << cut;
    }
  }
}

TEST(JournalFormat, LayRecordWritesTheHeaderPayloadAndZeroPaddingMakeRecordHeaderDescribes) {
  for (std::size_t len : {0, 1, 7, 8, 9, 63, 64, 1000, 1024, 5000}) {
    std::vector<std::byte> payload(len);
    for (std::size_t i = 0; i < len; ++i) payload[i] = static_cast<std::byte>(i * 31 + 7);
    RecordHeader made;
    make_record_header(made, RecordType::data, 42, -5, payload);
    // Laid over bytes that are not zero, so the padding must be written, not found.
    std::vector<std::byte> laid(padded_record_size(len) + 8, std::byte{0xee});
    EXPECT_EQ(lay_record(laid.data(), RecordType::data, 42, -5, payload), padded_record_size(len));
    EXPECT_EQ(std::memcmp(laid.data(), &made, sizeof made), 0) << "length " << len;
    if (len > 0) {
      EXPECT_EQ(std::memcmp(laid.data() + kRecordHeaderSize, payload.data(), len), 0);
    }
    for (std::size_t i = kRecordHeaderSize + len; i < padded_record_size(len); ++i) {
      EXPECT_EQ(laid[i], std::byte{0}) << "padding byte " << i << " of length " << len;
    }
    EXPECT_EQ(laid[padded_record_size(len)], std::byte{0xee}) << "wrote past the record";
    EXPECT_FALSE(check_record(made, payload)) << "length " << len;
  }
}

TEST(JournalFormat, StreamRecordLaysTheSameBytesAsLayRecord) {
  for (std::size_t len = 0; len <= 2100; len += (len < 80 ? 1 : 37)) {
    std::vector<std::byte> payload(len);
    for (std::size_t i = 0; i < len; ++i) payload[i] = static_cast<std::byte>(i * 13 + len);
    const std::size_t size = padded_record_size(len);
    // 8-byte aligned, over bytes that are not zero; one spare word to catch a store past the end.
    std::vector<std::uint64_t> laid(size / 8 + 1, 0xeeeeeeeeeeeeeeeeull);
    std::vector<std::uint64_t> streamed(size / 8 + 1, 0xeeeeeeeeeeeeeeeeull);
    auto* laid_at = reinterpret_cast<std::byte*>(laid.data());
    auto* streamed_at = reinterpret_cast<std::byte*>(streamed.data());
    EXPECT_EQ(lay_record(laid_at, RecordType::data, 9, 77, payload), size);
    EXPECT_EQ(stream_record(streamed_at, RecordType::data, 9, 77, payload), size);
    stream_fence();
    ASSERT_EQ(laid, streamed) << "length " << len;
    RecordHeader header;
    std::memcpy(&header, streamed.data(), sizeof header);
    EXPECT_FALSE(check_record(header, payload)) << "length " << len;
  }
}

TEST(JournalFormat, ARecordSealedInPlaceCarriesTheCrcMakeRecordHeaderComputes) {
  for (std::size_t len : {0, 1, 7, 8, 64, 1000}) {
    std::vector<std::byte> payload(len);
    for (std::size_t i = 0; i < len; ++i) payload[i] = static_cast<std::byte>(i * 31 + 7);
    RecordHeader made;
    make_record_header(made, RecordType::data, 42, 1'700'000'000'000'000'000, payload);

    std::vector<std::byte> laid(kRecordHeaderSize + len);
    RecordHeader fields{};
    fields.length = static_cast<std::uint32_t>(len);
    fields.sequence = 42;
    fields.timestamp_ns = 1'700'000'000'000'000'000;
    fields.type = static_cast<std::uint16_t>(RecordType::data);
    std::memcpy(laid.data(), &fields, sizeof fields);
    if (len > 0) std::memcpy(laid.data() + kRecordHeaderSize, payload.data(), len);
    seal_record(laid.data(), static_cast<std::uint32_t>(len));
    RecordHeader sealed;
    std::memcpy(&sealed, laid.data(), sizeof sealed);
    EXPECT_EQ(sealed.crc, made.crc) << "length " << len;
    EXPECT_FALSE(check_record(sealed, payload)) << "length " << len;
    // And it is the masked CRC32C of header bytes 4..31 followed by the payload.
    EXPECT_EQ(unmask_crc(made.crc), crc32c(laid.data() + 4, laid.size() - 4)) << "length " << len;
  }
}

}  // namespace
}  // namespace shmbus::journal
