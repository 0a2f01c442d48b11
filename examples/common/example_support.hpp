// What the example programs need besides shmbus: a monotonic clock, latency percentiles, a stop
// flag set by SIGINT and SIGTERM, `--name value` options, and waiting until subscribers attach.
// Header-only and built on the public API alone, so an example builds against an installed shmbus.
#pragma once

#include <shmbus/shmbus.hpp>
#include <shmbus/stats.hpp>

#include <fmt/format.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <csignal>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <ctime>
#include <map>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

namespace examples {

// CLOCK_MONOTONIC in nanoseconds: one clock for every process of the host, so a timestamp taken in
// one process can be subtracted from one taken in another.
inline std::int64_t monotonic_ns() noexcept {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(
             std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

// CLOCK_REALTIME in nanoseconds since the Unix epoch: the clock of Message::timestamp_ns.
inline std::int64_t realtime_ns() noexcept {
  timespec now{};
  ::clock_gettime(CLOCK_REALTIME, &now);
  return now.tv_sec * 1'000'000'000ll + now.tv_nsec;
}

// Sleeps until `due_ns` (CLOCK_MONOTONIC), spinning only the last 20 us: the other processes on
// these cores need them more than a pacing loop needs a precise schedule.
inline void sleep_until_ns(std::int64_t due_ns) noexcept {
  constexpr std::int64_t kSpinNs = 20'000;
  const std::int64_t ahead = due_ns - monotonic_ns();
  if (ahead > kSpinNs) std::this_thread::sleep_for(std::chrono::nanoseconds(ahead - kSpinNs));
  while (monotonic_ns() < due_ns) {
  }
}

// Nearest-rank percentiles of a set of latencies (nanoseconds).
struct LatencySummary {
  std::size_t count = 0;
  std::int64_t p50_ns = 0;
  std::int64_t p99_ns = 0;
  std::int64_t p999_ns = 0;
  std::int64_t max_ns = 0;
};

inline LatencySummary summarize(std::vector<std::int64_t> samples) {
  LatencySummary summary;
  summary.count = samples.size();
  if (samples.empty()) return summary;
  std::sort(samples.begin(), samples.end());
  auto at = [&](double quantile) {
    const auto rank = static_cast<std::size_t>(quantile * static_cast<double>(samples.size()));
    return samples[std::min(rank, samples.size() - 1)];
  };
  summary.p50_ns = at(0.50);
  summary.p99_ns = at(0.99);
  summary.p999_ns = at(0.999);
  summary.max_ns = samples.back();
  return summary;
}

inline std::string microseconds(std::int64_t ns) {
  return fmt::format("{:.1f} us", static_cast<double>(ns) / 1e3);
}

inline std::string describe(const LatencySummary& s) {
  return fmt::format("p50 {}, p99 {}, p99.9 {}, max {} ({} samples)", microseconds(s.p50_ns),
                     microseconds(s.p99_ns), microseconds(s.p999_ns), microseconds(s.max_ns),
                     s.count);
}

// Set by SIGINT and SIGTERM. Relaxed is enough: the flag carries no data; the loops that read it
// only need to see it eventually, and a signal handler may touch nothing but lock-free atomics.
inline std::atomic<bool> stop_requested{false};

inline void stop_on_signals() {
  // Relaxed: the flag orders nothing else; the main loop only needs to see it eventually.
  auto handler = [](int) { stop_requested.store(true, std::memory_order_relaxed); };
  std::signal(SIGINT, handler);
  std::signal(SIGTERM, handler);
}

// Relaxed: only the flag itself is read; no data is handed over with it.
inline bool stopping() noexcept { return stop_requested.load(std::memory_order_relaxed); }

// `--name value` pairs. An option given twice keeps its last value; a malformed command line or
// number ends the program with status 2 and the usage text.
class Options {
 public:
  Options(int argc, char** argv, std::string usage) : usage_(std::move(usage)) {
    for (int i = 1; i < argc; ++i) {
      const std::string_view arg = argv[i];
      if (arg == "--help" || arg == "-h") fail("");
      if (!arg.starts_with("--") || i + 1 == argc) fail(fmt::format("bad argument '{}'", arg));
      values_[std::string(arg.substr(2))] = argv[++i];
    }
  }

  bool has(const std::string& name) const { return values_.count(name) != 0; }

  std::string text(const std::string& name, std::string fallback = "") const {
    const auto found = values_.find(name);
    return found == values_.end() ? fallback : found->second;
  }
  std::string required_text(const std::string& name) const {
    if (!has(name)) fail(fmt::format("--{} is required", name));
    return text(name);
  }

  std::uint64_t number(const std::string& name, std::uint64_t fallback) const {
    if (!has(name)) return fallback;
    const std::string& value = values_.at(name);
    char* end = nullptr;
    const unsigned long long parsed = std::strtoull(value.c_str(), &end, 10);
    if (value.empty() || *end != '\0') fail(fmt::format("--{}: '{}' is not a number", name, value));
    return parsed;
  }

  double real(const std::string& name, double fallback) const {
    if (!has(name)) return fallback;
    const std::string& value = values_.at(name);
    char* end = nullptr;
    const double parsed = std::strtod(value.c_str(), &end);
    if (value.empty() || *end != '\0') fail(fmt::format("--{}: '{}' is not a number", name, value));
    return parsed;
  }

  [[noreturn]] void fail(const std::string& why) const {
    if (!why.empty()) fmt::print(stderr, "{}\n", why);
    fmt::print(stderr, "{}", usage_);
    std::exit(2);
  }

 private:
  std::string usage_;
  std::map<std::string, std::string> values_;
};

// Waits until `channel` has at least `count` subscribers attached (the journaler counts: it is a
// subscriber), so that a producer started last loses nothing to subscribers still starting up.
// True once they are; false on timeout or a stop request.
inline bool wait_for_subscribers(std::string_view channel, std::size_t count,
                                 std::chrono::milliseconds timeout) {
  const std::int64_t deadline = monotonic_ns() + std::chrono::nanoseconds(timeout).count();
  while (!stopping() && monotonic_ns() < deadline) {
    if (auto stats = shmbus::read_channel_stats(channel)) {
      const auto attached = std::count_if(
          stats->subscribers.begin(), stats->subscribers.end(), [](const auto& subscriber) {
            return subscriber.state != shmbus::SubscriberState::detached &&
                   subscriber.state != shmbus::SubscriberState::evicted;
          });
      if (static_cast<std::size_t>(attached) >= count) return true;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(2));
  }
  return false;
}

// FNV-1a over bytes: a digest two runs can compare to tell they saw the same content.
inline std::uint64_t fnv1a(std::uint64_t digest, const void* data, std::size_t size) noexcept {
  const auto* bytes = static_cast<const unsigned char*>(data);
  for (std::size_t i = 0; i < size; ++i) {
    digest ^= bytes[i];
    digest *= 0x100000001b3ull;
  }
  return digest;
}
inline constexpr std::uint64_t kFnvOffsetBasis = 0xcbf29ce484222325ull;

}  // namespace examples
