// What a busy-polling loop does between two empty polls.
#pragma once

#include <sched.h>

namespace shmbus::bench {

// Set by the runner in each child. False (the normal case): the two sides have a CPU each, so a
// poll loop spins flat out; a pause instruction would only delay noticing the message. True: both
// sides share one CPU, and a spinner must give its time slice to the peer or each message waits
// for the scheduler tick.
inline bool g_spin_yields = false;

inline void spin_relax() {
  if (g_spin_yields) sched_yield();
}

}  // namespace shmbus::bench
