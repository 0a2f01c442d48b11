// `shmbus bench fanout`: one publisher streaming into one channel at full speed while N
// subscribers that wait (Subscriber::wait: a short spin, then a futex sleep) rather than spin, as
// on a shared host, receive every message. What it shows: how the publisher's rate and the
// delivery latency change with the number of subscribers, for the block and drop policies.
//
//   - Each round creates a fresh channel (fanout_channel.hpp), forks the subscriber processes
//     (threads, fanout_roles.hpp) on one CPU and the publisher on another (CPUs 1 and 0 by
//     default), waits until every subscriber is registered, streams for duration_s, and checks
//     every record each subscriber received.
//   - Rounds are interleaved (round 1 of every configuration, then round 2...) and each figure is
//     the median over the rounds; ratio_to_one_subscriber compares each publisher rate with the
//     same policy's N = 1 figure, which therefore always runs.
//
//   auto report = run_fanout(FanoutConfig{.subscribers = {1, 8}});
//   if (!report) { std::cerr << report.error() << '\n'; return 1; }
//   std::cout << format_table(*report);
//
// The caller must be single-threaded (it forks). Nothing is printed; `progress`, when given, is
// called with a short line before each round of each configuration.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include <tl/expected.hpp>

#include "bench/fanout/fanout_report.hpp"
#include "shmbus/options.hpp"

namespace shmbus::bench {

struct FanoutConfig {
  std::size_t size = 64;  // bytes per message, >= 8 (the sequence is in the first 8)
  double duration_s = 2.0;
  int rounds = 3;
  std::vector<std::size_t> subscribers = {1, 8, 64, 256};  // 1 is added if missing
  std::vector<Policy> policies = {Policy::block, Policy::drop};
  std::uint64_t wait_spin_ns = 5'000;  // Subscriber::wait's spin before it sleeps
  int publisher_cpu = 0;
  int subscriber_cpu = 1;
  double timeout_s = 120;  // beyond duration_s: a round that takes longer is killed and fails
};

// Empty if the config can be run, else what is wrong with it (e.g. more subscribers than a
// channel takes).
std::string validate(const FanoutConfig& config);

tl::expected<FanoutReport, std::string> run_fanout(
    const FanoutConfig& config, const std::function<void(const std::string&)>& progress = {});

}  // namespace shmbus::bench
