// The two processes of a measurement: which CPUs they get, forking them, and watching them so
// that a child that fails, dies or hangs makes the run fail with a message instead of hanging it.
//
// Both measured sides are children; the parent only supervises, blocked in poll(2) so it never
// takes CPU time from them. This keeps the caller's own CPU affinity untouched and lets the parent
// kill a side left spinning on a dead peer.
//
// The caller must be single-threaded when it forks (the children allocate and throw).
#pragma once

#include <sys/types.h>

#include <cstddef>
#include <functional>
#include <span>
#include <string>

namespace shmbus::bench {

// Where the two sides run. -1: not pinned.
struct CpuPlan {
  int initiator_cpu = -1;
  int responder_cpu = -1;
  bool shared_cpu = true;  // both sides may run on one CPU: spinners must yield (spin.hpp)
};

// The requested CPUs if this process may use both and they differ; else the first two CPUs it may
// use; else (one CPU) no pinning at all.
CpuPlan plan_cpus(int wanted_initiator_cpu, int wanted_responder_cpu);

// A place in shared memory where a child leaves the text of its failure for the parent.
struct ErrorSlot {
  char text[512];
};

struct Child {
  std::string role;  // "initiator", "consumer"... used in messages
  pid_t pid = -1;
  int exit_fd = -1;  // read end of a pipe whose only writer is the child: hangs up when it exits
};

// Forks a child that pins itself to `cpu` (unless -1), sets spin.hpp's yield mode, ignores
// SIGPIPE, dies with its parent, runs `body` and exits 0; if `body` throws, the child copies the
// text into `error` and exits 1. Throws std::system_error if fork fails.
Child spawn_child(std::string role, int cpu, bool spin_yields, ErrorSlot& error,
                  const std::function<void()>& body);

// Kills (SIGKILL) and reaps a child that is still running; for a run abandoned half-way.
void kill_child(Child& child);

// Waits for both children. Returns an empty string when both exit 0. Otherwise kills the one still
// running, reaps both and returns what went wrong: the failed child's ErrorSlot text, its exit
// status or signal, or a timeout after `timeout_s` (or 10 s after the first one finished).
std::string wait_for_children(Child& a, const ErrorSlot& a_error, Child& b,
                              const ErrorSlot& b_error, double timeout_s);

// The same for any number of children (a publisher and several subscriber processes): the first
// failure kills the rest, and once one has exited the others get the same grace as above.
struct WatchedChild {
  Child* child;
  const ErrorSlot* error;
};
std::string wait_for_children(std::span<const WatchedChild> watched, double timeout_s);

}  // namespace shmbus::bench
