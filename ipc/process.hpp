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

// Alive: a process with this pid exists and started at this time. An identity read from shared
// memory is a peer's claim, so it must name one process exactly: a pid outside 1..kMaxPid or a
// start time of 0 (unknown) matches nothing, and so is dead. Without that, a slot naming pid 1
// with start time 0 would match init, alive forever.
bool process_alive(const ProcessId& process) noexcept;

// Some process has this pid now, whenever it started. Weaker than process_alive: only for an
// owner that has not yet written its start time (a slot in a transient state for the
// microseconds between its claim and its identity, a creator's temporary object named by pid),
// where waiting for the full identity would make a live claimer look dead.
bool pid_exists(std::uint32_t pid) noexcept;

// Linux's largest pid (pids stay below PID_MAX_LIMIT, 2^22): a pid in shared memory above it
// is garbage.
inline constexpr std::uint32_t kMaxPid = (1U << 22) - 1;

// Makes every CPU execute a full memory barrier before returning (membarrier(2) GLOBAL, which
// waits for every CPU to pass through the kernel); where the kernel lacks it, sleeps 2 ms, far
// longer than any store buffer takes to drain. Slow (milliseconds): registration only.
void barrier_all_cpus() noexcept;

// One word for a process: pid in the low 22 bits (Linux's pid_max limit), start time above.
// One atomic access reads or changes both.
constexpr std::uint64_t pack_process(const ProcessId& p) noexcept {
  return (p.start_time << 22) | (p.pid & 0x3fffff);
}
constexpr ProcessId unpack_process(std::uint64_t word) noexcept {
  return ProcessId{static_cast<std::uint32_t>(word & 0x3fffff), word >> 22};
}

// CLOCK_REALTIME and CLOCK_MONOTONIC in nanoseconds (vDSO reads, no system call on this kernel's
// tsc clocksource).
std::int64_t realtime_ns() noexcept;
std::int64_t monotonic_ns() noexcept;

}  // namespace shmbus::detail
