// Whole lines (or whole binary records) to a stream (tail and the journal commands feed
// pipelines). Each write is flushed unless the owner asked to flush itself (replay at full speed
// flushes before it waits, not once per record). Remembers the first failure; after it nothing
// more is written. EPIPE means the reader went away: a normal end.
#pragma once

#include <cerrno>
#include <cstdio>
#include <string>
#include <string_view>

namespace shmbus::tools {

class LineOutput {
 public:
  explicit LineOutput(std::FILE* out, bool flush_each_write = true)
      : out_(out), flush_each_write_(flush_each_write) {}

  // `line` and a newline.
  bool write(const std::string& line) noexcept {
    if (error_ != 0) return false;
    if (std::fwrite(line.data(), 1, line.size(), out_) != line.size() ||
        std::fputc('\n', out_) == EOF) {
      note_errno();
      return false;
    }
    return !flush_each_write_ || flush();
  }
  // `bytes` as they are, no newline.
  bool write_bytes(std::string_view bytes) noexcept {
    if (error_ != 0) return false;
    if (std::fwrite(bytes.data(), 1, bytes.size(), out_) != bytes.size()) {
      note_errno();
      return false;
    }
    return !flush_each_write_ || flush();
  }
  bool flush() noexcept {
    if (error_ != 0) return false;
    if (std::fflush(out_) != 0) note_errno();
    return error_ == 0;
  }
  // Records a failure found elsewhere (e.g. formatting ran out of memory): nothing more is written.
  void fail(int error) noexcept {
    if (error_ == 0) error_ = error;
  }
  int error() const noexcept { return error_; }

 private:
  void note_errno() noexcept { fail(errno != 0 ? errno : EIO); }

  std::FILE* out_;
  bool flush_each_write_;
  int error_ = 0;
};

}  // namespace shmbus::tools
