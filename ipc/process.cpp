#include "ipc/process.hpp"

#include <fcntl.h>
#include <fmt/format.h>
#include <linux/membarrier.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>

namespace shmbus::detail {

std::uint64_t process_start_time(std::uint32_t pid) noexcept {
  // A stack buffer, not a std::string: every liveness check (the publisher's and the producer
  // gate's included) comes here, and this function neither allocates nor throws.
  char path[64];
  *fmt::format_to_n(path, sizeof path - 1, "/proc/{}/stat", pid).out = '\0';
  const int fd = ::open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0) return 0;
  char buf[1024];
  const ssize_t n = ::read(fd, buf, sizeof buf - 1);
  ::close(fd);
  if (n <= 0) return 0;
  buf[n] = '\0';
  // The command name (field 2) may hold spaces and parentheses: fields resume after the last ')'.
  const char* p = std::strrchr(buf, ')');
  if (p == nullptr || p[1] == '\0' || p[2] == '\0') return 0;
  // Field 3 is the state: a zombie (or a dying task) will never touch shared memory again.
  if (p[2] == 'Z' || p[2] == 'X' || p[2] == 'x') return 0;
  // After ')' come fields 3..; field 22 is the 20th of them.
  int field = 2;
  for (++p; *p != '\0'; ++p) {
    if (*p == ' ') {
      ++field;
      if (field == 22) return std::strtoull(p + 1, nullptr, 10);
    }
  }
  return 0;
}

ProcessId self_process() noexcept {
  const auto pid = static_cast<std::uint32_t>(::getpid());
  return ProcessId{pid, process_start_time(pid)};
}

bool process_alive(const ProcessId& process) noexcept {
  if (process.pid == 0 || process.pid > kMaxPid || process.start_time == 0) return false;
  return process_start_time(process.pid) == process.start_time;
}

bool pid_exists(std::uint32_t pid) noexcept {
  if (pid == 0 || pid > kMaxPid) return false;
  return process_start_time(pid) != 0;
}

void barrier_all_cpus() noexcept {
  if (::syscall(SYS_membarrier, MEMBARRIER_CMD_GLOBAL, 0, 0) == 0) return;
  timespec ts{0, 2'000'000};
  ::nanosleep(&ts, nullptr);
}

std::int64_t realtime_ns() noexcept {
  timespec ts;
  ::clock_gettime(CLOCK_REALTIME, &ts);
  return std::int64_t{ts.tv_sec} * 1'000'000'000 + ts.tv_nsec;
}

std::int64_t monotonic_ns() noexcept {
  timespec ts;
  ::clock_gettime(CLOCK_MONOTONIC, &ts);
  return std::int64_t{ts.tv_sec} * 1'000'000'000 + ts.tv_nsec;
}

}  // namespace shmbus::detail
