// `stat --watch` on a real terminal (a pseudo-terminal the test holds the master of): colours only
// there and not with NO_COLOR or TERM=dumb, 'q' quits, and the terminal's canonical mode and echo
// come back whether it ends by q, SIGINT or SIGTERM. In a pipe: no escape sequences at all.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <poll.h>
#include <signal.h>
#include <sys/ioctl.h>
#include <sys/wait.h>
#include <termios.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <cstring>
#include <optional>
#include <string>
#include <vector>

#include "tests/support/command.hpp"
#include "tests/support/process.hpp"
#include "tools/observe_format.hpp"
#include "tools/terminal.hpp"

extern char** environ;

namespace {

using namespace std::chrono_literals;
using shmbus::test::ChannelGuard;
using shmbus::test::Child;
using shmbus::test::unique_channel;

// `shmbus stat ARGS...` with a pseudo-terminal as its controlling terminal, stdin, stdout and
// stderr; `env` replaces NO_COLOR and TERM of the test's environment.
class TerminalChild {
 public:
  TerminalChild(const std::vector<std::string>& args, const std::vector<std::string>& env) {
    master_ = ::posix_openpt(O_RDWR | O_NOCTTY | O_CLOEXEC);
    if (master_ < 0 || ::grantpt(master_) != 0 || ::unlockpt(master_) != 0) return;
    const std::string slave_path = ::ptsname(master_);
    // The test's own view of the terminal's settings, which the child shares.
    slave_ = ::open(slave_path.c_str(), O_RDWR | O_NOCTTY | O_CLOEXEC);
    struct winsize size {};
    size.ws_row = 50;
    size.ws_col = 80;
    ::ioctl(slave_, TIOCSWINSZ, &size);
    ::tcgetattr(slave_, &initial_);

    std::vector<std::string> environment;
    for (char** e = environ; *e != nullptr; ++e) {
      const std::string entry = *e;
      if (entry.rfind("NO_COLOR=", 0) != 0 && entry.rfind("TERM=", 0) != 0) {
        environment.push_back(entry);
      }
    }
    environment.insert(environment.end(), env.begin(), env.end());
    std::vector<char*> envp;
    for (std::string& e : environment) envp.push_back(e.data());
    envp.push_back(nullptr);
    std::vector<std::string> argv_text{SHMBUS_CLI, "stat"};
    argv_text.insert(argv_text.end(), args.begin(), args.end());
    std::vector<char*> argv;
    for (std::string& a : argv_text) argv.push_back(a.data());
    argv.push_back(nullptr);

    pid_ = ::fork();
    if (pid_ == 0) {
      ::setsid();  // a new session, whose controlling terminal the slave becomes when opened
      const int tty = ::open(slave_path.c_str(), O_RDWR);
      if (tty < 0) ::_exit(126);
      for (int fd = 0; fd < 3; ++fd) ::dup2(tty, fd);
      ::execve(SHMBUS_CLI, argv.data(), envp.data());
      ::_exit(127);
    }
  }
  ~TerminalChild() {
    if (pid_ > 0 && !status_) {
      ::kill(pid_, SIGKILL);
      ::waitpid(pid_, nullptr, 0);
    }
    if (slave_ >= 0) ::close(slave_);
    if (master_ >= 0) ::close(master_);
  }
  TerminalChild(const TerminalChild&) = delete;
  TerminalChild& operator=(const TerminalChild&) = delete;

  bool started() const { return pid_ > 0 && slave_ >= 0; }
  pid_t pid() const { return pid_; }
  const std::string& screen() const { return screen_; }
  struct termios initial_settings() const {
    return initial_;
  }
  struct termios settings() const {
    struct termios now {};
    ::tcgetattr(slave_, &now);
    return now;
  }

  // Reads the terminal until `text` has appeared (true) or `timeout` passed.
  bool read_until(const std::string& text, std::chrono::milliseconds timeout) {
    const auto deadline = std::chrono::steady_clock::now() + timeout;
    while (screen_.find(text) == std::string::npos) {
      if (std::chrono::steady_clock::now() >= deadline) return false;
      pollfd p{master_, POLLIN, 0};
      if (::poll(&p, 1, 50) <= 0) continue;
      char buffer[4096];
      const ssize_t n = ::read(master_, buffer, sizeof buffer);
      if (n <= 0) return false;  // EIO: the child has closed the terminal
      screen_.append(buffer, static_cast<std::size_t>(n));
    }
    return true;
  }
  bool type(const std::string& keys) {
    return ::write(master_, keys.data(), keys.size()) == static_cast<ssize_t>(keys.size());
  }
  // The exit code, or nothing if it is still running after `timeout` (or died of a signal).
  std::optional<int> wait(std::chrono::milliseconds timeout) {
    const auto deadline = std::chrono::steady_clock::now() + timeout;
    while (!status_) {
      int status = 0;
      if (::waitpid(pid_, &status, WNOHANG) == pid_) {
        status_ = status;
        break;
      }
      if (std::chrono::steady_clock::now() >= deadline) return std::nullopt;
      read_until("\x01never", 10ms);  // keep draining, so the child never blocks on output
    }
    if (!WIFEXITED(*status_)) return std::nullopt;
    return WEXITSTATUS(*status_);
  }

