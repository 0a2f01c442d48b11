// What the process-fault tests share: starting the peer program and a journaler, stopping and
// continuing a process, publishing verifiable payloads from the test process, and finding a
// process's subscriber slot.
#pragma once

#include <signal.h>
#include <unistd.h>

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <functional>
#include <optional>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "shmbus/shmbus.hpp"
#include "shmbus/stats.hpp"
#include "tests/support/payload.hpp"
#include "tests/support/process.hpp"
#include "tests/support/segments.hpp"

namespace shmbus::test::faults {

using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;

#if defined(__SANITIZE_ADDRESS__)
inline constexpr int kSlowdown = 4;  // ASan runs the peers several times slower
#else
inline constexpr int kSlowdown = 1;
#endif

inline std::string str(std::uint64_t v) { return std::to_string(v); }

inline std::vector<std::string> operator+(std::vector<std::string> a,
                                          const std::vector<std::string>& b) {
  a.insert(a.end(), b.begin(), b.end());
  return a;
}

// Polls `done` every 5 ms until it holds or `timeout` passes. True if it held.
inline bool wait_until(const std::function<bool()>& done, std::chrono::milliseconds timeout) {
  const auto deadline = Clock::now() + timeout;
  while (!done()) {
    if (Clock::now() >= deadline) return false;
    std::this_thread::sleep_for(5ms);
  }
  return true;
}

// Field 3 of /proc/PID/stat: R, S, T (stopped), Z...; '?' when it cannot be read.
inline char process_state(pid_t pid) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/stat");
  std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  const auto paren = text.rfind(')');
  if (paren == std::string::npos || paren + 2 >= text.size()) return '?';
  return text[paren + 2];
}

// SIGSTOP, and wait until the kernel says the process is stopped.
inline void stop_process(pid_t pid) {
  ::kill(pid, SIGSTOP);
  if (!wait_until([&] { return process_state(pid) == 'T'; }, 5s)) {
    throw std::runtime_error("process " + std::to_string(pid) + " did not stop");
  }
}

inline void continue_process(pid_t pid) { ::kill(pid, SIGCONT); }

// Runs the peer program (tests/peer/test_peer.cpp) with `args` and waits for its READY line;
// `prefix` runs before it (e.g. unshare, or env for a preload).
inline Child start_peer(const std::vector<std::string>& args,
                        const std::vector<std::string>& prefix = {}) {
  std::vector<std::string> argv = prefix;
  argv.emplace_back(SHMBUS_TEST_PEER);
  argv.insert(argv.end(), args.begin(), args.end());
  Child c = Child::spawn(argv);
  if (!c.wait_for_line("READY", 20s)) {
    throw std::runtime_error("peer " + args.at(0) + " did not get ready; it said:\n" + c.output());
  }
  return c;
}


// A scratch directory removed when the test ends.
class TempDir {
 public:
  explicit TempDir(const std::string& tag)
      : path_(std::filesystem::temp_directory_path() /
              ("shmbus-" + tag + "-" + std::to_string(::getpid()) + "-" +
               std::to_string(counter()++))) {
    std::filesystem::remove_all(path_);
    std::filesystem::create_directories(path_);
  }
  ~TempDir() {
    std::error_code ec;
    std::filesystem::remove_all(path_, ec);
  }
  std::string str() const { return path_.string(); }

 private:
  static int& counter() {
    static int n = 0;
    return n;
  }
  std::filesystem::path path_;
};

// `shmbus record` on `channel` into `dir`, waited for until the channel shows it attached.
inline Child start_journaler(const std::string& channel, const std::string& dir) {
  Child j = Child::spawn({SHMBUS_CLI, "record", channel, "--dir", dir, "--quiet", "--fsync",
                          "never"});
  const bool attached = wait_until(
      [&] {
        auto stats = read_channel_stats(channel);
        return stats && stats->journal && stats->journal->alive &&
               stats->journal->pid == static_cast<std::uint32_t>(j.pid());
      },
      20s);
  if (!attached) throw std::runtime_error("the journaler did not attach:\n" + j.output());
  return j;
}

// The stats of the subscriber slot held by `pid`, if there is one.
inline std::optional<SubscriberStats> subscriber_of(const std::string& channel, pid_t pid) {
  auto stats = read_channel_stats(channel);
  if (!stats) return std::nullopt;
  for (const SubscriberStats& s : stats->subscribers) {
    if (s.pid == static_cast<std::uint32_t>(pid)) return s;
  }
  return std::nullopt;
}

// Publishes producer `producer`'s messages `first` .. `first + count - 1` (payload.hpp), each
// waiting up to `timeout`. Returns how many went out before the first that did not.
inline std::uint64_t publish_counted(Publisher& pub, std::uint32_t producer, std::uint64_t first,
                                     std::uint64_t count, const SizeRule& rule,
                                     std::chrono::nanoseconds timeout) {
  std::vector<std::byte> buf(rule.max_size);
  for (std::uint64_t i = 0; i < count; ++i) {
    const PayloadId id{producer, first + i};
    const std::uint32_t len = payload_length(rule, id);
    fill_payload({buf.data(), len}, id);
    if (pub.publish({buf.data(), len}, timeout) != PublishStatus::ok) return i;
  }
  return count;
}

// A 64 KiB ring of messages up to 1 KiB with `subscriber_slots` slots, created by the caller.
inline ChannelOptions small_channel(std::uint32_t subscriber_slots = 64) {
  ChannelOptions o;
  o.capacity = 64 << 10;
  o.max_message = 1024;
  o.subscriber_slots = subscriber_slots;
  return o;
}

// Payloads of 12 to 300 bytes: each names its producer and counter.
inline constexpr SizeRule kRule{7, static_cast<std::uint32_t>(kPayloadIdBytes), 300};

inline std::vector<std::string> rule_args(const SizeRule& rule) {
  return {"--seed", str(rule.seed), "--min-size", str(rule.min_size), "--max-size",
          str(rule.max_size)};
}

}  // namespace shmbus::test::faults
