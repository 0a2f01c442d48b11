// Which process is this, and is that one still alive? A pid alone is not an identity (pids are
// reused), so a process is its pid plus its start time (/proc/PID/stat field 22).
#pragma once

#include <cstdint>

namespace shmbus::detail {

struct ProcessId {
  std::uint32_t pid = 0;
  std::uint64_t start_time = 0;  // clock ticks after boot; 0 if unknown
};

ProcessId self_process() noexcept;

// The start time of `pid`, or 0 if there is no such process (or /proc cannot tell).
std::uint64_t process_start_time(std::uint32_t pid) noexcept;

// Alive: a process with this pid exists and started at this time (when the time is known).
bool process_alive(const ProcessId& process) noexcept;

// CLOCK_REALTIME and CLOCK_MONOTONIC in nanoseconds (vDSO reads, no system call on this kernel's
// tsc clocksource).
std::int64_t realtime_ns() noexcept;
std::int64_t monotonic_ns() noexcept;

}  // namespace shmbus::detail
