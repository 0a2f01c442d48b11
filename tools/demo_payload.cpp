#include "tools/demo_payload.hpp"

#include <algorithm>

namespace shmbus::tools {
namespace {

constexpr std::size_t kChecksumBytes = 4;

// SplitMix64: one well-mixed 64-bit value per input, so sizes and bytes look random but are a
// pure function of the counter.
std::uint64_t mix(std::uint64_t x) noexcept {
  x += 0x9e3779b97f4a7c15ULL;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
  return x ^ (x >> 31);
}

std::uint32_t fnv1a32(std::span<const std::byte> bytes) noexcept {
  std::uint32_t h = 0x811c9dc5u;
  for (std::byte b : bytes) {
    h ^= static_cast<std::uint32_t>(b);
    h *= 0x01000193u;
  }
  return h;
}

std::uint64_t load_le(std::span<const std::byte> bytes) noexcept {
  std::uint64_t v = 0;
  for (std::size_t i = 0; i < bytes.size(); ++i) {
    v |= std::uint64_t{static_cast<std::uint8_t>(bytes[i])} << (8 * i);
  }
  return v;
}

void store_le(std::span<std::byte> out, std::uint64_t v) noexcept {
  for (std::size_t i = 0; i < out.size(); ++i) {
    out[i] = static_cast<std::byte>((v >> (8 * i)) & 0xff);
  }
}

}  // namespace

std::uint32_t demo_payload_size(std::uint64_t counter) noexcept {
  constexpr std::uint64_t span = kDemoMaxPayload - kDemoMinPayload + 1;
  return kDemoMinPayload + static_cast<std::uint32_t>(mix(counter) % span);
}

void fill_demo_payload(std::span<std::byte> out, std::uint64_t counter) noexcept {
  const std::size_t body_end = out.size() - kChecksumBytes;
  store_le(out.first(8), counter);
  std::uint64_t state = counter ^ 0x5eed'5eed'5eed'5eedULL;
  for (std::size_t i = 8; i < body_end; i += 8) {
    state = mix(state);
    const std::size_t n = std::min<std::size_t>(8, body_end - i);
    store_le(out.subspan(i, n), state);
  }
  store_le(out.subspan(body_end), fnv1a32(out.first(body_end)));
}

bool demo_payload_ok(std::span<const std::byte> payload, std::uint64_t counter) noexcept {
  if (payload.size() != demo_payload_size(counter)) return false;
  const std::size_t body_end = payload.size() - kChecksumBytes;
  if (load_le(payload.first(8)) != counter) return false;
  return load_le(payload.subspan(body_end)) == fnv1a32(payload.first(body_end));
}

}  // namespace shmbus::tools
