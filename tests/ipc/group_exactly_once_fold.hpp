// What the exactly-once group test's members fold (tests/ipc/group_exactly_once_member.cpp) and
// what the test compares the sum of their states with (group_exactly_once_test.cpp).
#pragma once

#include <cstdint>
#include <cstring>

#include "shmbus/group_consumer.hpp"

namespace shmbus::test::eo {

// The payload of sequence s: 8 bytes, a SplitMix64 of s.
inline std::uint64_t value_of(std::uint64_t sequence) {
  std::uint64_t z = sequence + 0x9e3779b97f4a7c15ull;
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
  return z ^ (z >> 31);
}

// A member's state: how many records, the sum of their values, the XOR of a per-record hash
// (any record applied twice or missed changes it), and records whose payload was not their
// sequence's value.
struct Totals {
  std::uint64_t count = 0;
  std::uint64_t sum = 0;
  std::uint64_t hash_xor = 0;
  std::uint64_t bad = 0;
  bool operator==(const Totals&) const = default;
};

inline std::uint64_t hash_of(std::uint64_t sequence) { return value_of(sequence ^ 0xa5a5a5a5ull); }

inline void apply(Totals& t, const GroupMessage& m) {
  std::uint64_t v = 0;
  if (m.payload.size() != sizeof v) {
    ++t.bad;
    return;
  }
  std::memcpy(&v, m.payload.data(), sizeof v);
  if (v != value_of(m.sequence)) ++t.bad;
  t.count += 1;
  t.sum += v;
  t.hash_xor ^= hash_of(m.sequence);
}

inline void add(Totals& into, const Totals& t) {
  into.count += t.count;
  into.sum += t.sum;
  into.hash_xor ^= t.hash_xor;
  into.bad += t.bad;
}

// The sequential fold over sequences first..last.
inline Totals fold(std::uint64_t first, std::uint64_t last) {
  Totals t;
  for (std::uint64_t s = first; s <= last; ++s) {
    t.count += 1;
    t.sum += value_of(s);
    t.hash_xor ^= hash_of(s);
  }
  return t;
}

}  // namespace shmbus::test::eo
