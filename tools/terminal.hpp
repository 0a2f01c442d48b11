// The terminal around `stat --watch`: whether to colour, how wide the screen is, the local clock,
// and single keys (q quits) read from stdin while the terminal is in non-canonical mode.
#pragma once

#include <termios.h>

#include <cstddef>
#include <ctime>
#include <string>

namespace shmbus::tools {

// Colour only for a terminal, and never when NO_COLOR is set to a non-empty value
// (https://no-color.org) or TERM is "dumb". The arguments are isatty(), getenv("NO_COLOR") and
// getenv("TERM"); either may be null.
bool colour_wanted(bool is_terminal, const char* no_color, const char* term) noexcept;

// colour_wanted for a file descriptor, with this process's environment.
bool colour_wanted_for(int fd) noexcept;

// The columns of the terminal on `fd`, or `fallback` when it is not a terminal or does not say.
std::size_t terminal_columns(int fd, std::size_t fallback) noexcept;

// `when` in the local time zone, as "HH:MM:SS TZ" ("21:05:09 CET").
std::string local_clock(std::time_t when);

// Keys typed while watching. When stdin and stdout are both the terminal of the foreground process
// group, stdin is switched to non-canonical mode without echo (ISIG stays on, so Ctrl-C still sends
// SIGINT) and the destructor puts the saved settings back: every way out of the watch loop
// (q, SIGINT/SIGTERM, an error, an exception) restores the terminal. Otherwise (a pipe, a
// background job) nothing is changed and no key is read.
class KeyReader {
 public:
  KeyReader();
  ~KeyReader();
  KeyReader(const KeyReader&) = delete;
  KeyReader& operator=(const KeyReader&) = delete;

  bool active() const noexcept { return active_; }

  // Waits up to `timeout_ms` for input (interrupted early by a signal); true once 'q' or 'Q' was
  // typed. Inactive: just sleeps.
  bool quit_typed(int timeout_ms);

 private:
  bool active_ = false;
  bool input_closed_ = false;    // the terminal hung up: no more keys will come
  struct termios saved_ {};      // the terminal's mode before, put back by the destructor
  struct termios keys_mode_ {};  // saved_ without ICANON and ECHO
};

}  // namespace shmbus::tools
