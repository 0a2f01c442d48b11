// The keyed work of the group-member peer role (tests/peer/group_member.hpp, --key-table): for
// each record of the keyed proof (tests/support/keyed_records.hpp) it
//  1. checks the payload against the record's sequence and key;
//  2. marks the key busy in the shared key table (CAS of the slot's owner from 0 to its pid); a
//     live other owner is a busy violation, a dead one (killed mid-record) is taken over;
//  3. checks the key's order: the record's per-key index must be the key's `done` (the next one)
//     or, for a redelivery, done - 1 (the last one, whose holder died between storing `done` and
//     acking); anything else is an order violation;
//  4. works for --work-ns;
//  5. stores done = index + 1 and clears its mark.
// The caller acks after that. Violations are counted in the table's header and the first few
// are said on stdout as "VIOLATION ...".
#pragma once

#include <cstdint>
#include <string>

#include "shmbus/group_consumer.hpp"
#include "tests/support/keyed_records.hpp"

namespace shmbus::test::peer {

class KeyedWork {
 public:
  KeyedWork() = default;
  KeyedWork(const KeyedWork&) = delete;
  KeyedWork& operator=(const KeyedWork&) = delete;
  ~KeyedWork();

  // Maps the table at `path`, which must hold `keys` slots. False (with `error`) if it cannot.
  bool open(const std::string& path, std::uint32_t keys, std::uint32_t producer,
            const SizeRule& sizes, std::string& error);

  // Steps 1 to 5 for `m`. False if its payload or key was not what its sequence carries (then
  // nothing else was done).
  bool process(const GroupMessage& m, std::uint64_t work_ns);

  std::uint64_t violations() const noexcept { return violations_; }
  std::uint64_t takeovers() const noexcept { return takeovers_; }

 private:
  void violation(std::uint64_t& counter, const std::string& what);

  void* map_ = nullptr;
  std::size_t bytes_ = 0;
  KeyTableHeader* header_ = nullptr;
  KeySlot* slots_ = nullptr;
  std::uint32_t keys_ = 0;
  std::uint32_t producer_ = 0;
  SizeRule sizes_;
  std::uint64_t pid_ = 0;
  std::uint64_t violations_ = 0;
  std::uint64_t takeovers_ = 0;
};

}  // namespace shmbus::test::peer
