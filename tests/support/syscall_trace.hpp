// Counting the system calls of a piece of code: it runs in a forked child traced with
// PTRACE_SYSCALL, between two marker() calls, and every system call the child enters in between is
// recorded (the hot-path tests: tests/core/hot_path_test.cpp, tests/capi/capi_hot_path_test.cpp).
// The trace reads x86-64 registers; elsewhere every trace is skipped, saying so.
#pragma once

#include <functional>
#include <string>
#include <vector>

namespace shmbus::test {

// The child brackets the code under test with two of these; nothing else in it calls getppid.
void marker();

struct Trace {
  std::string skip;    // why the trace could not be taken, if it could not
  int exit_code = -1;  // the child's; 128 + signal if it was killed
  int markers = 0;
  std::vector<long> calls;  // system call numbers between the markers
};

// "system calls 1, 2, 3" or "system calls none".
std::string describe(const std::vector<long>& calls);

// Runs body() in a child traced with PTRACE_SYSCALL and records every system call it enters
// between its two marker() calls. body returns the child's exit code (0: its own checks passed).
Trace trace_syscalls(const std::function<int()>& body);

// The clock the publish path reads (CLOCK_REALTIME, and CLOCK_MONOTONIC on subscribers' slow
// paths), alone: no system call, unless this machine has no vDSO clock.
Trace trace_clock();

}  // namespace shmbus::test
