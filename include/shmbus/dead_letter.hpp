// Dead letters: a record that a consumer group gave up on, as published on the group's dead-letter
// channel (by default `<channel>.dlq`, an ordinary channel; `shmbus dlq` lists, shows and
// replays it). Each record of that channel is one encoded DeadLetter: the original record's
// sequence, time, key, type and payload, and who gave up on it, when and why.
//
//   shmbus::DeadLetter letter{...};                       // views into the failed record
//   const std::size_t size = shmbus::encoded_size(letter);
//   shmbus::Claim claim;
//   if (size != 0 && dlq.claim(size, claim, timeout) == shmbus::PublishStatus::ok) {
//     shmbus::encode(letter, claim.span());               // in place: no copy, no allocation
//     (void)dlq.commit(claim);
//   }
//   auto back = shmbus::decode(message.payload);          // views into message.payload
//
// The encoding (little endian; docs/dead-letters.md has the byte diagram) is a 48-byte fixed
// header that opens with a magic ("SBDL") and a version, then the channel, group, reason, key and
// payload bytes back to back. decode() checks every length against its input: a record that is
// not a dead letter is an Error (ErrorCode::corrupt), never a read out of bounds.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <string_view>

#include "result.hpp"

namespace shmbus {

// Why a record was dead-lettered. Decoding accepts any value (a later writer may add reasons);
// to_string names the ones listed here and calls the rest "unknown".
enum class DeadLetterReason : std::uint16_t {
  rejected = 1,     // the application nacked it, saying why (DeadLetter::reason)
  ack_timeout = 2,  // it was delivered max_attempts times and never acked in time
  member_died = 3,  // the members it was delivered to died holding it, max_attempts times
  unreadable = 4,   // the record could not be read back (overwritten, damaged); no payload
};
// "rejected", "ack_timeout", "member_died", "unreadable", or "unknown".
const char* to_string(DeadLetterReason reason) noexcept;

// A dead letter, as views: encode() reads them, decode() returns them pointing into its input
// (valid as long as that input is).
struct DeadLetter {
  std::uint64_t original_sequence = 0;    // the record's sequence on `channel`
  std::int64_t original_timestamp_ns = 0;  // its publish time, ns since the Unix epoch
  std::int64_t dead_lettered_ns = 0;      // when the group gave up on it, ns since the epoch
  std::uint32_t attempts = 0;             // deliveries made before it gave up
  DeadLetterReason reason_code = DeadLetterReason::rejected;
  std::string_view channel;  // the channel the record was published on (at most 255 bytes)
  std::string_view group;    // the consumer group that gave up on it (at most 255 bytes)
  std::string_view reason;   // free text: the nack's reason, the last error; may be empty
  std::span<const std::byte> key;  // the record's key, if it has one (at most 256 bytes)
  std::uint16_t message_type = 0;  // the record's type, as its publisher set it
  std::span<const std::byte> payload;  // the record's payload (empty if it was unreadable)
};

// Bounds of the variable parts. A longer reason is truncated on encoding (at a UTF-8 character
// boundary, so at most kMaxDeadLetterReason bytes are kept); a longer name or key cannot be
// encoded.
inline constexpr std::size_t kMaxDeadLetterName = 255;
inline constexpr std::size_t kMaxDeadLetterReason = 1024;
inline constexpr std::size_t kMaxDeadLetterKey = 256;
// The fixed header's size: what a dead letter with empty strings, key and payload takes.
inline constexpr std::size_t kDeadLetterHeaderSize = 48;

// The bytes encode() writes for `letter` (with its reason truncated as it will be), or 0 when it
// cannot be encoded: the channel or group name is longer than kMaxDeadLetterName, the key longer
// than kMaxDeadLetterKey, or the whole larger than 4 GiB.
std::size_t encoded_size(const DeadLetter& letter) noexcept;

// Writes `letter` at the start of `out` (a publisher's claim, say) and returns the bytes written,
// encoded_size(letter); 0, and nothing written, when it cannot be encoded or `out` is smaller.
// Allocates nothing.
std::size_t encode(const DeadLetter& letter, std::span<std::byte> out) noexcept;

// Reads a dead letter back; its views point into `bytes`. ErrorCode::corrupt, with a message
// saying what is wrong, when `bytes` is not exactly one dead letter (another magic, a length past
// the end or over its bound, bytes left over); ErrorCode::version_mismatch
// when it is one of another encoding version. Allocates only for an error's message.
Result<DeadLetter> decode(std::span<const std::byte> bytes);

// The default dead-letter channel of `channel`: "<channel>.dlq". Every valid channel name gives a
// valid channel name (check_channel_name allows the suffix beyond the usual length).
std::string dead_letter_channel(std::string_view channel);

}  // namespace shmbus
