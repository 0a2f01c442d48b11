// Runs transports across two processes and reports the median of each figure over rounds. The
// method, with BenchConfig's defaults:
//   - Each round forks two processes, pinned to CPUs 0 and 1 (plan_cpus): the receiving side
//     (responder or consumer) on CPU 1 is started first, and the sending side (initiator or
//     producer) on CPU 0 starts only once the receiver has signalled that it is polling. Both
//     sides busy-poll.
//   - pingpong: 20,000 untimed warm-up round trips, then 200,000 timed ones, of 64-byte messages
//     carrying a sequence number that the responder checks and echoes back and the initiator
//     checks again. CLOCK_MONOTONIC is read around each round trip: one sample each.
//   - throughput: the producer streams sequence-numbered messages for 2 s, then an end marker; the
//     consumer checks every sequence number and times from its first message to the marker.
//   - Rounds are interleaved (round 1 of every transport, then round 2, ...; 3 rounds), so that a
//     drift of the machine spreads over all transports alike.
//
//   std::vector<std::unique_ptr<PingPongTransport>> transports = baseline_pingpong_transports();
//   auto report = run_pingpong(transports, BenchConfig{.size = 64});
//   if (!report) { std::cerr << report.error() << '\n'; return 1; }
//   std::cout << format_table(*report);
//
// The caller must be single-threaded (the runner forks). Nothing is printed; `progress`, when
// given, is called with a short line before each round of each transport.
#pragma once

#include <functional>
#include <memory>
#include <span>
#include <string>

#include <tl/expected.hpp>

#include "bench/harness/process.hpp"
#include "bench/harness/report.hpp"
#include "bench/harness/transport.hpp"

namespace shmbus::bench {

using Progress = std::function<void(const std::string& line)>;

// Every transport for config.rounds interleaved rounds; results in the order given. The first
// failure (bad config, a transport's setup, a sequence mismatch, a child that dies or times out)
// stops the run and is returned as a message naming the transport and the round.
tl::expected<PingPongReport, std::string> run_pingpong(
    std::span<const std::unique_ptr<PingPongTransport>> transports, const BenchConfig& config,
    const Progress& progress = {});
tl::expected<ThroughputReport, std::string> run_throughput(
    std::span<const std::unique_ptr<ThroughputTransport>> transports, const BenchConfig& config,
    const Progress& progress = {});

// One round of one transport on the given CPUs: prepare, fork both sides, wait, cleanup. A
// pingpong round returns its exact percentiles and the histogram of its round trips.
tl::expected<LatencyRound, std::string> run_pingpong_round(PingPongTransport& transport,
                                                           const BenchConfig& config,
                                                           const CpuPlan& cpus);
tl::expected<ThroughputResult, std::string> run_throughput_round(ThroughputTransport& transport,
                                                                 const BenchConfig& config,
                                                                 const CpuPlan& cpus);

// Empty if the config can be run, else what is wrong with it.
std::string validate(const BenchConfig& config);

}  // namespace shmbus::bench
