// The dead-letter encoding (include/shmbus/dead_letter.hpp; the byte diagram is in
// docs/dead-letters.md): writer and reader side by side, over the offsets below.
#include "shmbus/dead_letter.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <array>
#include <cstring>
#include <limits>

namespace shmbus {
namespace {

// The fixed header, little endian. Offsets of each field:
constexpr std::size_t kMagicAt = 0;         // 4 bytes "SBDL"
constexpr std::size_t kVersionAt = 4;       // u16
constexpr std::size_t kChannelSizeAt = 6;   // u8
constexpr std::size_t kGroupSizeAt = 7;     // u8
constexpr std::size_t kSequenceAt = 8;      // u64 original_sequence
constexpr std::size_t kTimestampAt = 16;    // i64 original_timestamp_ns
constexpr std::size_t kDeadAt = 24;         // i64 dead_lettered_ns
constexpr std::size_t kAttemptsAt = 32;     // u32
constexpr std::size_t kPayloadSizeAt = 36;  // u32
constexpr std::size_t kReasonCodeAt = 40;   // u16
constexpr std::size_t kTypeAt = 42;         // u16 message_type
constexpr std::size_t kReasonSizeAt = 44;   // u16
constexpr std::size_t kKeySizeAt = 46;      // u16
constexpr std::size_t kHeaderEnd = 48;      // then channel, group, reason, key, payload
static_assert(kHeaderEnd == kDeadLetterHeaderSize);
static_assert(kKeySizeAt + 2 == kHeaderEnd && kReasonSizeAt + 2 == kKeySizeAt &&
              kTypeAt + 2 == kReasonSizeAt && kReasonCodeAt + 2 == kTypeAt &&
              kPayloadSizeAt + 4 == kReasonCodeAt && kAttemptsAt + 4 == kPayloadSizeAt &&
              kDeadAt + 8 == kAttemptsAt && kTimestampAt + 8 == kDeadAt &&
              kSequenceAt + 8 == kTimestampAt && kGroupSizeAt + 1 == kSequenceAt &&
              kChannelSizeAt + 1 == kGroupSizeAt && kVersionAt + 2 == kChannelSizeAt &&
              kMagicAt + 4 == kVersionAt);
// The bounds fit their size fields.
static_assert(kMaxDeadLetterName <= std::numeric_limits<std::uint8_t>::max());
static_assert(kMaxDeadLetterReason <= std::numeric_limits<std::uint16_t>::max());
static_assert(kMaxDeadLetterKey <= std::numeric_limits<std::uint16_t>::max());

constexpr std::array<char, 4> kMagic{'S', 'B', 'D', 'L'};
constexpr std::uint16_t kVersion = 1;

// Little-endian stores and loads by bytes: the output (a claim) and input (a message) have no
// alignment guarantee, and the encoding must not depend on the host's byte order.
template <class T>
void put(std::byte* at, T value) noexcept {
  using U = std::make_unsigned_t<T>;
  const U u = static_cast<U>(value);
  for (std::size_t i = 0; i < sizeof(T); ++i) at[i] = static_cast<std::byte>(u >> (8 * i));
}
template <class T>
T get(const std::byte* at) noexcept {
  using U = std::make_unsigned_t<T>;
  U u = 0;
  for (std::size_t i = 0; i < sizeof(T); ++i) u |= static_cast<U>(static_cast<U>(at[i]) << (8 * i));
  return static_cast<T>(u);
}

// The reason as encoded: at most kMaxDeadLetterReason bytes, cut before a UTF-8 continuation
// byte so that no character is split (text that is not UTF-8 is still cut within the bound).
std::string_view truncated_reason(std::string_view reason) noexcept {
  if (reason.size() <= kMaxDeadLetterReason) return reason;
  std::size_t end = kMaxDeadLetterReason;
  // At most 3 continuation bytes precede the byte at `end` within one character.
  for (int back = 0; back < 3 && end > 0 &&
                     (static_cast<unsigned char>(reason[end]) & 0xC0) == 0x80;
       ++back) {
    --end;
  }
  return reason.substr(0, end);
}

tl::unexpected<Error> corrupt(std::string message) {
  return tl::unexpected(Error{ErrorCode::corrupt, "not a dead letter: " + std::move(message)});
}

}  // namespace

const char* to_string(DeadLetterReason reason) noexcept {
  switch (reason) {
    case DeadLetterReason::rejected: return "rejected";
    case DeadLetterReason::ack_timeout: return "ack_timeout";
    case DeadLetterReason::member_died: return "member_died";
    case DeadLetterReason::unreadable: return "unreadable";
  }
  return "unknown";
}

std::size_t encoded_size(const DeadLetter& letter) noexcept {
  if (letter.channel.size() > kMaxDeadLetterName || letter.group.size() > kMaxDeadLetterName ||
      letter.key.size() > kMaxDeadLetterKey) {
    return 0;
  }
  // The payload's size field is a u32, and so is what one record of a channel can hold.
  const std::size_t fixed = kHeaderEnd + letter.channel.size() + letter.group.size() +
                            truncated_reason(letter.reason).size() + letter.key.size();
  if (letter.payload.size() > std::numeric_limits<std::uint32_t>::max() - fixed) return 0;
  return fixed + letter.payload.size();
}

std::size_t encode(const DeadLetter& letter, std::span<std::byte> out) noexcept {
  const std::size_t size = encoded_size(letter);
  if (size == 0 || out.size() < size) return 0;
  const std::string_view reason = truncated_reason(letter.reason);
  std::byte* p = out.data();
  std::memcpy(p + kMagicAt, kMagic.data(), kMagic.size());
  put<std::uint16_t>(p + kVersionAt, kVersion);
  put<std::uint8_t>(p + kChannelSizeAt, static_cast<std::uint8_t>(letter.channel.size()));
  put<std::uint8_t>(p + kGroupSizeAt, static_cast<std::uint8_t>(letter.group.size()));
  put<std::uint64_t>(p + kSequenceAt, letter.original_sequence);
  put<std::int64_t>(p + kTimestampAt, letter.original_timestamp_ns);
  put<std::int64_t>(p + kDeadAt, letter.dead_lettered_ns);
  put<std::uint32_t>(p + kAttemptsAt, letter.attempts);
  put<std::uint32_t>(p + kPayloadSizeAt, static_cast<std::uint32_t>(letter.payload.size()));
  put<std::uint16_t>(p + kReasonCodeAt, static_cast<std::uint16_t>(letter.reason_code));
  put<std::uint16_t>(p + kTypeAt, letter.message_type);
  put<std::uint16_t>(p + kReasonSizeAt, static_cast<std::uint16_t>(reason.size()));
  put<std::uint16_t>(p + kKeySizeAt, static_cast<std::uint16_t>(letter.key.size()));
  std::size_t at = kHeaderEnd;
  auto append = [&](const void* bytes, std::size_t n) {
    if (n != 0) std::memcpy(p + at, bytes, n);  // an empty view may have a null data()
    at += n;
  };
  append(letter.channel.data(), letter.channel.size());
  append(letter.group.data(), letter.group.size());
  append(reason.data(), reason.size());
  append(letter.key.data(), letter.key.size());
  append(letter.payload.data(), letter.payload.size());
  return at;
}

Result<DeadLetter> decode(std::span<const std::byte> bytes) {
  const std::size_t magic_bytes = std::min(bytes.size(), kMagic.size());
  if (magic_bytes != 0 && std::memcmp(bytes.data(), kMagic.data(), magic_bytes) != 0) {
    return corrupt(fmt::format("{} bytes that do not begin with the magic \"SBDL\"", bytes.size()));
  }
  if (bytes.size() < kHeaderEnd) {
    return corrupt(fmt::format("{} bytes, shorter than the {}-byte header", bytes.size(),
                               kHeaderEnd));
  }
  const std::byte* p = bytes.data();
  const auto version = get<std::uint16_t>(p + kVersionAt);
  if (version != kVersion) {
    return tl::unexpected(Error{ErrorCode::version_mismatch,
                                fmt::format("a dead letter of encoding version {}; this build "
                                            "reads version {}",
                                            version, kVersion)});
  }
  const std::size_t channel_size = get<std::uint8_t>(p + kChannelSizeAt);
  const std::size_t group_size = get<std::uint8_t>(p + kGroupSizeAt);
  const std::size_t reason_size = get<std::uint16_t>(p + kReasonSizeAt);
  const std::size_t key_size = get<std::uint16_t>(p + kKeySizeAt);
  const std::size_t payload_size = get<std::uint32_t>(p + kPayloadSizeAt);
  if (reason_size > kMaxDeadLetterReason) {
    return corrupt(fmt::format("its reason is {} bytes long, over the bound of {}", reason_size,
                               kMaxDeadLetterReason));
  }
  if (key_size > kMaxDeadLetterKey) {
    return corrupt(fmt::format("its key is {} bytes long, over the bound of {}", key_size,
                               kMaxDeadLetterKey));
  }
  // Each part fits u8/u16/u32 fields, so their sum cannot overflow a 64-bit size_t.
  const std::size_t want =
      kHeaderEnd + channel_size + group_size + reason_size + key_size + payload_size;
  if (want != bytes.size()) {
    return corrupt(fmt::format("its header gives {} bytes (channel {}, group {}, reason {}, key "
                               "{}, payload {}) but the record holds {}",
                               want, channel_size, group_size, reason_size, key_size,
                               payload_size, bytes.size()));
  }
  DeadLetter d;
  d.original_sequence = get<std::uint64_t>(p + kSequenceAt);
  d.original_timestamp_ns = get<std::int64_t>(p + kTimestampAt);
  d.dead_lettered_ns = get<std::int64_t>(p + kDeadAt);
  d.attempts = get<std::uint32_t>(p + kAttemptsAt);
  d.reason_code = static_cast<DeadLetterReason>(get<std::uint16_t>(p + kReasonCodeAt));
  d.message_type = get<std::uint16_t>(p + kTypeAt);
  std::size_t at = kHeaderEnd;
  auto text = [&](std::size_t n) {
    const std::string_view v(reinterpret_cast<const char*>(p + at), n);
    at += n;
    return v;
  };
  auto span = [&](std::size_t n) {
    const std::span<const std::byte> v = bytes.subspan(at, n);
    at += n;
    return v;
  };
  d.channel = text(channel_size);
  d.group = text(group_size);
  d.reason = text(reason_size);
  d.key = span(key_size);
  d.payload = span(payload_size);
  return d;
}

std::string dead_letter_channel(std::string_view channel) {
  std::string name(channel);
  name += ".dlq";
  return name;
}

}  // namespace shmbus
