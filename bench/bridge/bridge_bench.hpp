// `shmbus bench bridge`: what the NATS JetStream bridge delivers end to end on one host, measured
// as users run it: a publisher into a channel, bridge out (shmbus::bridge::Out), a JetStream
// stream in a nats-server, bridge in (shmbus::bridge::In) into a second channel, and a subscriber
// on it (bench/bridge/bridge_run.hpp describes one run and how each record is checked).
//
// Unless a server is given (nats_url), a nats-server is started for the bench in a temporary
// directory and stopped, with the directory, at the end (bench/bridge/bench_nats_server.hpp).
// For each record size, two runs: throughput (records as fast as the bridges' acknowledgements
// allow; records per second from the first send to the last receive) and paced (`rate` records
// per second; latency = receive time - send time, p50/p99/p99.9/max). Each run uses fresh
// channels (bench.bridge.a.<pid>, bench.bridge.b.<pid>) and a fresh stream, removed after it.
// Rounds are interleaved (every size and run of round 1, then round 2...), and each figure is the
// median over the rounds. Every record of every run is checked; any loss fails the bench.
//
//   auto report = run_bridge_bench(BridgeBenchConfig{.count = 20'000});
//   if (!report) { std::cerr << report.error() << '\n'; return 1; }
//   std::cout << format_table(*report);
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include <tl/expected.hpp>

#include "bench/bridge/bridge_report.hpp"

namespace shmbus::bench {

struct BridgeBenchConfig {
  std::vector<std::size_t> sizes{64, 1024};  // record bytes, >= 16 each
  std::uint64_t count = 50'000;  // timed records per run
  double rate = 10'000;          // the paced runs' records per second
  int rounds = 1;
  std::string nats_url;     // empty: start a nats-server for the bench
  std::string nats_server;  // the binary to start; empty: found as BenchNatsServer::start says
  double stall_timeout_s = 30;  // a run that receives nothing this long fails
};

// Empty if the config can be run, else what is wrong with it.
std::string validate(const BridgeBenchConfig& config);

tl::expected<BridgeBenchReport, std::string> run_bridge_bench(
    const BridgeBenchConfig& config, const std::function<void(const std::string&)>& progress = {});

}  // namespace shmbus::bench
