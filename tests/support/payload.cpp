#include "tests/support/payload.hpp"

#include <cstring>

namespace shmbus::test {
namespace {

constexpr std::uint64_t kFnvPrime = 0x100000001b3ULL;
constexpr std::uint32_t kMaxProducerId = 4096;  // ids are small; anything above is garbage

std::uint64_t splitmix64(std::uint64_t& state) noexcept {
  std::uint64_t z = (state += 0x9E3779B97F4A7C15ULL);
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
  return z ^ (z >> 31);
}

std::uint64_t mix(std::uint64_t a, std::uint64_t b) noexcept {
  std::uint64_t s = a * 0xD6E8FEB86659FD93ULL ^ b;
  return splitmix64(s);
}

void store_le(std::byte* p, std::uint64_t v, int bytes) noexcept {
  for (int i = 0; i < bytes; ++i) p[i] = static_cast<std::byte>(v >> (8 * i));
}

std::uint64_t load_le(const std::byte* p, int bytes) noexcept {
  std::uint64_t v = 0;
  for (int i = 0; i < bytes; ++i) v |= std::uint64_t{std::to_integer<std::uint8_t>(p[i])} << (8 * i);
  return v;
}

}  // namespace

std::uint32_t payload_length(const SizeRule& rule, PayloadId id) noexcept {
  if (rule.max_size <= rule.min_size) return rule.min_size;
  const std::uint64_t span = std::uint64_t{rule.max_size} - rule.min_size + 1;
  const std::uint64_t h = mix(rule.seed ^ (std::uint64_t{id.producer} << 40), id.counter);
  return rule.min_size + static_cast<std::uint32_t>(h % span);
}

void fill_payload(std::span<std::byte> out, PayloadId id) noexcept {
  std::byte head[kPayloadIdBytes];
  store_le(head, id.producer, 4);
  store_le(head + 4, id.counter, 8);
  const std::size_t n = out.size();
  if (n == 0) return;  // an empty span may have a null data(), which memcpy must not get
  std::memcpy(out.data(), head, n < kPayloadIdBytes ? n : kPayloadIdBytes);
  std::uint64_t state = mix(id.producer, id.counter);
  for (std::size_t off = kPayloadIdBytes; off < n; off += 8) {
    std::byte word[8];
    store_le(word, splitmix64(state), 8);
    std::memcpy(out.data() + off, word, n - off < 8 ? n - off : 8);
  }
}

std::uint64_t payload_checksum(std::span<const std::byte> payload) noexcept {
  std::uint64_t h = kChecksumSeed;
  std::size_t off = 0;
  for (; off + 8 <= payload.size(); off += 8) {
    std::uint64_t w;
    std::memcpy(&w, payload.data() + off, 8);  // x86-64: little-endian
    h = (h ^ w) * kFnvPrime;
  }
  for (; off < payload.size(); ++off) {
    h = (h ^ std::to_integer<std::uint8_t>(payload[off])) * kFnvPrime;
  }
  return (h ^ payload.size()) * kFnvPrime;
}

std::uint64_t fold_checksum(std::uint64_t running, std::uint64_t sequence,
                            std::uint64_t payload_sum) noexcept {
  running = (running ^ sequence) * kFnvPrime;
  return (running ^ payload_sum) * kFnvPrime;
}

std::optional<PayloadId> read_payload_id(std::span<const std::byte> payload) noexcept {
  if (payload.size() < kPayloadIdBytes) return std::nullopt;
  return PayloadId{static_cast<std::uint32_t>(load_le(payload.data(), 4)),
                   load_le(payload.data() + 4, 8)};
}

std::optional<std::string> Verifier::check(std::span<const std::byte> payload, std::uint64_t gap) {
  PayloadId id;
  if (auto carried = read_payload_id(payload)) {
    id = *carried;
    if (id.producer >= kMaxProducerId) {
      return "payload names producer " + std::to_string(id.producer) + ", which is implausible";
    }
  } else if (single_producer_) {
    id.producer = *single_producer_;
    const bool seen = id.producer < last_.size() && last_[id.producer] != UINT64_MAX;
    id.counter = seen ? last_[id.producer] + 1 : 0;
  } else {
    return "payload of " + std::to_string(payload.size()) +
           " bytes is too short to name its producer";
  }
  if (id.producer >= last_.size()) {
    last_.resize(id.producer + 1, UINT64_MAX);
    counts_.resize(id.producer + 1, 0);
  }
  const std::string who =
      "producer " + std::to_string(id.producer) + " counter " + std::to_string(id.counter);
  std::uint64_t& last = last_[id.producer];
  if (last != UINT64_MAX) {
    if (id.counter <= last) {
      return who + " arrived after counter " + std::to_string(last) + " (out of order or repeated)";
    }
    if (contiguous_ && gap == 0 && id.counter != last + 1) {
      return who + " follows counter " + std::to_string(last) + " with no reported loss";
    }
  }
  const std::uint32_t want_length = payload_length(rule_, id);
  if (payload.size() != want_length) {
    return who + " has " + std::to_string(payload.size()) + " bytes, expected " +
           std::to_string(want_length);
  }
  if (scratch_.size() < payload.size()) scratch_.resize(payload.size());
  fill_payload({scratch_.data(), payload.size()}, id);
  if (std::memcmp(scratch_.data(), payload.data(), payload.size()) != 0) {
    std::size_t at = 0;
    while (scratch_[at] == payload[at]) ++at;
    return who + ": payload differs from what was published at byte " + std::to_string(at) +
           " of " + std::to_string(payload.size()) + " (checksum " +
           std::to_string(payload_checksum(payload)) + ", expected " +
           std::to_string(payload_checksum({scratch_.data(), payload.size()})) + ")";
  }
  last = id.counter;
  ++counts_[id.producer];
  return std::nullopt;
}

}  // namespace shmbus::test
