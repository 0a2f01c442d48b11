// One POSIX shared-memory object, created or opened and mapped with Boost.Interprocess
// (shared_memory_object + mapped_region only: no managed segment, no interprocess mutex, nothing
// a crash can leave locked).
#pragma once

#include <cstddef>
#include <string>

#include <boost/interprocess/mapped_region.hpp>

#include "shmbus/shmbus.hpp"

namespace shmbus::detail {

class ShmSegment {
 public:
  ShmSegment() = default;

  // Creates `name`, which must not exist, with `mode` (umask does not apply), allocates every page
  // (a full /dev/shm fails here with no_space, not later with SIGBUS), maps it read-write.
  static Result<ShmSegment> create(const std::string& name, std::size_t size, unsigned mode);

  // Opens and maps an existing object; not_found if it does not exist. `populate` maps every page
  // now (no page faults on the hot path later); tools that glance at a header skip it.
  static Result<ShmSegment> open(const std::string& name, bool writable, bool populate = true);

  // Gives the object `from` the name `to` as well, atomically; false if `to` exists.
  static Result<bool> link(const std::string& from, const std::string& to);
  static void remove(const std::string& name) noexcept;
  static bool exists(const std::string& name) noexcept;

  void* base() const noexcept { return region_.get_address(); }
  std::size_t size() const noexcept { return region_.get_size(); }
  const std::string& name() const noexcept { return name_; }

 private:
  boost::interprocess::mapped_region region_;
  std::string name_;
};

// Path of a shared-memory object's name in the file system (Linux: /dev/shm).
std::string shm_path(const std::string& name);

}  // namespace shmbus::detail
