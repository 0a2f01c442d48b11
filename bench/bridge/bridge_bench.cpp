#include "bench/bridge/bridge_bench.hpp"

#include <unistd.h>

#include <algorithm>
#include <memory>
#include <stdexcept>
#include <thread>

#include <fmt/format.h>

#include "bench/bridge/bench_nats_server.hpp"
#include "bench/bridge/bridge_run.hpp"
#include "shmbus/bridge.hpp"

namespace shmbus::bench {

namespace {

constexpr std::size_t kMaxBridgeRecordBytes = std::size_t{1} << 16;  // a channel's default
constexpr std::uint64_t kMaxBridgeBenchCount = 100'000'000;

double bridge_median(std::vector<double> values) {
  if (values.empty()) return 0;
  std::sort(values.begin(), values.end());
  const std::size_t n = values.size();
  return (values[(n - 1) / 2] + values[n / 2]) / 2;
}

LatencyRound latency_round(const core::LatencySnapshot& histogram) {
  LatencyRound round;
  round.histogram = histogram;
  round.stats = LatencyStats{core::latency_percentile(histogram, 0.50),
                             core::latency_percentile(histogram, 0.90),
                             core::latency_percentile(histogram, 0.99),
                             core::latency_percentile(histogram, 0.999), histogram.max_ns};
  return round;
}

// The rounds of one size, run by run.
struct SizeRounds {
  std::vector<double> throughput;
  std::vector<double> paced;
  std::vector<LatencyRound> latency;
};

BridgeBenchResult size_result(std::size_t size, std::uint64_t count, const SizeRounds& rounds) {
  BridgeBenchResult r;
  r.size = size;
  r.records = count;
  r.records_per_s = bridge_median(rounds.throughput);
  r.mb_per_s = r.records_per_s * double(size) / 1e6;
  r.throughput_spread = {spread_of("records_per_s", rounds.throughput)};
  r.paced_records_per_s = bridge_median(rounds.paced);
  LatencySummary latency = summarize(rounds.latency);
  r.latency = latency.median;
  r.latency_detail = std::move(latency.detail);
  r.paced_spread = {spread_of("records_per_s", rounds.paced)};
  r.paced_spread.insert(r.paced_spread.end(), r.latency_detail.spread.begin(),
                        r.latency_detail.spread.end());
  return r;
}

}  // namespace

std::string validate(const BridgeBenchConfig& config) {
  if (config.sizes.empty()) return "no record size given";
  for (const std::size_t size : config.sizes) {
    if (size < kBridgeRecordHeaderBytes || size > kMaxBridgeRecordBytes) {
      return fmt::format("record size {} is out of range: {} to {} bytes (the send time and the "
                         "index take the first {})",
                         size, kBridgeRecordHeaderBytes, kMaxBridgeRecordBytes,
                         kBridgeRecordHeaderBytes);
    }
  }
  if (config.count < 1 || config.count > kMaxBridgeBenchCount) {
    return fmt::format("count {} is out of range: 1 to {}", config.count, kMaxBridgeBenchCount);
  }
  if (!(config.rate > 0) || config.rate > 1e7) {
    return fmt::format("rate {} is out of range: above 0, at most 10000000 records/s",
                       config.rate);
  }
  if (config.rounds < 1) return "rounds must be at least 1";
  if (!(config.stall_timeout_s >= 1)) return "the stall timeout must be at least 1 s";
  return {};
}

tl::expected<BridgeBenchReport, std::string> run_bridge_bench(
    const BridgeBenchConfig& config, const std::function<void(const std::string&)>& progress) {
  if (std::string e = validate(config); !e.empty()) return tl::unexpected(e);
  BridgeBenchReport report;
  report.count = config.count;
  report.rate = config.rate;
  report.rounds = config.rounds;
  report.cpus = std::max(1u, std::thread::hardware_concurrency());

  std::unique_ptr<BenchNatsServer> server;  // stopped (and its directory removed) on return
  if (config.nats_url.empty()) {
    auto started = BenchNatsServer::start(config.nats_server);
    if (!started) return tl::unexpected(started.error());
    server = std::move(*started);
    report.url = server->url();
  } else {
    report.server_started = false;
    report.url = config.nats_url;
  }

  const int pid = static_cast<int>(::getpid());
  BridgeRunPlan plan;
  plan.nats_url = report.url;
  plan.source_channel = fmt::format("bench.bridge.a.{}", pid);
  plan.destination_channel = fmt::format("bench.bridge.b.{}", pid);
  plan.count = config.count;
  plan.stall_timeout = std::chrono::seconds(static_cast<std::int64_t>(config.stall_timeout_s));

  std::vector<SizeRounds> rounds(config.sizes.size());
  int run_number = 0;
  for (int round = 1; round <= config.rounds; ++round) {
    for (std::size_t i = 0; i < config.sizes.size(); ++i) {
      for (const bool paced : {false, true}) {
        plan.size = config.sizes[i];
        plan.rate = paced ? config.rate : 0;
        ++run_number;
        plan.stream = fmt::format("SHMBUS_BENCH_BRIDGE_{}_{}", pid, run_number);
        plan.subject = fmt::format("bench.bridge.{}.{}", pid, run_number);
        const std::string what =
            fmt::format("bridge bench {} B {}, round {}/{}", plan.size,
                        paced ? fmt::format("paced at {:.0f}/s", config.rate) : "throughput",
                        round, config.rounds);
        if (progress) progress(what);
        try {
          const BridgeRunResult run = run_bridge_once(plan);
          if (paced) {
            rounds[i].paced.push_back(run.records_per_s);
            rounds[i].latency.push_back(latency_round(run.latency));
          } else {
            rounds[i].throughput.push_back(run.records_per_s);
          }
        } catch (const std::exception& e) {
          bridge::release_nats();
          return tl::unexpected(fmt::format("{}: {}", what, e.what()));
        }
      }
    }
  }
  for (std::size_t i = 0; i < config.sizes.size(); ++i) {
    report.results.push_back(size_result(config.sizes[i], config.count, rounds[i]));
  }
  bridge::release_nats();
  return report;
}

}  // namespace shmbus::bench
