// What the fuzz targets share: owned, aligned copies of an input (shared-memory structs need their
// alignment, and a target may write to its copy as a peer would), a sink that makes every byte a
// target is handed count as read (so AddressSanitizer sees an out-of-bounds view), and the files
// of a channel or a journal made from an input.
//
// The targets run under libFuzzer (fuzz/*_fuzzer.cpp, clang) and under GoogleTest
// (tests/fuzz_regressions/, g++), so everything here is header-only and warning-free under both.
#pragma once

#include <fcntl.h>
#include <fmt/format.h>
#include <unistd.h>

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <filesystem>
#include <memory>
#include <new>
#include <span>
#include <string>
#include <string_view>

namespace shmbus::fuzz {

using Input = std::span<const std::uint8_t>;

// A zero-filled buffer of `size` bytes aligned to a page, like a mapping.
class AlignedBytes {
 public:
  explicit AlignedBytes(std::size_t size)
      : size_(size),
        bytes_(static_cast<std::byte*>(::operator new(std::max<std::size_t>(size, 1),
                                                      std::align_val_t{4096}))) {
    std::memset(bytes_.get(), 0, std::max<std::size_t>(size, 1));
  }
  // The first min(size, input.size()) bytes of `input`, the rest zeros.
  AlignedBytes(std::size_t size, Input input) : AlignedBytes(size) {
    std::memcpy(bytes_.get(), input.data(), std::min(size, input.size()));
  }

  std::byte* data() const noexcept { return bytes_.get(); }
  std::size_t size() const noexcept { return size_; }
  template <typename T>
  T* as() const noexcept {
    return reinterpret_cast<T*>(bytes_.get());
  }

 private:
  struct Free {
    void operator()(std::byte* p) const noexcept { ::operator delete(p, std::align_val_t{4096}); }
  };
  std::size_t size_;
  std::unique_ptr<std::byte, Free> bytes_;
};

// Where consume() leaves what it read: a volatile, so that the compiler cannot drop the reads.
inline volatile std::uint8_t consumed_bytes_sink = 0;

// Reads every byte of a view a target was handed, so that a view reaching past its buffer is an
// AddressSanitizer report here rather than a silent wrong answer.
inline void consume(std::span<const std::byte> bytes) noexcept {
  std::uint8_t folded = 0;
  for (std::byte b : bytes) folded = static_cast<std::uint8_t>(folded ^ std::to_integer<std::uint8_t>(b));
  consumed_bytes_sink = folded;
}
inline void consume(std::string_view text) noexcept {
  consume(std::as_bytes(std::span<const char>(text.data(), text.size())));
}

// An unsigned value read from `input` at `offset` (little endian, zero past the end): how targets
// take their choices from the input itself, so that the fuzzer steers them.
template <typename T>
T read_le(Input input, std::size_t offset) noexcept {
  T value{};
  if (offset < input.size()) {
    std::memcpy(&value, input.data() + offset, std::min(sizeof value, input.size() - offset));
  }
  return value;
}

// Writes `bytes` to `path` (created or truncated, mode 0600). False on any failure: a target that
// cannot set up its files skips the input rather than report a crash that is not one.
inline bool write_file(const std::string& path, std::span<const std::byte> bytes) {
  const int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  if (fd < 0) return false;
  std::size_t done = 0;
  while (done < bytes.size()) {
    const ssize_t n = ::write(fd, bytes.data() + done, bytes.size() - done);
    if (n <= 0) break;
    done += static_cast<std::size_t>(n);
  }
  ::close(fd);
  return done == bytes.size();
}
inline bool write_file(const std::string& path, Input bytes) {
  return write_file(path, std::as_bytes(bytes));
}

// A directory of this process's own under the system's temporary directory, emptied on every call:
// each input starts from nothing that an earlier input left.
inline std::string fresh_directory(std::string_view purpose) {
  namespace fs = std::filesystem;
  const fs::path dir =
      fs::temp_directory_path() / fmt::format("shmbus-fuzz-{}-{}", purpose, ::getpid());
  std::error_code ec;
  fs::remove_all(dir, ec);
  fs::create_directories(dir, ec);
  return dir.string();
}

}  // namespace shmbus::fuzz