 private:
  int master_ = -1;
  int slave_ = -1;
  pid_t pid_ = -1;
  std::optional<int> status_;
  struct termios initial_ {};
  std::string screen_;
};

bool canonical_with_echo(const struct termios& t) {
  return (t.c_lflag & ICANON) != 0 && (t.c_lflag & ECHO) != 0;
}

bool has_sgr_colour(const std::string& text) {
  return text.find("\x1b[1m") != std::string::npos || text.find("\x1b[3") != std::string::npos;
}

class StatOnATerminal : public ::testing::Test {
 protected:
  void SetUp() override {
    const auto r =
        shmbus::test::run_command({SHMBUS_CLI, "pub", ch_.name(), "--count", "5", "--quiet"}, 10s);
    ASSERT_TRUE(r.status.ok()) << r.out;
  }
  std::vector<std::string> watch_args() const {
    return {ch_.name(), "--watch", "0.1", "--interval-ms", "0"};
  }
  ChannelGuard ch_{unique_channel("tty")};
};

TEST_F(StatOnATerminal, IsColouredFitsTheScreenAndQuitsOnQWithTheTerminalRestored) {
  TerminalChild child(watch_args(), {"TERM=xterm"});
  ASSERT_TRUE(child.started());
  ASSERT_TRUE(canonical_with_echo(child.initial_settings()));
  ASSERT_TRUE(child.read_until("q quits", 10s)) << child.screen();
  ASSERT_TRUE(child.read_until("q quits", 10s));
  EXPECT_FALSE(canonical_with_echo(child.settings()));  // keys arrive one by one, unechoed
  EXPECT_TRUE(has_sgr_colour(child.screen())) << child.screen();
  EXPECT_NE(child.screen().find("channel " + ch_.name()), std::string::npos);
  ASSERT_TRUE(child.type("q"));
  EXPECT_EQ(child.wait(5s), 0) << child.screen();
  EXPECT_TRUE(canonical_with_echo(child.settings()));
  // Every line of a frame fits the 80-column terminal (the frame's escapes take no columns).
  for (std::string line : shmbus::test::lines_of(child.screen())) {
    for (const char* control : {"\x1b[K", "\x1b[J", "\x1b[H", "\r"}) {
      for (std::size_t at; (at = line.find(control)) != std::string::npos;) {
        line.erase(at, std::strlen(control));
      }
    }
    EXPECT_LE(shmbus::tools::display_width(line), 80u) << line;
  }
}

TEST_F(StatOnATerminal, SigintAndSigtermEndItWithTheTerminalRestored) {
  for (int signal : {SIGINT, SIGTERM}) {
    TerminalChild child(watch_args(), {"TERM=xterm"});
    ASSERT_TRUE(child.started());
    ASSERT_TRUE(child.read_until("q quits", 10s)) << child.screen();
    EXPECT_FALSE(canonical_with_echo(child.settings()));
    ASSERT_EQ(::kill(child.pid(), signal), 0);
    EXPECT_EQ(child.wait(5s), 0) << "signal " << signal << "\n" << child.screen();
    EXPECT_TRUE(canonical_with_echo(child.settings())) << "signal " << signal;
  }
}

TEST_F(StatOnATerminal, NoColorOrADumbTerminalGetNoColours) {
  for (const char* env : {"NO_COLOR=1", "TERM=dumb"}) {
    std::vector<std::string> environment{env};
    if (std::string(env).rfind("TERM", 0) != 0) environment.push_back("TERM=xterm");
    TerminalChild child(watch_args(), environment);
    ASSERT_TRUE(child.started());
    ASSERT_TRUE(child.read_until("q quits", 10s)) << child.screen();
    ASSERT_TRUE(child.type("q"));
    EXPECT_EQ(child.wait(5s), 0);
    EXPECT_FALSE(has_sgr_colour(child.screen())) << env << "\n" << child.screen();
  }
}

// Piped: plain frames a blank line apart, each with the clock, no escape sequence, no q (stdin is
// not read), and SIGINT still ends it.
TEST_F(StatOnATerminal, InAPipeFramesArePlainAndSigintEndsIt) {
  Child watch =
      Child::spawn({SHMBUS_CLI, "stat", ch_.name(), "--watch", "0.1", "--interval-ms", "0"});
  ASSERT_TRUE(watch.wait_for_line("channel " + ch_.name(), 10s)) << watch.output();
  ASSERT_TRUE(watch.wait_for_line("channel " + ch_.name(), 10s)) << watch.output();
  ASSERT_EQ(::kill(watch.pid(), SIGINT), 0);
  const auto status = watch.wait(5s);
  ASSERT_TRUE(status && status->ok()) << (status ? status->describe() : "still running");
  const std::string out = watch.output();
  EXPECT_EQ(out.find('\x1b'), std::string::npos);
  EXPECT_EQ(out.find("q quits"), std::string::npos);
  EXPECT_NE(out.find("every 0.1 s"), std::string::npos);
  for (const std::string& line : shmbus::test::lines_of(out)) EXPECT_LE(line.size(), 80u) << line;
}

TEST(TerminalColour, OnlyForATerminalWithoutNoColorOrDumbTerm) {
  using shmbus::tools::colour_wanted;
  EXPECT_TRUE(colour_wanted(true, nullptr, "xterm-256color"));
  EXPECT_TRUE(colour_wanted(true, "", nullptr));  // NO_COLOR set but empty does not count
  EXPECT_FALSE(colour_wanted(false, nullptr, "xterm"));
  EXPECT_FALSE(colour_wanted(true, "1", "xterm"));
  EXPECT_FALSE(colour_wanted(true, nullptr, "dumb"));
}

TEST(TerminalClock, IsTheLocalTimeOfDay) {
  ::setenv("TZ", "UTC", 1);
  ::tzset();
  EXPECT_EQ(shmbus::tools::local_clock(1'700'000'000), "22:13:20 UTC");
}

}  // namespace
