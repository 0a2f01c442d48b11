// Timing spans of tens of nanoseconds (a publisher's claim and commit) without the timer costing
// more than what it times: the TSC, read with the fences that keep the span's instructions
// between the two reads, when the CPU says its TSC is invariant (constant rate, runs in every
// power state); CLOCK_MONOTONIC through the vDSO otherwise (about 20 to 40 ns per read).
// Ticks become nanoseconds by the TSC's rate over the whole measurement, against CLOCK_MONOTONIC.
#pragma once

#include <x86intrin.h>

#include <cstdint>

namespace shmbus::bench {

class SpanTimer {
 public:
  SpanTimer();  // notes where the measurement starts

  bool uses_tsc() const noexcept { return use_tsc_; }
  const char* clock_name() const noexcept { return use_tsc_ ? "tsc" : "clock_monotonic"; }

  // Ticks before and after the span.
  std::uint64_t start() const noexcept {
    if (!use_tsc_) return monotonic();
    _mm_lfence();  // earlier instructions finish before the read
    const std::uint64_t t = __rdtsc();
    _mm_lfence();  // the span's instructions start after it
    return t;
  }
  std::uint64_t stop() const noexcept {
    if (!use_tsc_) return monotonic();
    unsigned aux;
    const std::uint64_t t = __rdtscp(&aux);  // waits for the span's instructions
    _mm_lfence();
    return t;
  }

  // Call once the measurement is over: the rate since construction. Then ns(ticks) converts.
  void finish() noexcept;
  std::uint64_t ns(std::uint64_t ticks) const noexcept {
    return static_cast<std::uint64_t>(static_cast<double>(ticks) * ns_per_tick_ + 0.5);
  }

 private:
  static std::uint64_t monotonic() noexcept;

  bool use_tsc_ = false;
  std::uint64_t first_tsc_ = 0;
  std::uint64_t first_ns_ = 0;
  double ns_per_tick_ = 1.0;
};

}  // namespace shmbus::bench
