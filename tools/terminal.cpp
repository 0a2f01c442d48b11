#include "tools/terminal.hpp"

#include <poll.h>
#include <signal.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include <array>
#include <cerrno>
#include <cstdlib>
#include <cstring>

namespace shmbus::tools {

bool colour_wanted(bool is_terminal, const char* no_color, const char* term) noexcept {
  if (!is_terminal) return false;
  if (no_color != nullptr && no_color[0] != '\0') return false;
  return term == nullptr || std::strcmp(term, "dumb") != 0;
}

bool colour_wanted_for(int fd) noexcept {
  return colour_wanted(::isatty(fd) == 1, std::getenv("NO_COLOR"), std::getenv("TERM"));
}

std::size_t terminal_columns(int fd, std::size_t fallback) noexcept {
  struct winsize size {};
  if (::isatty(fd) != 1 || ::ioctl(fd, TIOCGWINSZ, &size) != 0 || size.ws_col == 0) {
    return fallback;
  }
  return size.ws_col;
}

std::string local_clock(std::time_t when) {
  struct tm local {};
  if (::localtime_r(&when, &local) == nullptr) return "--:--:--";
  std::array<char, 64> text{};
  const std::size_t n = std::strftime(text.data(), text.size(), "%H:%M:%S %Z", &local);
  return std::string(text.data(), n);
}

KeyReader::KeyReader() {
  // A background job that changed the terminal would be stopped by SIGTTOU, and a pipe reader
  // (`stat --watch | less`) reads the same terminal: keys only in the foreground, on screen.
  if (::isatty(STDIN_FILENO) != 1 || ::isatty(STDOUT_FILENO) != 1) return;
  if (::tcgetpgrp(STDIN_FILENO) != ::getpgrp()) return;
  if (::tcgetattr(STDIN_FILENO, &saved_) != 0) return;
  keys_mode_ = saved_;
  keys_mode_.c_lflag &= ~static_cast<tcflag_t>(ICANON | ECHO);
  keys_mode_.c_cc[VMIN] = 0;
  keys_mode_.c_cc[VTIME] = 0;
  active_ = ::tcsetattr(STDIN_FILENO, TCSANOW, &keys_mode_) == 0;
}

KeyReader::~KeyReader() {
  if (!active_) return;
  // Ended while a background job (Ctrl-Z, bg, then a signal), tcsetattr would stop the process
  // with SIGTTOU instead of restoring the terminal: ignore it for this one call.
  struct sigaction ignore {};
  struct sigaction previous {};
  ignore.sa_handler = SIG_IGN;
  ::sigaction(SIGTTOU, &ignore, &previous);
  ::tcsetattr(STDIN_FILENO, TCSANOW, &saved_);
  ::sigaction(SIGTTOU, &previous, nullptr);
}

bool KeyReader::quit_typed(int timeout_ms) {
  // Suspended (Ctrl-Z) and sent to the background, a read of the terminal would stop the process
  // (SIGTTIN): keys only while in the foreground. Resumed there, the shell has put its own mode
  // back: switch to single keys again.
  const bool foreground = active_ && ::tcgetpgrp(STDIN_FILENO) == ::getpgrp();
  if (foreground) {
    struct termios now {};
    if (::tcgetattr(STDIN_FILENO, &now) == 0 && (now.c_lflag & ICANON) != 0) {
      ::tcsetattr(STDIN_FILENO, TCSANOW, &keys_mode_);
    }
  }
  if (!foreground || input_closed_) {
    struct timespec pause {
      timeout_ms / 1000, static_cast<long>(timeout_ms % 1000) * 1'000'000
    };
    ::nanosleep(&pause, nullptr);  // EINTR (SIGINT, SIGTERM) ends it early, as wanted
    return false;
  }
  struct pollfd input {
    STDIN_FILENO, POLLIN, 0
  };
  if (::poll(&input, 1, timeout_ms) <= 0) return false;
  std::array<char, 64> keys{};
  const ssize_t n =
      (input.revents & POLLIN) != 0 ? ::read(STDIN_FILENO, keys.data(), keys.size()) : 0;
  if (n < 0 && errno == EINTR) return false;
  if (n <= 0) {
    // A hung-up terminal polls readable forever with nothing to read: stop asking it (it would
    // spin), and keep the watch going on the clock alone.
    input_closed_ = true;
    return false;
  }
  for (ssize_t i = 0; i < n; ++i) {
    if (keys[static_cast<std::size_t>(i)] == 'q' || keys[static_cast<std::size_t>(i)] == 'Q') {
      return true;
    }
  }
  return false;
}

}  // namespace shmbus::tools
