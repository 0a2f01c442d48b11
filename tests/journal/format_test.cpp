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
