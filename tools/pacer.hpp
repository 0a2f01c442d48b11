// Paces a loop to a message rate on CLOCK_MONOTONIC deadlines: message k (counting from 0) is due
// at start + k / rate. A loop that fell behind (back-pressure) is not slowed further, so the
// average rate holds; it catches up at full speed.
#pragma once

#include <cstdint>

namespace shmbus::tools {

class Pacer {
 public:
  // rate_per_s <= 0: no pacing. With burst > 1 only every burst-th message waits, so a fast rate
  // sleeps once per burst instead of spinning between messages.
  explicit Pacer(double rate_per_s, std::uint64_t burst = 1);

  // Waits until message `index` is due: sleeps while far ahead, spins the last few microseconds.
  // False if a signal interrupted the sleep (the caller checks why and may call again).
  bool wait_turn(std::uint64_t index) const noexcept;

 private:
  double period_ns_ = 0;
  std::uint64_t burst_ = 1;
  std::int64_t start_ns_ = 0;
};

// CLOCK_MONOTONIC now, in nanoseconds.
std::int64_t monotonic_now_ns() noexcept;

}  // namespace shmbus::tools
