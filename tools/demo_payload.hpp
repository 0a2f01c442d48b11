// The messages of `shmbus demo`: random-ish sizes and a checksum, so that every receiver can verify
// every byte of every message it gets. Message `counter` (1, 2, ...) has demo_payload_size(counter)
// bytes, between kDemoMinPayload and kDemoMaxPayload:
//   bytes 0-7         the counter, little endian (the demo's publisher makes it the sequence)
//   bytes 8 .. n-5    a pseudo-random stream seeded by the counter
//   bytes n-4 .. n-1  FNV-1a (32 bits) of bytes 0 .. n-5, little endian
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>

namespace shmbus::tools {

inline constexpr std::uint32_t kDemoMinPayload = 16;
inline constexpr std::uint32_t kDemoMaxPayload = 512;

std::uint32_t demo_payload_size(std::uint64_t counter) noexcept;

// Writes message `counter` into `out`, which must be demo_payload_size(counter) bytes.
void fill_demo_payload(std::span<std::byte> out, std::uint64_t counter) noexcept;

// True if `payload` is exactly message `counter`: its size, its counter and its checksum.
bool demo_payload_ok(std::span<const std::byte> payload, std::uint64_t counter) noexcept;

}  // namespace shmbus::tools
