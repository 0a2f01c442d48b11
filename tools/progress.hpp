// A progress line for long runs (replay of a large journal), on a terminal only: it is rewritten
// in place ("\r", erase line) every `interval_ns`, and erased at the end. When the file descriptor
// is not a terminal (a pipe, a file, a log) nothing is ever written to it, so scripts and logs see
// only the command's own messages.
#pragma once

#include <cstdint>
#include <string>

namespace shmbus::tools {

class ProgressLine {
 public:
  // `label`: what the line starts with ("shmbus replay"). The first line appears after
  // `interval_ns`, so short runs print none.
  ProgressLine(int fd, std::string label, std::int64_t interval_ns);
  ProgressLine(const ProgressLine&) = delete;
  ProgressLine& operator=(const ProgressLine&) = delete;
  ~ProgressLine() { finish(); }

  bool enabled() const noexcept { return enabled_; }
  // After each record: how many so far, and the last one's sequence and time. Cheap when nothing
  // is due (a clock read) or when disabled (a branch).
  void update(std::uint64_t records, std::uint64_t sequence, std::int64_t time_ns);
  // Erases the line if one was shown.
  void finish() noexcept;

 private:
  int fd_;
  std::string label_;
  std::int64_t interval_ns_;
  bool enabled_;
  bool shown_ = false;
  std::int64_t start_ns_;
  std::int64_t next_due_ns_;
};

}  // namespace shmbus::tools
