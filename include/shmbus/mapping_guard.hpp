// Surviving a peer that truncates a channel's shared-memory object while this process has it
// mapped. Touching a mapped page beyond the end of its object raises SIGBUS, whose default action
// ends the process; any process allowed to write the object can cause it (ftruncate). The library
// does not install a signal handler on its own: a process that wants to survive this makes a
// MappingGuard (the `shmbus` tools do, for their reads of channels).
//
// While a guard exists, a SIGBUS raised by touching a page of a shmbus object (/dev/shm/shmbus.*)
// that lies beyond the object's end is handled: the pages from there to the end of that mapping
// are replaced by private zero-filled pages, the object is recorded as truncated, and the access
// is retried and reads zeros. Readers treat zeros like any other garbage in shared memory (an
// empty ring, records that fail validation): nothing is delivered from them. No stack is unwound
// and no code is skipped, so it is safe wherever the fault happens. Every other SIGBUS goes to the
// handler that was installed before (or, with none, ends the process as before).
//
// The hot paths are untouched: the cost is one sigaction when the first guard is made and when
// the last one goes, and a read of /proc/self/maps only when the signal arrives.
#pragma once

#include <cstdint>
#include <optional>
#include <string>

namespace shmbus::detail {

// A shmbus object found truncated while mapped.
struct Truncation {
  std::string object;  // its path, /dev/shm/shmbus.<channel> or its control segment
};

class MappingGuard {
 public:
  MappingGuard();   // the first guard of the process installs the SIGBUS handler
  ~MappingGuard();  // the last one restores the handler that was there before
  MappingGuard(const MappingGuard&) = delete;
  MappingGuard& operator=(const MappingGuard&) = delete;

  // Whether a truncation has been caught and not taken yet: one atomic load, for loops.
  static bool caught() noexcept;
  // The first truncation caught since the last take (later ones until then are not kept apart),
  // cleared by taking it.
  static std::optional<Truncation> take();
};

// "channel 'NAME': its shared-memory object PATH was truncated to N bytes by another process"
// (N as the object is now; "was removed" if it no longer exists).
std::string describe(const Truncation& truncation);

}  // namespace shmbus::detail
