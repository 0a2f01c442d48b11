#include "journal/retention.hpp"

namespace shmbus::journal {

std::size_t segments_to_delete(std::span<const RetainedSegment> closed, std::uint64_t current_bytes,
                               std::uint64_t retain_bytes, std::chrono::seconds retain_age,
                               std::int64_t now_ns) noexcept {
  std::uint64_t total = current_bytes;
  for (const RetainedSegment& s : closed) total += s.bytes;
  const std::int64_t age_ns =
      std::chrono::duration_cast<std::chrono::nanoseconds>(retain_age).count();
  std::size_t n = 0;
  for (const RetainedSegment& s : closed) {
    const bool too_big = retain_bytes != 0 && total > retain_bytes;
    const bool too_old = age_ns > 0 && s.newest_ns != 0 && s.newest_ns < now_ns - age_ns;
    if (!too_big && !too_old) break;
    total -= s.bytes;
    ++n;
  }
  return n;
}

}  // namespace shmbus::journal
