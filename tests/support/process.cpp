#include "tests/support/process.hpp"

#include <dirent.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <stdexcept>
#include <thread>

#include "shmbus/shmbus.hpp"

extern char** environ;

namespace shmbus::test {
namespace {

using Clock = std::chrono::steady_clock;

[[noreturn]] void fail(const std::string& what) {
  throw std::runtime_error(what + ": " + std::strerror(errno));
}

ExitStatus decode(int status) {
  ExitStatus s;
  if (WIFEXITED(status)) {
    s.exited = true;
    s.code = WEXITSTATUS(status);
  } else if (WIFSIGNALED(status)) {
    s.signal = WTERMSIG(status);
  }
  return s;
}

}  // namespace

std::string ExitStatus::describe() const {
  if (exited) return "exited with code " + std::to_string(code);
  if (signal != 0) return std::string("killed by signal ") + strsignal(signal);
  return "still running or unknown";
}

Child Child::spawn(const std::vector<std::string>& argv) {
  int fds[2];
  if (::pipe2(fds, O_CLOEXEC) != 0) fail("pipe2");
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  // dup2 clears close-on-exec on the new fd 1; the originals close at exec.
  posix_spawn_file_actions_adddup2(&actions, fds[1], 1);
  std::vector<char*> args;
  for (const std::string& a : argv) args.push_back(const_cast<char*>(a.c_str()));
  args.push_back(nullptr);
  pid_t pid = -1;
  const int err = ::posix_spawn(&pid, args[0], &actions, nullptr, args.data(), environ);
  posix_spawn_file_actions_destroy(&actions);
  ::close(fds[1]);
  if (err != 0) {
    ::close(fds[0]);
    errno = err;
    fail("posix_spawn " + argv[0]);
  }
  Child c;
  c.pid_ = pid;
  c.out_fd_ = fds[0];
  return c;
}

Child Child::fork(const std::function<int()>& body) {
  int fds[2];
  if (::pipe2(fds, O_CLOEXEC) != 0) fail("pipe2");
  std::fflush(nullptr);  // nothing buffered in the parent is written twice
  const pid_t pid = ::fork();
  if (pid < 0) fail("fork");
  if (pid == 0) {
    ::dup2(fds[1], 1);
    ::close(fds[0]);
    ::close(fds[1]);
    int rc = 99;
    try {
      rc = body();
    } catch (...) {
      rc = 98;
    }
    std::fflush(nullptr);
    ::_exit(rc);
  }
  ::close(fds[1]);
  Child c;
  c.pid_ = pid;
  c.out_fd_ = fds[0];
  return c;
}

Child::Child(Child&& other) noexcept { *this = std::move(other); }

Child& Child::operator=(Child&& other) noexcept {
  if (this != &other) {
    kill_hard();
    close_pipe();
    pid_ = std::exchange(other.pid_, -1);
    out_fd_ = std::exchange(other.out_fd_, -1);
    pending_ = std::move(other.pending_);
    transcript_ = std::move(other.transcript_);
    status_ = std::move(other.status_);
  }
  return *this;
}

Child::~Child() {
  kill_hard();
  close_pipe();
}

void Child::close_pipe() {
  if (out_fd_ >= 0) ::close(out_fd_);
  out_fd_ = -1;
}

// Reads what is available (waiting until `deadline` for something). False at end of file or
// timeout.
bool Child::fill(Clock::time_point deadline) {
  if (out_fd_ < 0) return false;
  for (;;) {
    const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now());
    pollfd p{out_fd_, POLLIN, 0};
    const int r = ::poll(&p, 1, static_cast<int>(std::max<std::int64_t>(left.count(), 0)));
    if (r < 0 && errno == EINTR) continue;
    if (r <= 0) return false;
    char buf[4096];
    const ssize_t n = ::read(out_fd_, buf, sizeof buf);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      close_pipe();
      return false;
    }
    pending_.append(buf, static_cast<std::size_t>(n));
    return true;
  }
}

std::optional<std::string> Child::read_line(std::chrono::milliseconds timeout) {
  const auto deadline = Clock::now() + timeout;
  for (;;) {
    const auto nl = pending_.find('\n');
    if (nl != std::string::npos) {
      std::string line = pending_.substr(0, nl);
      pending_.erase(0, nl + 1);
      transcript_ += line + "\n";
      return line;
    }
    if (!fill(deadline)) return std::nullopt;
  }
}

std::optional<std::string> Child::wait_for_line(std::string_view prefix,
                                                std::chrono::milliseconds timeout) {
  const auto deadline = Clock::now() + timeout;
  for (;;) {
    const auto left =
        std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now());
    auto line = read_line(std::max(left, std::chrono::milliseconds(0)));
    if (!line) return std::nullopt;
    if (line->starts_with(prefix)) return line;
  }
}

std::optional<ExitStatus> Child::wait(std::chrono::milliseconds timeout) {
  if (status_) return status_;
  if (pid_ < 0) return std::nullopt;
  const auto deadline = Clock::now() + timeout;
  for (;;) {
    int st = 0;
    const pid_t r = ::waitpid(pid_, &st, WNOHANG);
    if (r == pid_) {
      status_ = decode(st);
      // Keep whatever it wrote last (its summary line) for read_line.
      while (fill(Clock::now() + 100ms)) {
      }
      return status_;
    }
    if (r < 0 && errno != EINTR) return std::nullopt;
    if (Clock::now() >= deadline) return std::nullopt;
    // Drain its output meanwhile so that it never blocks on a full pipe.
    if (out_fd_ >= 0) {
      fill(Clock::now() + 5ms);
    } else {
      std::this_thread::sleep_for(5ms);
    }
  }
}

