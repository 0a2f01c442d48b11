// Publish timestamps (CLOCK_REALTIME nanoseconds) without a clock_gettime per message.
//
// clock_gettime through the vDSO costs about 35 ns on this kind of VM, a third of a one-way
// message. When the kernel itself trusts the TSC (clocksource "tsc": constant and invariant), we
// extrapolate CLOCK_REALTIME from the TSC and re-anchor on the real clock every millisecond of
// TSC time, refining the rate each time; the error stays below a microsecond. Elsewhere every
// call reads the real clock. Either way a producer's timestamps never go backwards: after a
// backward step of the wall clock they hold at their highest value until the clock catches up,
// so replay by time finds records in sequence order.
#pragma once

#include <x86intrin.h>

#include <cstdint>
#include <cstdlib>

namespace shmbus::detail {

class PublishClock {
 public:
  PublishClock() noexcept;

  std::int64_t now_ns() noexcept {
    if (!use_tsc_) [[unlikely]] {
      const std::int64_t ns = read_real();
      if (ns > last_ns_) last_ns_ = ns;
      return last_ns_;
    }
    const std::uint64_t tsc = __rdtsc();
    if (tsc - anchor_tsc_ >= reanchor_ticks_) [[unlikely]] return reanchor(tsc);
    const auto delta = static_cast<std::int64_t>(
        (static_cast<unsigned __int128>(tsc - anchor_tsc_) * ns_per_tick_q32_) >> 32);
    const std::int64_t ns = anchor_ns_ + delta;
    if (ns > last_ns_) last_ns_ = ns;
    return last_ns_;
  }

 private:
  std::int64_t read_real() noexcept;
  std::int64_t reanchor(std::uint64_t tsc) noexcept;

  bool use_tsc_ = false;
  std::uint64_t first_tsc_ = 0;
  std::int64_t first_ns_ = 0;
  std::uint64_t anchor_tsc_ = 0;
  std::int64_t anchor_ns_ = 0;
  std::uint64_t ns_per_tick_q32_ = 0;  // nanoseconds per tick, 32.32 fixed point
  std::uint64_t reanchor_ticks_ = 0;
  std::int64_t last_ns_ = 0;
};

}  // namespace shmbus::detail
