// shmbus bench pingpong|throughput: shmbus and its baselines (raw shared memory, pipe, Unix socket,
// Boost message queue), measured side by side in one run by the cross-process harness (bench/).
#include <CLI/CLI.hpp>

#include <cstdio>
#include <iostream>

#include <nlohmann/json.hpp>

#include "bench/harness/baselines.hpp"
#include "bench/harness/report.hpp"
#include "bench/harness/runner.hpp"
#include "bench/transports/shmbus_transport.hpp"
#include "tools/bench_command.hpp"

namespace shmbus::tools {

int run_bench(const BenchOptions& options) {
  bench::BenchConfig config;
  config.size = options.size;
  config.rounds = options.rounds;
  config.duration_s = options.duration_s;
  if (options.count) config.count = *options.count;
  config.warmup = std::min<std::uint64_t>(config.warmup, config.count);
  auto progress = [&](const std::string& line) {
    if (!options.json) std::fprintf(stderr, "%s\n", line.c_str());
  };
  if (options.kind == "pingpong") {
    std::vector<std::unique_ptr<bench::PingPongTransport>> transports;
    transports.push_back(bench::shmbus_pingpong_transport(false));
    transports.push_back(bench::shmbus_pingpong_transport(true));
    for (auto& t : bench::baseline_pingpong_transports()) transports.push_back(std::move(t));
    auto report = bench::run_pingpong(transports, config, progress);
    if (!report) {
      std::fprintf(stderr, "shmbus bench: %s\n", report.error().c_str());
      return 1;
    }
    if (options.json) {
      std::cout << bench::to_json(*report).dump() << std::endl;
    } else {
      std::cout << bench::format_table(*report) << std::flush;
    }
    return 0;
  }
  std::vector<std::unique_ptr<bench::ThroughputTransport>> transports;
  transports.push_back(bench::shmbus_throughput_transport(false));
  transports.push_back(bench::shmbus_throughput_transport(true));
  for (auto& t : bench::baseline_throughput_transports()) transports.push_back(std::move(t));
  auto report = bench::run_throughput(transports, config, progress);
  if (!report) {
    std::fprintf(stderr, "shmbus bench: %s\n", report.error().c_str());
    return 1;
  }
  if (options.json) {
    std::cout << bench::to_json(*report).dump() << std::endl;
  } else {
    std::cout << bench::format_table(*report) << std::flush;
  }
  return 0;
}

void add_bench_command(CLI::App& app) {
  auto options = std::make_shared<BenchOptions>();
  CLI::App* cmd = app.add_subcommand(
      "bench", "Measure shmbus against raw shared memory, a pipe, a Unix socket and a Boost "
               "message queue, two processes pinned to different cores, in one run");
  cmd->add_option("kind", options->kind, "pingpong (round-trip latency) or throughput")
      ->required()
      ->check(CLI::IsMember({"pingpong", "throughput"}));
  cmd->add_option("--size", options->size, "Message bytes, sequence number included (>= 8)")
      ->check(CLI::Range(8, 1 << 20));
  cmd->add_option("--count", options->count,
                  "pingpong: timed round trips per round (default 200000)");
  cmd->add_option("--duration", options->duration_s,
                  "throughput: seconds the producer streams per round");
  cmd->add_option("--rounds", options->rounds,
                  "Interleaved rounds; each figure is the median over them")
      ->check(CLI::Range(1, 99));
  cmd->add_flag("--json", options->json, "One JSON document on stdout instead of a table");
  cmd->callback([options] {
    const int code = run_bench(*options);
    if (code != 0) throw CLI::RuntimeError(code);
  });
}

}  // namespace shmbus::tools
