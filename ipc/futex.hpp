// Sleeping on a word in shared memory until a peer changes it (process-shared futex).
#pragma once

#include <atomic>
#include <cstdint>

namespace shmbus::detail {

// Sleeps while `word` still holds `expected`, at most timeout_ns. Spurious returns are allowed.
void futex_wait(std::atomic<std::uint32_t>& word, std::uint32_t expected,
                std::int64_t timeout_ns) noexcept;
void futex_wake_all(std::atomic<std::uint32_t>& word) noexcept;

}  // namespace shmbus::detail
