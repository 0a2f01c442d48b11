#include "bench/journal/span_timer.hpp"

#include <cpuid.h>
#include <time.h>

namespace shmbus::bench {

namespace {

// CPUID 0x80000007, EDX bit 8: the TSC runs at a constant rate in every P-, C- and T-state.
bool tsc_is_invariant() noexcept {
  unsigned eax = 0, ebx = 0, ecx = 0, edx = 0;
  if (__get_cpuid_max(0x80000000u, nullptr) < 0x80000007u) return false;
  if (__get_cpuid(0x80000007u, &eax, &ebx, &ecx, &edx) == 0) return false;
  return (edx & (1u << 8)) != 0;
}

}  // namespace

std::uint64_t SpanTimer::monotonic() noexcept {
  timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return std::uint64_t(ts.tv_sec) * 1'000'000'000u + std::uint64_t(ts.tv_nsec);
}

SpanTimer::SpanTimer() : use_tsc_(tsc_is_invariant()) {
  first_ns_ = monotonic();
  first_tsc_ = use_tsc_ ? __rdtsc() : first_ns_;
}

void SpanTimer::finish() noexcept {
  if (!use_tsc_) return;
  const std::uint64_t ns = monotonic();
  const std::uint64_t tsc = __rdtsc();
  if (tsc > first_tsc_ && ns > first_ns_) {
    ns_per_tick_ = static_cast<double>(ns - first_ns_) / static_cast<double>(tsc - first_tsc_);
  }
}

}  // namespace shmbus::bench
