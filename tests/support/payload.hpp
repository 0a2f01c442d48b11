// Deterministic test payloads: every byte of a message is a function of (producer id, per-producer
// counter), and so is its length (given a seed and a size range), so a subscriber in another
// process can verify each message it receives without being told what was sent.
//
// The content of message (producer, counter) is a prefix of one conceptual byte stream:
//
//   bytes 0..3   producer id, little-endian u32
//   bytes 4..11  counter, little-endian u64
//   bytes 12..   filler: successive little-endian u64 outputs of SplitMix64 seeded with
//                mix(producer, counter), truncated to the message length
//
// A message of at least kPayloadIdBytes names its own producer and counter; a shorter one is just
// the first bytes of that stream, verifiable only by a reader who knows which (producer, counter)
// to expect (see Verifier::expect_single_producer).
//
// Checksum (payload_checksum): FNV-1a 64's step (xor, then multiply by the FNV prime 0x100000001b3,
// starting from the FNV offset basis 0xcbf29ce484222325) applied to each 64-bit little-endian
// word of the payload, then to each remaining tail byte, then to the length. Word-wise, so it is not
// byte-wise FNV-1a; it is only compared with itself.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <vector>

namespace shmbus::test {

inline constexpr std::size_t kPayloadIdBytes = 12;

struct PayloadId {
  std::uint32_t producer = 0;
  std::uint64_t counter = 0;
};

// Lengths are drawn uniformly from [min_size, max_size] by a hash of (seed, producer, counter).
struct SizeRule {
  std::uint64_t seed = 0;
  std::uint32_t min_size = 16;
  std::uint32_t max_size = 256;
};

std::uint32_t payload_length(const SizeRule& rule, PayloadId id) noexcept;

// Writes the first out.size() bytes of message `id`'s stream.
void fill_payload(std::span<std::byte> out, PayloadId id) noexcept;

std::uint64_t payload_checksum(std::span<const std::byte> payload) noexcept;

// Folds one (sequence, payload checksum) pair into a running checksum, so two subscribers that saw
// the same messages in the same order end with the same value.
std::uint64_t fold_checksum(std::uint64_t running, std::uint64_t sequence,
                            std::uint64_t payload_sum) noexcept;
inline constexpr std::uint64_t kChecksumSeed = 0xcbf29ce484222325ULL;

// The id a payload carries, or nothing when it is shorter than kPayloadIdBytes.
std::optional<PayloadId> read_payload_id(std::span<const std::byte> payload) noexcept;

// Checks a stream of received messages, one call per message in delivery order: the payload bytes
// and length, and that each producer's counters only go up (by exactly one when `contiguous`).
class Verifier {
 public:
  Verifier(SizeRule rule, bool contiguous) : rule_(rule), contiguous_(contiguous) {}

  // Payloads shorter than kPayloadIdBytes are taken to come from `producer`, with the counter
  // after the last one seen from it (0 for the first).
  void expect_single_producer(std::uint32_t producer) { single_producer_ = producer; }

  // Verifies one payload; `gap` is how many sequences were lost just before it (a gap excuses a
  // skipped counter). Returns an error message, or nothing when it is right.
  std::optional<std::string> check(std::span<const std::byte> payload, std::uint64_t gap);

  // Messages seen per producer id (index = id; ids are small).
  const std::vector<std::uint64_t>& counts() const { return counts_; }
  // Last counter seen per producer id (UINT64_MAX when none).
  const std::vector<std::uint64_t>& last_counters() const { return last_; }

 private:
  SizeRule rule_;
  bool contiguous_;
  std::optional<std::uint32_t> single_producer_;
  std::vector<std::uint64_t> counts_;
  std::vector<std::uint64_t> last_;
  std::vector<std::byte> scratch_;
};

}  // namespace shmbus::test
