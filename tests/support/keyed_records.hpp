// The records and the shared key table of the keyed consumer-group proof
// (tests/faults/group_keyed_faults_test.cpp), shared by the test and its peer roles
// (tests/peer/keyed_producer.hpp, tests/peer/keyed_member.hpp).
//
// Records. One producer publishes counters 0, 1, 2, ... into a new channel, so record `sequence`
// carries counter sequence - 1. Counter c belongs to key c % keys and is that key's record number
// c / keys (its per-key index). Its key is key_name(c % keys), its message type kKeyedType, and
// its payload:
//
//   bytes 0..3    kKeyedMagic, little-endian u32
//   bytes 4..7    the key's number, little-endian u32
//   bytes 8..15   the per-key index, little-endian u64
//   bytes 16..    the deterministic payload of PayloadId{producer, c} (tests/support/payload.hpp),
//                 payload_length(rule, id) bytes
//
// The key table. A file the test creates and every member maps MAP_SHARED: a header, then one
// 64-byte slot per key. A member working on a record of key k CASes the slot's owner from 0 to its
// own pid, and back to 0 when done; a CAS that finds another live process there is a violation
// (the group let two members hold the key at once). `done` is how many of the key's records have
// been worked on (the last acked index + 1), stored by the owner before it acks.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "tests/support/payload.hpp"

namespace shmbus::test {

inline constexpr std::uint32_t kKeyedMagic = 0x4459454b;  // "KEYD"
inline constexpr std::size_t kKeyedHeaderBytes = 16;
inline constexpr std::uint16_t kKeyedType = 0x4b;

struct KeyedRecord {
  std::uint32_t key = 0;
  std::uint64_t index = 0;
};

inline KeyedRecord keyed_record(std::uint64_t counter, std::uint32_t keys) {
  return KeyedRecord{static_cast<std::uint32_t>(counter % keys), counter / keys};
}

inline std::string key_name(std::uint32_t key) { return "key-" + std::to_string(key); }

// Records of key `key` among counters 0 .. count - 1.
inline std::uint64_t records_of_key(std::uint64_t count, std::uint32_t keys, std::uint32_t key) {
  return count / keys + (key < count % keys ? 1 : 0);
}

// The whole payload of counter `counter`.
inline std::vector<std::byte> keyed_payload(std::uint32_t producer, std::uint64_t counter,
                                            std::uint32_t keys, const SizeRule& rule) {
  const PayloadId id{producer, counter};
  const KeyedRecord r = keyed_record(counter, keys);
  std::vector<std::byte> p(kKeyedHeaderBytes + payload_length(rule, id));
  std::memcpy(p.data(), &kKeyedMagic, 4);  // little-endian hosts only, as the ring itself
  std::memcpy(p.data() + 4, &r.key, 4);
  std::memcpy(p.data() + 8, &r.index, 8);
  fill_payload(std::span(p).subspan(kKeyedHeaderBytes), id);
  return p;
}

// The (key, index) a payload says it carries, if it has the header at all.
inline std::optional<KeyedRecord> read_keyed_header(std::span<const std::byte> payload) {
  if (payload.size() < kKeyedHeaderBytes) return std::nullopt;
  std::uint32_t magic = 0;
  KeyedRecord r;
  std::memcpy(&magic, payload.data(), 4);
  std::memcpy(&r.key, payload.data() + 4, 4);
  std::memcpy(&r.index, payload.data() + 8, 8);
  if (magic != kKeyedMagic) return std::nullopt;
  return r;
}

inline constexpr std::uint64_t kKeyTableMagic = 0x454c424154594b45ULL;  // "EKYTABLE"

// The table's header. Counters are bumped with atomic read-modify-writes by the members.
struct KeyTableHeader {
  std::uint64_t magic;
  std::uint64_t keys;
  std::uint64_t busy_violations;   // a key found held by another live member
  std::uint64_t order_violations;  // a record out of its key's order
  std::uint64_t takeovers;         // a key found held by a dead member, taken over
  std::uint64_t redeliveries;      // a key's last worked-on record delivered again
  std::uint64_t reserved[2];
};
static_assert(sizeof(KeyTableHeader) == 64);

struct KeySlot {
  std::uint64_t owner;  // pid of the member working on the key, 0 when none
  std::uint64_t done;   // the key's records worked on: its last acked index + 1
  std::uint64_t reserved[6];
};
static_assert(sizeof(KeySlot) == 64);

inline std::size_t key_table_bytes(std::uint64_t keys) {
  return sizeof(KeyTableHeader) + keys * sizeof(KeySlot);
}

}  // namespace shmbus::test