void Child::kill_hard() {
  if (pid_ < 0 || status_) return;
  ::kill(pid_, SIGKILL);
  int st = 0;
  while (::waitpid(pid_, &st, 0) < 0 && errno == EINTR) {
  }
  status_ = decode(st);
}

bool Child::running() {
  if (pid_ < 0 || status_) return false;
  int st = 0;
  if (::waitpid(pid_, &st, WNOHANG) == pid_) {
    status_ = decode(st);
    return false;
  }
  return true;
}

PeerOutcome finish_peer(Child& c, std::chrono::milliseconds timeout) {
  PeerOutcome o;
  auto st = c.wait(timeout);
  if (!st) {
    c.kill_hard();
    throw std::runtime_error("peer " + std::to_string(c.pid()) +
                             " did not finish in time; it said:\n" + c.output());
  }
  o.status = *st;
  if (auto line = c.wait_for_line("RESULT", std::chrono::seconds(1))) o.result = parse_fields(*line);
  o.output = c.output();
  return o;
}

std::map<std::string, std::string> parse_fields(std::string_view line) {
  std::map<std::string, std::string> out;
  bool first = true;
  while (!line.empty()) {
    const auto sp = line.find(' ');
    const std::string_view word = line.substr(0, sp);
    line = sp == std::string_view::npos ? std::string_view{} : line.substr(sp + 1);
    if (word.empty()) continue;
    const auto eq = word.find('=');
    if (first && eq == std::string_view::npos) {
      out[""] = std::string(word);
    } else if (eq != std::string_view::npos) {
      out[std::string(word.substr(0, eq))] = std::string(word.substr(eq + 1));
    }
    first = false;
  }
  return out;
}

std::uint64_t field_u64(const std::map<std::string, std::string>& fields, const std::string& key) {
  const auto it = fields.find(key);
  if (it == fields.end()) throw std::runtime_error("no field '" + key + "'");
  return std::strtoull(it->second.c_str(), nullptr, 0);
}

std::string unique_channel(std::string_view tag) {
  static std::atomic<unsigned> counter{0};
  std::string t(tag.substr(0, 24));
  return "t-" + t + "-" + std::to_string(::getpid()) + "-" + std::to_string(counter++);
}

std::vector<std::string> channel_objects(std::string_view channel) {
  const std::string ring = "shmbus." + std::string(channel);
  std::vector<std::string> found;
  DIR* d = ::opendir("/dev/shm");
  if (d == nullptr) return found;
  while (const dirent* e = ::readdir(d)) {
    const std::string_view n = e->d_name;
    if (n == ring || n.starts_with(ring + ".ctl.") || n.starts_with(ring + ".tmp.")) {
      found.emplace_back(n);
    }
  }
  ::closedir(d);
  return found;
}

void remove_channel_objects(std::string_view channel) {
  (void)shmbus::remove_channel(channel);
  for (const std::string& n : channel_objects(channel)) ::unlink(("/dev/shm/" + n).c_str());
}

std::optional<FileMapping> FileMapping::open(const std::string& path, bool writable) {
  const int fd = ::open(path.c_str(), (writable ? O_RDWR : O_RDONLY) | O_CLOEXEC);
  if (fd < 0) return std::nullopt;
  struct stat st{};
  if (::fstat(fd, &st) != 0 || st.st_size <= 0) {
    ::close(fd);
    return std::nullopt;
  }
  void* p = ::mmap(nullptr, static_cast<std::size_t>(st.st_size),
                   writable ? PROT_READ | PROT_WRITE : PROT_READ, MAP_SHARED, fd, 0);
  ::close(fd);
  if (p == MAP_FAILED) return std::nullopt;
  FileMapping m;
  m.base_ = p;
  m.size_ = static_cast<std::size_t>(st.st_size);
  return m;
}

FileMapping::FileMapping(FileMapping&& other) noexcept { *this = std::move(other); }

FileMapping& FileMapping::operator=(FileMapping&& other) noexcept {
  if (this != &other) {
    if (base_ != nullptr) ::munmap(base_, size_);
    base_ = std::exchange(other.base_, nullptr);
    size_ = std::exchange(other.size_, 0);
  }
  return *this;
}

FileMapping::~FileMapping() {
  if (base_ != nullptr) ::munmap(base_, size_);
}

std::vector<std::string> mappings_of(const std::string& path, pid_t pid) {
  std::ifstream maps(pid == 0 ? std::string("/proc/self/maps")
                              : "/proc/" + std::to_string(pid) + "/maps");
  std::vector<std::string> out;
  std::string line;
  while (std::getline(maps, line)) {
    // The path is the last field; match it whole, not as a prefix of a longer name.
    if (line.size() > path.size() && line.compare(line.size() - path.size(), path.size(), path) == 0 &&
        line[line.size() - path.size() - 1] == ' ') {
      out.push_back(line);
    }
  }
  return out;
}

}  // namespace shmbus::test
