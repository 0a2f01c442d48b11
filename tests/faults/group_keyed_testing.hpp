// What the keyed consumer-group proof (tests/faults/group_keyed_faults_test.cpp) needs besides
// group_faults_testing.hpp: the shared key table file (tests/support/keyed_records.hpp), and
// starting the keyed producer and keyed members (tests/peer/keyed_producer.hpp, the group-member
// role's --key-table).
#pragma once

#include <fcntl.h>
#include <unistd.h>

#include <cstring>
#include <stdexcept>

#include "tests/faults/group_faults_testing.hpp"
#include "tests/support/keyed_records.hpp"

namespace shmbus::test::faults {

// Creates the key table at `path`: zeroed slots under a header naming `keys`.
inline void create_key_table(const std::string& path, std::uint32_t keys) {
  std::vector<std::byte> bytes(key_table_bytes(keys));
  KeyTableHeader h{};
  h.magic = kKeyTableMagic;
  h.keys = keys;
  std::memcpy(bytes.data(), &h, sizeof h);
  const int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  if (fd < 0 || ::write(fd, bytes.data(), bytes.size()) != static_cast<ssize_t>(bytes.size())) {
    if (fd >= 0) ::close(fd);
    throw std::runtime_error("cannot write the key table " + path);
  }
  ::close(fd);
}

// The table as the members left it (read once they have all ended).
struct KeyTable {
  KeyTableHeader header{};
  std::vector<KeySlot> slots;
};

inline KeyTable read_key_table(const std::string& path, std::uint32_t keys) {
  KeyTable t;
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  std::vector<std::byte> bytes(key_table_bytes(keys));
  const bool whole =
      fd >= 0 && ::pread(fd, bytes.data(), bytes.size(), 0) == static_cast<ssize_t>(bytes.size());
  if (fd >= 0) ::close(fd);
  if (!whole) throw std::runtime_error("cannot read the key table " + path);
  std::memcpy(&t.header, bytes.data(), sizeof t.header);
  t.slots.resize(keys);
  std::memcpy(t.slots.data(), bytes.data() + sizeof t.header, keys * sizeof(KeySlot));
  return t;
}

// The payload checksum of keyed record `sequence`.
inline std::uint64_t keyed_checksum(std::uint64_t sequence, std::uint32_t keys) {
  return payload_checksum(keyed_payload(kGroupProducer, sequence - 1, keys, kGroupRule));
}

struct KeyedMember {
  bool keyed = true;  // GroupOptions::keyed: off only to see the proof fail
  std::string table;
  std::uint32_t keys = 64;
  MemberSettings settings;
};

inline std::vector<std::string> keyed_member_args(const std::string& channel,
                                                  const std::string& log, const KeyedMember& k) {
  std::vector<std::string> a = member_args(channel, log, k.settings) +
                               std::vector<std::string>{"--key-table", k.table, "--keys",
                                                        str(k.keys)};
  if (k.keyed) a.emplace_back("--keyed");
  return a;
}

// The keyed producer peer: `count` records over `keys` keys.
inline Child start_keyed_producer(const std::string& channel, std::uint64_t count,
                                  std::uint32_t keys) {
  return start_peer(std::vector<std::string>{"produce-keyed", "--channel", channel,
                                             "--producer-id", str(kGroupProducer), "--count",
                                             str(count), "--keys", str(keys), "--timeout-ms",
                                             "60000"} +
                    rule_args(kGroupRule));
}

}  // namespace shmbus::test::faults
