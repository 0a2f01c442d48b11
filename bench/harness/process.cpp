#include "bench/harness/process.hpp"

#include <fcntl.h>
#include <fmt/format.h>
#include <poll.h>
#include <sched.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <csignal>
#include <cstring>
#include <exception>
#include <iterator>
#include <system_error>
#include <vector>

#include "bench/harness/fd_io.hpp"
#include "bench/harness/spin.hpp"

namespace shmbus::bench {

namespace {

// Into the slot the parent reads, cut to fit and always terminated; allocates nothing.
void put_error_text(ErrorSlot& slot, const char* text) noexcept {
  *fmt::format_to_n(slot.text, sizeof(slot.text) - 1, "{}", text).out = '\0';
}

// Once one side has finished, the other has at most its last message to handle.
constexpr double kGraceAfterFirstExit_s = 10.0;

std::vector<int> allowed_cpus() {
  cpu_set_t set;
  CPU_ZERO(&set);
  std::vector<int> cpus;
  if (sched_getaffinity(0, sizeof(set), &set) != 0) return cpus;
  for (int cpu = 0; cpu < CPU_SETSIZE; ++cpu) {
    if (CPU_ISSET(cpu, &set)) cpus.push_back(cpu);
  }
  return cpus;
}

void pin_self(int cpu) {
  cpu_set_t set;
  CPU_ZERO(&set);
  CPU_SET(cpu, &set);
  if (sched_setaffinity(0, sizeof(set), &set) != 0) {
    throw std::system_error(errno, std::generic_category(),
                            fmt::format("sched_setaffinity to CPU {}", cpu));
  }
}

std::string describe_status(int status) {
  if (WIFEXITED(status)) return fmt::format("exited with status {}", WEXITSTATUS(status));
  if (WIFSIGNALED(status)) return fmt::format("killed by signal {}", strsignal(WTERMSIG(status)));
  return "stopped";
}

}  // namespace

void kill_child(Child& child) {
  if (child.pid > 0) {
    kill(child.pid, SIGKILL);
    int status;
    while (waitpid(child.pid, &status, 0) < 0 && errno == EINTR) {
    }
    child.pid = -1;
  }
  close_fd(child.exit_fd);
}

CpuPlan plan_cpus(int wanted_initiator_cpu, int wanted_responder_cpu) {
  const std::vector<int> cpus = allowed_cpus();
  CpuPlan plan;
  if (cpus.size() < 2) return plan;
  auto allowed = [&](int cpu) { return std::find(cpus.begin(), cpus.end(), cpu) != cpus.end(); };
  plan.initiator_cpu = allowed(wanted_initiator_cpu) ? wanted_initiator_cpu : cpus[0];
  plan.responder_cpu = wanted_responder_cpu;
  if (!allowed(plan.responder_cpu) || plan.responder_cpu == plan.initiator_cpu) {
    plan.responder_cpu = cpus[0] != plan.initiator_cpu ? cpus[0] : cpus[1];
  }
  plan.shared_cpu = false;
  return plan;
}

Child spawn_child(std::string role, int cpu, bool spin_yields, ErrorSlot& error,
                  const std::function<void()>& body) {
  error.text[0] = '\0';
  int exit_pipe[2];
  if (pipe2(exit_pipe, O_CLOEXEC) != 0) {
    throw std::system_error(errno, std::generic_category(), fmt::format("pipe2 for {}", role));
  }
  const pid_t parent = getpid();
  const pid_t pid = fork();
  if (pid < 0) {
    int e = errno;
    close(exit_pipe[0]);
    close(exit_pipe[1]);
    throw std::system_error(e, std::generic_category(), fmt::format("fork of {}", role));
  }
  if (pid == 0) {
    // Child. It keeps exit_pipe[1] open and never writes it: the kernel closes it at exit, which
    // is how the parent's poll() learns of the exit. _exit, never exit: the parent's atexit
    // handlers, stdio buffers and destructors belong to the parent.
    close(exit_pipe[0]);
    int code = 1;
    try {
      prctl(PR_SET_PDEATHSIG, SIGKILL);  // a killed parent must not leave a spinner behind
      if (getppid() != parent) _exit(1);  // the parent died before prctl took effect
      signal(SIGPIPE, SIG_IGN);           // a dead peer shows up as EPIPE with a message
      if (cpu >= 0) pin_self(cpu);
      g_spin_yields = spin_yields;
      body();
      code = 0;
    } catch (const std::exception& e) {
      put_error_text(error, e.what());
    } catch (...) {
      put_error_text(error, "unknown exception");
    }
    _exit(code);
  }
  close(exit_pipe[1]);
  return Child{std::move(role), pid, exit_pipe[0]};
}

std::string wait_for_children(std::span<const WatchedChild> watched, double timeout_s) {
  using Clock = std::chrono::steady_clock;
  auto deadline = Clock::now() + std::chrono::duration_cast<Clock::duration>(
                                     std::chrono::duration<double>(std::min(timeout_s, 1e6)));
  std::string failure;
  std::size_t running = watched.size();
  std::vector<pollfd> fds;
  std::vector<std::size_t> index;  // fds[k] watches watched[index[k]]

  while (running > 0 && failure.empty()) {
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now());
    if (left.count() <= 0) {
      failure = "timed out; still running:";
      for (const WatchedChild& w : watched) {
        if (w.child->pid > 0) fmt::format_to(std::back_inserter(failure), " {}", w.child->role);
      }
      break;
    }
    fds.clear();
    index.clear();
    for (std::size_t i = 0; i < watched.size(); ++i) {
      if (watched[i].child->pid > 0) {
        fds.push_back(pollfd{watched[i].child->exit_fd, 0, 0});  // POLLHUP is reported regardless
        index.push_back(i);
      }
    }
    int r = poll(fds.data(), fds.size(), static_cast<int>(std::min<long long>(left.count(), 60'000)));
    if (r < 0 && errno != EINTR) {
      failure = fmt::format("poll on the benchmark processes: {}", std::strerror(errno));
      break;
    }
    for (std::size_t k = 0; r > 0 && k < fds.size(); ++k) {
      if (fds[k].revents == 0) continue;
      Child& c = *watched[index[k]].child;
      int status = 0;
      while (waitpid(c.pid, &status, 0) < 0 && errno == EINTR) {
      }
      c.pid = -1;
      close_fd(c.exit_fd);
      --running;
      if (!(WIFEXITED(status) && WEXITSTATUS(status) == 0)) {
        const char* text = watched[index[k]].error->text;
        failure = fmt::format("{}: {}", c.role,
                              text[0] != '\0' ? std::string(text) : describe_status(status));
        break;
      }
      auto grace = Clock::now() + std::chrono::duration_cast<Clock::duration>(
                                      std::chrono::duration<double>(kGraceAfterFirstExit_s));
      deadline = std::min(deadline, grace);
    }
  }
  for (const WatchedChild& w : watched) kill_child(*w.child);
  // The others often fail as a consequence (end of file, EPIPE); their text, if any, helps.
  for (std::size_t i = 0; i < watched.size() && !failure.empty(); ++i) {
    const char* text = watched[i].error->text;
    if (text[0] != '\0' && failure.find(text) == std::string::npos) {
      fmt::format_to(std::back_inserter(failure), " ({}: {})", watched[i].child->role, text);
    }
  }
  return failure;
}

std::string wait_for_children(Child& a, const ErrorSlot& a_error, Child& b,
                              const ErrorSlot& b_error, double timeout_s) {
  const WatchedChild both[] = {{&a, &a_error}, {&b, &b_error}};
  return wait_for_children(both, timeout_s);
}

}  // namespace shmbus::bench
