// One POSIX shared-memory object, created or opened and mapped with Boost.Interprocess
// (shared_memory_object + mapped_region only: no managed segment, no interprocess mutex, nothing
// a crash can leave locked).
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>

#include <boost/interprocess/mapped_region.hpp>

#include "shmbus/shmbus.hpp"

namespace shmbus::detail {

// How a process maps a channel's ring: as a user of the channel, it holds a shared flock(2) on the
// object for as long as the mapping lives. The kernel drops it when the process dies, so "some
// process uses this channel" is a lock that cannot outlive its holder; `shmbus gc` takes the
// exclusive lock before it removes a channel (remove_channel_if_abandoned). Tools only look.
enum class Use : std::uint8_t { look, use };

class ShmSegment {
 public:
  ShmSegment() = default;
  ShmSegment(ShmSegment&& other) noexcept;
  ShmSegment& operator=(ShmSegment&& other) noexcept;
  ~ShmSegment();

  // Creates `name`, which must not exist, with `mode` (umask does not apply), allocates every page
  // (a full /dev/shm fails here with no_space, not later with SIGBUS), maps it read-write.
  static Result<ShmSegment> create(const std::string& name, std::size_t size, unsigned mode,
                                   Use use = Use::look);

  // Opens and maps an existing object; not_found if it does not exist (or, with Use::use, was
  // removed while it was being opened). `populate` maps every page now (no page faults on the hot
  // path later); tools that glance at a header skip it.
  static Result<ShmSegment> open(const std::string& name, bool writable, bool populate = true,
                                 Use use = Use::look);

  // Gives the object `from` the name `to` as well, atomically; false if `to` exists.
  static Result<bool> link(const std::string& from, const std::string& to);
  static void remove(const std::string& name) noexcept;
  // Unlinks `name`, saying why not when it cannot (permission_denied when this user may not:
  // /dev/shm is sticky, so only the owner or root unlinks; not_found if it is gone).
  static Result<void> unlink(const std::string& name);
  static bool exists(const std::string& name) noexcept;

  void* base() const noexcept { return region_.get_address(); }
  std::size_t size() const noexcept { return region_.get_size(); }
  const std::string& name() const noexcept { return name_; }

 private:
  // Use::use: keeps a descriptor of the object with the shared lock; false if the object has been
  // unlinked meanwhile (a gc removed it between our open and our lock).
  Result<bool> hold_use_lock(int fd);

  boost::interprocess::mapped_region region_;
  std::string name_;
  int use_fd_ = -1;  // holds the shared use lock (Use::use), closed with the segment
};

// Tries to take the exclusive use lock of an object: a descriptor holding it (close it to release)
// when no process uses the object, -1 when one does (EWOULDBLOCK), an error otherwise.
Result<int> try_lock_unused(const std::string& name);

// The Error for an OS error `err` while doing `what` to object `name`: its code (not_found,
// permission_denied, no_space or system) and a message naming the path.
Error shm_error(const std::string& what, const std::string& name, int err);

// Path of a shared-memory object's name in the file system (Linux: /dev/shm).
std::string shm_path(const std::string& name);

}  // namespace shmbus::detail
