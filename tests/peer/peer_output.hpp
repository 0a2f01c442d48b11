// What the peer roles tell the test that started them: one line on stdout with write(2), so
// nothing waits in a buffer when the test kills the process.
#pragma once

#include <unistd.h>

#include <cstddef>
#include <string>

namespace shmbus::test::peer {

inline void say(const std::string& line) {
  const std::string s = line + "\n";
  const char* p = s.data();
  std::size_t left = s.size();
  while (left > 0) {
    const ssize_t n = ::write(1, p, left);
    if (n <= 0) return;
    p += n;
    left -= static_cast<std::size_t>(n);
  }
}

}  // namespace shmbus::test::peer
