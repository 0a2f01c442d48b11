// See tests/support/syscall_trace.hpp.
#include "tests/support/syscall_trace.hpp"

#include <signal.h>
#include <sys/ptrace.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#if defined(__x86_64__)
#include <sys/user.h>
#endif

namespace shmbus::test {

#if defined(__x86_64__)

namespace {

constexpr int kNoPtrace = 77;

}  // namespace

void marker() { ::syscall(SYS_getppid); }

std::string describe(const std::vector<long>& calls) {
  std::string s;
  for (long nr : calls) s += (s.empty() ? "" : ", ") + std::to_string(nr);
  return "system calls " + (s.empty() ? "none" : s);
}

Trace trace_syscalls(const std::function<int()>& body) {
  Trace trace;
  const pid_t child = ::fork();
  if (child < 0) {
    trace.skip = "fork failed";
    return trace;
  }
  if (child == 0) {
    ::alarm(60);  // a hung child dies by SIGALRM instead of hanging the test
    if (::ptrace(PTRACE_TRACEME, 0, nullptr, nullptr) != 0) ::_exit(kNoPtrace);
    ::raise(SIGSTOP);
    ::_exit(body());
  }
  int status = 0;
  if (::waitpid(child, &status, 0) != child || !WIFSTOPPED(status)) {
    if (WIFEXITED(status) && WEXITSTATUS(status) == kNoPtrace) {
      trace.skip = "ptrace(PTRACE_TRACEME) is not permitted here";
    } else {
      trace.skip = "the child did not stop for tracing";
    }
    return trace;
  }
  ::ptrace(PTRACE_SETOPTIONS, child, nullptr,
           reinterpret_cast<void*>(PTRACE_O_TRACESYSGOOD | PTRACE_O_EXITKILL));
  bool in_call = false;
  long signal_to_deliver = 0;
  for (;;) {
    if (::ptrace(PTRACE_SYSCALL, child, nullptr, reinterpret_cast<void*>(signal_to_deliver)) != 0) {
      trace.skip = std::string("PTRACE_SYSCALL failed: ") + std::strerror(errno);
      ::kill(child, SIGKILL);
      ::waitpid(child, &status, 0);
      return trace;
    }
    signal_to_deliver = 0;
    if (::waitpid(child, &status, 0) != child) break;
    if (WIFEXITED(status)) {
      trace.exit_code = WEXITSTATUS(status);
      break;
    }
    if (WIFSIGNALED(status)) {
      trace.exit_code = 128 + WTERMSIG(status);
      break;
    }
    if (!WIFSTOPPED(status)) continue;
    if (WSTOPSIG(status) != (SIGTRAP | 0x80)) {
      signal_to_deliver = WSTOPSIG(status);  // not ours: pass it on
      continue;
    }
    user_regs_struct regs{};
    ::ptrace(PTRACE_GETREGS, child, nullptr, &regs);
    // At a system call's entry the kernel has set rax to -ENOSYS; at its exit rax is the result.
    const bool entry = !in_call && regs.rax == static_cast<unsigned long long>(-ENOSYS);
    in_call = entry;
    if (!entry) continue;
    const auto nr = static_cast<long>(regs.orig_rax);
    if (nr == SYS_getppid) {
      ++trace.markers;
    } else if (trace.markers == 1) {
      trace.calls.push_back(nr);
    }
  }
  return trace;
}

Trace trace_clock() {
  return trace_syscalls([] {
    timespec ts{};
    marker();
    for (int i = 0; i < 1000; ++i) {
      ::clock_gettime(CLOCK_REALTIME, &ts);
      ::clock_gettime(CLOCK_MONOTONIC, &ts);
    }
    marker();
    return 0;
  });
}


#else

void marker() { ::syscall(SYS_getppid); }

std::string describe(const std::vector<long>& calls) {
  return "system calls: " + std::to_string(calls.size());
}

Trace trace_syscalls(const std::function<int()>&) {
  Trace trace;
  trace.skip = "the syscall trace reads x86-64 registers";
  return trace;
}

Trace trace_clock() { return trace_syscalls({}); }

#endif

}  // namespace shmbus::test
