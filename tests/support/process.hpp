// Child processes for multi-process tests: the peer program (spawned with posix_spawn) or a forked
// copy of the test running a function. Every wait has a timeout; a child still running when its
// Child object goes away is killed (SIGKILL) and reaped, so a failing test leaves no process behind.
//
// Also: unique channel names and a guard that removes a channel's shared-memory objects.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace shmbus::test {

using namespace std::chrono_literals;

struct ExitStatus {
  bool exited = false;  // exited by itself; `code` is valid
  int code = -1;
  int signal = 0;       // the signal that ended it, if it was killed
  bool ok() const { return exited && code == 0; }
  std::string describe() const;
};

class Child {
 public:
  // Runs argv[0] with arguments argv[1..]; its stdout goes to a pipe read by read_line(), its
  // stderr is the test's.
  static Child spawn(const std::vector<std::string>& argv);
  // Forks; the child runs `body` with fd 1 on the pipe, then _exit()s with body's return value
  // (no atexit handlers, no destructors of the parent's objects).
  static Child fork(const std::function<int()>& body);

  Child() = default;
  Child(Child&& other) noexcept;
  Child& operator=(Child&& other) noexcept;
  Child(const Child&) = delete;
  Child& operator=(const Child&) = delete;
  ~Child();

  pid_t pid() const { return pid_; }

  // The next line of stdout, without its newline. Nothing on timeout or end of file.
  std::optional<std::string> read_line(std::chrono::milliseconds timeout);
  // Reads lines until one starts with `prefix`, which it returns; the lines before are kept in
  // output(). Nothing on timeout or end of file.
  std::optional<std::string> wait_for_line(std::string_view prefix,
                                           std::chrono::milliseconds timeout);
  // Everything read so far (lines returned or skipped, then any unread rest), for messages.
  std::string output() const { return transcript_ + pending_; }

  // Waits for the child to end, reading (and keeping) its output meanwhile so it never blocks on
  // a full pipe. Nothing on timeout (the child is left running).
  std::optional<ExitStatus> wait(std::chrono::milliseconds timeout);
  // SIGKILL and reap. Safe to call on an exited child.
  void kill_hard();
  bool running();

 private:
  bool fill(std::chrono::steady_clock::time_point deadline);
  void close_pipe();

  pid_t pid_ = -1;
  int out_fd_ = -1;
  std::string pending_;     // bytes read but not yet returned as lines
  std::string transcript_;  // every complete line returned or skipped
  std::optional<ExitStatus> status_;
};

// Parses "WORD key=value key=value ..." into {key: value}; the first word is stored under "".
std::map<std::string, std::string> parse_fields(std::string_view line);
std::uint64_t field_u64(const std::map<std::string, std::string>& fields, const std::string& key);

// How a peer ended and the fields of its last RESULT line.
struct PeerOutcome {
  ExitStatus status;
  std::map<std::string, std::string> result;
  std::string output;
};
// Waits for a peer to finish; a peer still running after `timeout` is killed and this throws,
// with everything it said.
PeerOutcome finish_peer(Child& c,
                        std::chrono::milliseconds timeout = std::chrono::seconds(60));

// A channel name no other test (or test process) uses: "t-<tag>-<pid>-<n>", at most 48 chars.
std::string unique_channel(std::string_view tag);

// Names of the shared-memory objects (under /dev/shm) that belong to `channel`: its ring, its
// control segments (any incarnation) and leftover temporaries from creation.
std::vector<std::string> channel_objects(std::string_view channel);

// Removes every object of `channel` (shmbus::remove_channel first, then anything left over).
void remove_channel_objects(std::string_view channel);

// Removes a channel's objects when the test ends, however it ends.
class ChannelGuard {
 public:
  explicit ChannelGuard(std::string channel) : channel_(std::move(channel)) {
    remove_channel_objects(channel_);
  }
  ~ChannelGuard() { remove_channel_objects(channel_); }
  ChannelGuard(const ChannelGuard&) = delete;
  ChannelGuard& operator=(const ChannelGuard&) = delete;
  const std::string& name() const { return channel_; }
  const char* c_str() const { return channel_.c_str(); }

 private:
  std::string channel_;
};

// A read-only (or writable) mapping of a whole file, e.g. /dev/shm/shmbus.<name>.
class FileMapping {
 public:
  static std::optional<FileMapping> open(const std::string& path, bool writable);
  FileMapping() = default;
  FileMapping(FileMapping&& other) noexcept;
  FileMapping& operator=(FileMapping&& other) noexcept;
  ~FileMapping();
  std::byte* data() const { return static_cast<std::byte*>(base_); }
  std::size_t size() const { return size_; }

 private:
  void* base_ = nullptr;
  std::size_t size_ = 0;
};

// Lines of /proc/<pid>/maps naming `path` (pid 0: this process).
std::vector<std::string> mappings_of(const std::string& path, pid_t pid = 0);

}  // namespace shmbus::test
