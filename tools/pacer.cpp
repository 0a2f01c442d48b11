#include "tools/pacer.hpp"

#include <time.h>

#include <cerrno>

namespace shmbus::tools {
namespace {

// Below this much time to go, clock_nanosleep's wake-up latency would overshoot: spin instead.
constexpr std::int64_t kSpinWindowNs = 60'000;

timespec to_timespec(std::int64_t ns) {
  return timespec{static_cast<time_t>(ns / 1'000'000'000), static_cast<long>(ns % 1'000'000'000)};
}

}  // namespace

std::int64_t monotonic_now_ns() noexcept {
  timespec ts{};
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return std::int64_t{ts.tv_sec} * 1'000'000'000 + ts.tv_nsec;
}

Pacer::Pacer(double rate_per_s, std::uint64_t burst)
    : period_ns_(rate_per_s > 0 ? 1e9 / rate_per_s : 0),
      burst_(burst == 0 ? 1 : burst),
      start_ns_(monotonic_now_ns()) {}

bool Pacer::wait_turn(std::uint64_t index) const noexcept {
  if (period_ns_ == 0 || index % burst_ != 0) return true;
  const std::int64_t due =
      start_ns_ + static_cast<std::int64_t>(period_ns_ * static_cast<double>(index));
  std::int64_t now = monotonic_now_ns();
  while (due - now > kSpinWindowNs) {
    const timespec until = to_timespec(due - kSpinWindowNs / 2);
    if (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &until, nullptr) == EINTR) return false;
    now = monotonic_now_ns();
  }
  while (now < due) now = monotonic_now_ns();
  return true;
}

}  // namespace shmbus::tools
