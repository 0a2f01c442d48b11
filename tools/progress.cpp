#include "tools/progress.hpp"

#include <unistd.h>

#include <algorithm>

#include <fmt/format.h>

#include "tools/format.hpp"
#include "tools/pacer.hpp"

namespace shmbus::tools {
namespace {

// Writes all of `text`; a terminal that fails is given up on (progress is never worth an error).
bool write_all(int fd, std::string_view text) noexcept {
  while (!text.empty()) {
    const ssize_t n = ::write(fd, text.data(), text.size());
    if (n <= 0) return false;
    text.remove_prefix(static_cast<std::size_t>(n));
  }
  return true;
}

constexpr std::string_view kEraseLine = "\r\x1b[K";

}  // namespace

ProgressLine::ProgressLine(int fd, std::string label, std::int64_t interval_ns)
    : fd_(fd),
      label_(std::move(label)),
      interval_ns_(interval_ns),
      enabled_(::isatty(fd) == 1),
      start_ns_(monotonic_now_ns()),
      next_due_ns_(start_ns_ + interval_ns) {}

void ProgressLine::update(std::uint64_t records, std::uint64_t sequence, std::int64_t time_ns) {
  if (!enabled_) return;
  const std::int64_t now = monotonic_now_ns();
  if (now < next_due_ns_) return;
  next_due_ns_ = now + interval_ns_;
  const double seconds = static_cast<double>(std::max<std::int64_t>(now - start_ns_, 1)) / 1e9;
  const std::string line = fmt::format(
      "{}{}: {} records, at seq={} time={} ({} records/s)", kEraseLine, label_, records, sequence,
      iso8601_local_ns(time_ns), human_count(static_cast<double>(records) / seconds));
  shown_ = true;
  if (!write_all(fd_, line)) enabled_ = false;
}

void ProgressLine::finish() noexcept {
  if (shown_ && enabled_) write_all(fd_, kEraseLine);
  shown_ = false;
}

}  // namespace shmbus::tools
