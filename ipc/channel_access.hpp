// Who may open which of a channel's shared-memory objects (docs/security.md): the modes derived
// from the ring's, the gating group, and the use lock, an object only trusted processes can open.
//
// The kernel enforces all of it: a process that may only read the ring gets the control segment
// read-only (it cannot forge, flip or gate a slot there), registers in the readers' registry
// (which nobody gates on) and cannot open the use lock at all (so it cannot hold a lock that
// creation, gc or other openers wait for).
#pragma once

#include <cstdint>
#include <optional>
#include <string>

#include "shmbus/shmbus.hpp"

namespace shmbus::detail {

// The modes of a channel's objects for a ring mode (ChannelOptions::mode) and whether a gating
// group was given (which then owns the control segment and the use lock as their group).
// Trusted classes (owner; the group if the ring mode lets it write or a gating group is given;
// others if the ring mode lets them write) get read-write on the control segment and the lock;
// classes that may only read the ring get the control segment read-only, the registry read-write
// and no access to the lock.
struct ChannelModes {
  unsigned ring = 0;
  unsigned control = 0;
  unsigned readers = 0;  // the readers' registry
  unsigned lock = 0;
};
ChannelModes channel_modes(unsigned ring_mode, bool gating_group) noexcept;

// Gives shared-memory object `name` to group `gid` with `mode` (the mode again: chown may clear
// bits). permission_denied when the caller may not (it must belong to the group, or be root).
Result<void> give_to_group(const std::string& name, std::uint32_t gid, unsigned mode);

// The use lock of one channel incarnation: an empty object on which every trusted user of the
// channel holds a shared flock(2) while it maps the channel; the kernel drops it when the process
// dies. `shmbus gc` removes a channel only while holding it exclusively (try_lock_exclusive).
// Opened read-write only, so a process without write access to it (the mode gives none to
// untrusted classes) can hold neither kind.
class UseLock {
 public:
  UseLock() = default;
  UseLock(UseLock&& other) noexcept;
  UseLock& operator=(UseLock&& other) noexcept;
  UseLock(const UseLock&) = delete;
  UseLock& operator=(const UseLock&) = delete;
  ~UseLock();

  // Creates `name`, which must not exist, with `mode` (and `group`), and holds it shared.
  static Result<UseLock> create(const std::string& name, unsigned mode,
                                std::optional<std::uint32_t> group);
  // Holds an existing lock shared: not_found if it does not exist or was unlinked before we held
  // it (a gc removed the channel meanwhile); permission_denied for an untrusted process. Waits up
  // to about a second for a gc holding it exclusively (milliseconds, normally).
  static Result<UseLock> hold(const std::string& name);

 private:
  explicit UseLock(int fd) noexcept : fd_(fd) {}
  int fd_ = -1;
};

// Takes lock `name` exclusively: a descriptor holding it (close it to release) when no process
// holds it, -1 when one does, an error otherwise (permission_denied for an untrusted process).
Result<int> try_lock_exclusive(const std::string& name);

}  // namespace shmbus::detail
