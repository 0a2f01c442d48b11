// Memory shared between the parent and the children it forks: an anonymous MAP_SHARED mapping
// created before fork, so both processes see the same pages at the same address with no name to
// clean up.
#pragma once

#include <cstddef>

namespace shmbus::bench {

class SharedMapping {
 public:
  SharedMapping() = default;
  // Maps `bytes` (rounded up to pages), zero-filled and populated so no page fault lands inside a
  // timed loop. Throws std::system_error.
  explicit SharedMapping(std::size_t bytes);
  ~SharedMapping();
  SharedMapping(SharedMapping&& other) noexcept;
  SharedMapping& operator=(SharedMapping&& other) noexcept;
  SharedMapping(const SharedMapping&) = delete;
  SharedMapping& operator=(const SharedMapping&) = delete;

  void* data() const { return data_; }
  std::size_t size() const { return size_; }
  // The start of the mapping (page aligned) viewed as T; T must fit in size().
  template <class T>
  T* as() const {
    return static_cast<T*>(data_);
  }

 private:
  void* data_ = nullptr;
  std::size_t size_ = 0;
};

}  // namespace shmbus::bench
