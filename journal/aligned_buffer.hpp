// Page-aligned heap memory for O_DIRECT writes and registered io_uring buffers (O_DIRECT needs the
// memory, the file offset and the length aligned to the logical block; 4096 covers every device).
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <memory>

namespace shmbus::journal {

inline constexpr std::size_t kPageSize = 4096;

constexpr std::uint64_t align_down(std::uint64_t v) noexcept { return v & ~std::uint64_t{kPageSize - 1}; }
constexpr std::uint64_t align_up(std::uint64_t v) noexcept {
  return (v + kPageSize - 1) & ~std::uint64_t{kPageSize - 1};
}

class AlignedBuffer {
 public:
  AlignedBuffer() = default;
  // Zeroed memory of `bytes` rounded up to whole pages; empty (data() == nullptr) if out of memory.
  static AlignedBuffer allocate(std::size_t bytes) noexcept {
    AlignedBuffer b;
    const std::size_t n = align_up(bytes == 0 ? 1 : bytes);
    void* p = std::aligned_alloc(kPageSize, n);
    if (p == nullptr) return b;
    std::memset(p, 0, n);
    b.data_.reset(static_cast<std::byte*>(p));
    b.size_ = n;
    return b;
  }
  std::byte* data() const noexcept { return data_.get(); }
  std::size_t size() const noexcept { return size_; }
  explicit operator bool() const noexcept { return data_ != nullptr; }

 private:
  struct Free {
    void operator()(std::byte* p) const noexcept { std::free(p); }
  };
  std::unique_ptr<std::byte, Free> data_;
  std::size_t size_ = 0;
};

}  // namespace shmbus::journal
