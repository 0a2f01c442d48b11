// A consumer group's shared-memory object: its name, its creation (race-free: built under a
// private name and linked into place, so a joiner sees no group or a finished one) and the checks
// every opener runs before it trusts a byte of it.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "ipc/group_layout.hpp"
#include "ipc/shm_segment.hpp"
#include "shmbus/group_consumer.hpp"

namespace shmbus::detail {

// "shmbus.<channel>.ctl.<incarnation>.group.<group>": under the channel incarnation's control
// segment's name, so a re-created channel never shares a group with its predecessor, and `shmbus
// rm`/`gc` find a channel's groups by that prefix.
std::string group_object_name(std::string_view channel, std::uint64_t incarnation,
                              std::string_view group);
std::string group_object_prefix(std::string_view channel, std::uint64_t incarnation);
Result<void> check_group_name(std::string_view group);

// The settings a group was created with, as its header declares them (checked).
struct GroupSettings {
  Policy policy = Policy::block;
  bool keyed = false;
  std::int64_t ack_timeout_ns = 0;
  std::uint32_t max_attempts = 0;
  std::uint32_t window = 0;
  std::string dead_letter_channel;
  std::string group;
};

// Checks GroupOptions for creating a group: every bound, with a message naming the bad value.
Result<void> check_group_options(const GroupOptions& options);

// Checks a mapped group object: magic, version, fingerprint, readiness, incarnation, the declared
// window and sizes against the mapping, every setting within bounds. On success the settings.
Result<GroupSettings> validate_group(const ShmSegment& segment, std::uint64_t incarnation,
                                     const std::string& where);

// Opens the group object, creating it with `options` and the cursors at `start` if it does not
// exist. `mode` and `gid` are those of the channel's control segment (the same processes are
// trusted with both).
struct GroupStart {
  std::uint64_t position = 0;
  std::uint64_t sequence = 1;
};
Result<ShmSegment> open_or_create_group(const std::string& name, std::uint64_t incarnation,
                                        std::string_view group, const GroupOptions& options,
                                        const std::string& dead_letter_channel, GroupStart start,
                                        unsigned mode, std::uint32_t gid);

// The names of every group object of one channel incarnation (listed from /dev/shm).
std::vector<std::string> list_group_names(std::string_view channel, std::uint64_t incarnation);

// Typed views of a validated group object.
inline GroupHeader& group_header(void* base) noexcept { return *static_cast<GroupHeader*>(base); }
inline GroupMember* group_members(void* base) noexcept {
  return reinterpret_cast<GroupMember*>(static_cast<std::byte*>(base) + group_members_offset());
}
inline GroupEntry* group_entries(void* base) noexcept {
  return reinterpret_cast<GroupEntry*>(static_cast<std::byte*>(base) + group_entries_offset());
}

}  // namespace shmbus::detail
