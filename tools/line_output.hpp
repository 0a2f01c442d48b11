// Whole lines to a stream, each flushed (tail and the journal commands feed pipelines). Remembers the first
// failure; after it nothing more is written. EPIPE means the reader went away: a normal end.
#pragma once

#include <cerrno>
#include <cstdio>
#include <string>

namespace shmbus::tools {

class LineOutput {
 public:
  explicit LineOutput(std::FILE* out) : out_(out) {}

  bool write(const std::string& line) noexcept {
    if (error_ != 0) return false;
    if (std::fwrite(line.data(), 1, line.size(), out_) != line.size() ||
        std::fputc('\n', out_) == EOF || std::fflush(out_) != 0) {
      error_ = errno != 0 ? errno : EIO;
    }
    return error_ == 0;
  }
  // Records a failure found elsewhere (e.g. formatting ran out of memory): nothing more is written.
  void fail(int error) noexcept {
    if (error_ == 0) error_ = error;
  }
  int error() const noexcept { return error_; }

 private:
  std::FILE* out_;
  int error_ = 0;
};

}  // namespace shmbus::tools
