#include "ipc/publish_clock.hpp"

#include <fcntl.h>
#include <time.h>
#include <unistd.h>

#include <cstring>

namespace shmbus::detail {
namespace {

bool kernel_uses_tsc() noexcept {
  const int fd = ::open("/sys/devices/system/clocksource/clocksource0/current_clocksource",
                        O_RDONLY | O_CLOEXEC);
  if (fd < 0) return false;
  char buf[32] = {};
  const ssize_t n = ::read(fd, buf, sizeof buf - 1);
  ::close(fd);
  return n >= 3 && std::strncmp(buf, "tsc", 3) == 0 && (n == 3 || buf[3] == '\n');
}

std::int64_t realtime() noexcept {
  timespec ts;
  ::clock_gettime(CLOCK_REALTIME, &ts);
  return std::int64_t{ts.tv_sec} * 1'000'000'000 + ts.tv_nsec;
}

}  // namespace

PublishClock::PublishClock() noexcept {
  use_tsc_ = kernel_uses_tsc();
  if (!use_tsc_) return;
  first_tsc_ = __rdtsc();
  first_ns_ = realtime();
  // A first rate from 200 us of spinning (done once, when the publisher opens); refined at every
  // re-anchor against the growing baseline.
  std::int64_t ns;
  std::uint64_t tsc;
  do {
    tsc = __rdtsc();
    ns = realtime();
  } while (ns - first_ns_ < 200'000);
  ns_per_tick_q32_ = (static_cast<std::uint64_t>(ns - first_ns_) << 32) / (tsc - first_tsc_);
  if (ns_per_tick_q32_ == 0) {
    use_tsc_ = false;
    return;
  }
  reanchor_ticks_ = (std::uint64_t{1'000'000} << 32) / ns_per_tick_q32_;  // 1 ms of ticks
  anchor_tsc_ = tsc;
  anchor_ns_ = ns;
  last_ns_ = ns;
}

std::int64_t PublishClock::read_real() noexcept { return realtime(); }

std::int64_t PublishClock::reanchor(std::uint64_t tsc) noexcept {
  const std::int64_t ns = realtime();
  const std::uint64_t ticks = tsc - first_tsc_;
  if (ns > first_ns_ && ticks > 0 && ns - first_ns_ < (std::int64_t{1} << 31) * 1000) {
    ns_per_tick_q32_ = static_cast<std::uint64_t>(
        (static_cast<unsigned __int128>(ns - first_ns_) << 32) / ticks);
    reanchor_ticks_ = (std::uint64_t{1'000'000} << 32) / (ns_per_tick_q32_ ? ns_per_tick_q32_ : 1);
  } else {
    first_tsc_ = tsc;  // start a new baseline (clock stepped, or a very long one)
    first_ns_ = ns;
  }
  anchor_tsc_ = tsc;
  anchor_ns_ = ns;
  if (ns > last_ns_) last_ns_ = ns;
  return last_ns_;
}

}  // namespace shmbus::detail
