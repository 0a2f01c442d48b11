// shmbus bench pingpong|throughput: shmbus and its baselines (raw shared memory, pipe, Unix socket,
// Boost message queue), measured side by side in one run by the cross-process harness (bench/).
// shmbus bench journal: the journaler against the disk. shmbus bench fanout: one publisher and
// N waiting subscribers. shmbus bench group: consumer groups against a plain block subscriber.
// shmbus bench bridge: a channel through bridge out, JetStream and bridge in to another channel.
#include <CLI/CLI.hpp>

#include <algorithm>
#include <cstdio>
#include <functional>
#include <iostream>
#include <iterator>

#include <nlohmann/json.hpp>

#include "bench/bridge/bridge_bench.hpp"
#include "bench/fanout/fanout_bench.hpp"
#include "bench/group/group_bench.hpp"
#include "bench/harness/baselines.hpp"
#include "bench/harness/report.hpp"
#include "bench/harness/runner.hpp"
#include "bench/journal/journal_bench.hpp"
#include "bench/run_record.hpp"
#include "bench/transports/shmbus_c_transport.hpp"
#include "bench/transports/shmbus_transport.hpp"
#include "tools/bench_command.hpp"
#include "tools/option_bounds.hpp"

namespace shmbus::tools {

namespace {

static_assert(BenchOptions{}.max_spread == bench::kDefaultMaxSpread,
              "--max-spread's default is the one the bench documents");

// Progress lines go to stderr, and only with the table: the JSON output stays one document.
std::function<void(const std::string&)> progress_to_stderr(const BenchOptions& options) {
  return [json = options.json](const std::string& line) {
    if (!json) std::fprintf(stderr, "%s\n", line.c_str());
  };
}

int print_bench_failure(const std::string& error) {
  std::fprintf(stderr, "shmbus bench: %s\n", error.c_str());
  return 1;
}

// The table, or the JSON document with --json (with the run's metadata and warnings); returns the
// exit code. The warnings go to stderr either way: they do not change the exit code, since the
// figures were measured, only less trustworthy.
template <class Report>
int print_bench_report(const BenchOptions& options, const Report& report) {
  const bench::RunRecord record = bench::run_record(report, options.max_spread);
  for (const std::string& warning : record.warnings) {
    std::fprintf(stderr, "shmbus bench: warning: %s\n", warning.c_str());
  }
  if (options.json) {
    auto document = bench::to_json(report);
    bench::add_run_record(document, record);
    std::cout << document.dump() << std::endl;
  } else {
    std::cout << bench::format_table(report) << std::flush;
  }
  return 0;
}

// Runs the transports (shmbus first, then the baselines) and prints the report.
template <class Transport, class Run>
int run_and_print(std::vector<std::unique_ptr<Transport>> transports, const BenchOptions& options,
                  const bench::BenchConfig& config, Run run) {
  const auto progress = progress_to_stderr(options);
  auto report = run(transports, config, progress);
  return report ? print_bench_report(options, *report) : print_bench_failure(report.error());
}

// The baselines every ratio is measured against: they run even when `only` leaves them out.
bool is_reference_baseline(const std::string& name) {
  return name == "raw-shm" || name == "raw-seq";
}

// shmbus's transports, then the baselines; `only` (when given) keeps the transports it names and
// always the reference baselines. `on_request` transports (variants that measure what an option
// costs) run only when `only` names them.
template <class Transport>
std::vector<std::unique_ptr<Transport>> with_shmbus(
    std::vector<std::unique_ptr<Transport>> shmbus, std::vector<std::unique_ptr<Transport>> rest,
    const std::vector<std::string>& only,
    std::vector<std::unique_ptr<Transport>> on_request = {}) {
  std::vector<std::unique_ptr<Transport>> all = std::move(shmbus);
  const std::size_t shmbus_count = all.size();
  for (auto& t : rest) all.push_back(std::move(t));
  if (only.empty()) return all;
  all.insert(all.begin() + static_cast<std::ptrdiff_t>(shmbus_count),
             std::make_move_iterator(on_request.begin()),
             std::make_move_iterator(on_request.end()));
  std::erase_if(all, [&](const std::unique_ptr<Transport>& t) {
    const std::string name = t->name();
    return !is_reference_baseline(name) && std::find(only.begin(), only.end(), name) == only.end();
  });
  return all;
}

template <class Transport>
std::vector<std::unique_ptr<Transport>> transports_of(std::unique_ptr<Transport> first,
                                                      std::unique_ptr<Transport> second) {
  std::vector<std::unique_ptr<Transport>> v;
  v.push_back(std::move(first));
  v.push_back(std::move(second));
  return v;
}

// --policy names to policies; empty: both.
std::vector<Policy> fanout_policies(const std::vector<std::string>& names) {
  if (names.empty()) return {Policy::block, Policy::drop};
  std::vector<Policy> policies;
  for (const std::string& name : names) {
    const Policy p = name == "drop" ? Policy::drop : Policy::block;
    if (std::find(policies.begin(), policies.end(), p) == policies.end()) policies.push_back(p);
  }
  return policies;
}

int run_fanout_bench(const BenchOptions& options) {
  bench::FanoutConfig config;
  config.size = options.size;
  config.duration_s = options.duration_s;
  config.rounds = options.rounds;
  if (!options.subscribers.empty()) config.subscribers = options.subscribers;
  config.policies = fanout_policies(options.policies);
  auto report = bench::run_fanout(config, progress_to_stderr(options));
  return report ? print_bench_report(options, *report) : print_bench_failure(report.error());
}

int run_group_bench_command(const BenchOptions& options) {
  bench::GroupBenchConfig config;
  config.size = options.size;
  config.rounds = options.rounds;
  if (options.count) config.count = *options.count;
  auto report = bench::run_group_bench(config, progress_to_stderr(options));
  return report ? print_bench_report(options, *report) : print_bench_failure(report.error());
}

int run_bridge_bench_command(const BenchOptions& options) {
  bench::BridgeBenchConfig config;
  if (!options.sizes.empty()) config.sizes = options.sizes;
  if (options.count) config.count = *options.count;
  config.rate = options.rate;
  config.rounds = options.rounds;
  config.nats_url = options.nats_url;
  auto report = bench::run_bridge_bench(config, progress_to_stderr(options));
  return report ? print_bench_report(options, *report) : print_bench_failure(report.error());
}

}  // namespace

int run_journal_bench(const BenchOptions& options) {
  bench::JournalBenchConfig config;
  config.dir = options.dir;
  config.bytes = options.bytes;
  config.rounds = options.rounds;
  config.direct = !options.buffered;
  if (options.size_given) {
    config.sizes = {options.size};
    config.latency_size = std::max<std::size_t>(8, options.size);
  }
  if (options.count) config.latency_count = *options.count;
  const bench::JournalBenchResult result =
      bench::run_journal_bench(config, progress_to_stderr(options));
  return result.error.empty() ? print_bench_report(options, result.report)
                              : print_bench_failure(result.error);
}

int run_bench(const BenchOptions& options) {
  if (options.kind == "journal") return run_journal_bench(options);
  if (options.kind == "fanout") return run_fanout_bench(options);
  if (options.kind == "group") return run_group_bench_command(options);
  if (options.kind == "bridge") return run_bridge_bench_command(options);
  bench::BenchConfig config;
  config.size = options.size;
  config.rounds = options.rounds;
  config.duration_s = options.duration_s;
  if (options.count) config.count = *options.count;
  config.warmup = std::min<std::uint64_t>(config.warmup, config.count);
  if (options.kind == "pingpong") {
    // What the statistics cost: the same single-producer pingpong without the publishers'
    // counters, and with latency histograms on both subscribers.
    std::vector<std::unique_ptr<bench::PingPongTransport>> variants;
    variants.push_back(bench::shmbus_pingpong_transport(bench::ShmbusVariant{true, false, false}));
    variants.push_back(bench::shmbus_pingpong_transport(bench::ShmbusVariant{true, true, true}));
    // What the C API's calls cost: shmbus-sp's channels, through include/shmbus/shmbus.h.
    variants.push_back(bench::shmbus_c_pingpong_transport());
    return run_and_print(with_shmbus(transports_of(bench::shmbus_pingpong_transport(false),
                                                   bench::shmbus_pingpong_transport(true)),
                                     bench::baseline_pingpong_transports(), options.only,
                                     std::move(variants)),
                         options, config, [](auto& t, auto& c, auto& p) {
                           return bench::run_pingpong(t, c, p);
                         });
  }
  // Batched (a claim per batch, a poll per batch), then one message at a time.
  auto shmbus = transports_of(bench::shmbus_throughput_transport(false),
                              bench::shmbus_throughput_transport(true));
  shmbus.push_back(bench::shmbus_single_message_transport(false));
  shmbus.push_back(bench::shmbus_single_message_transport(true));
  return run_and_print(with_shmbus(std::move(shmbus), bench::baseline_throughput_transports(),
                                   options.only),
                       options, config, [](auto& t, auto& c, auto& p) {
                         return bench::run_throughput(t, c, p);
                       });
}

void add_bench_command(CLI::App& app) {
  auto options = std::make_shared<BenchOptions>();
  CLI::App* cmd = app.add_subcommand(
      "bench", "Measure shmbus against raw shared memory, a pipe, a Unix socket and a Boost "
               "message queue, two processes pinned to different cores, in one run");
  cmd->add_option("kind", options->kind,
                  "pingpong (round-trip latency), throughput, journal (the journaler against "
                  "the disk's O_DIRECT bandwidth, and latency with and without it), fanout "
                  "(one publisher, N waiting subscribers), or group (consumer groups of 1 and 2 "
                  "member processes, acking each record or each poll, against a block "
                  "subscriber), or bridge (a channel through bridge out, a JetStream stream and "
                  "bridge in into another channel: throughput and paced latency)")
      ->required()
      ->check(CLI::IsMember({"pingpong", "throughput", "journal", "fanout", "group", "bridge"}));
  cmd->add_option("--size", options->sizes,
                  "Message bytes, sequence number included (>= 8); journal: one size instead of "
                  "64 and 1024; bridge: sizes, e.g. 64,1024 (the default; >= 16 each)")
      ->delimiter(',')
      ->transform(byte_size_in(8, 1 << 20));
  cmd->add_option("--count", options->count,
                  "pingpong: timed round trips per round (default 200000); journal: messages per "
                  "latency round (default 100000); group: records per round (default 1000000); "
                  "bridge: records per run (default 50000)")
      ->transform(whole_number_in(1, 1'000'000'000));
  cmd->add_option("--dir", options->dir, "journal: directory to write in (default /var/tmp)");
  cmd->add_option("--bytes", options->bytes, "journal: journal bytes per throughput round")
      ->transform(byte_size_in(1 << 20, std::uint64_t{1} << 40));
  cmd->add_flag("--buffered", options->buffered, "journal: the journaler without O_DIRECT");
  cmd->add_option("--duration", options->duration_s,
                  "throughput, fanout: seconds the producer streams per round")
      ->check(real_number_in(0.01, 3600.0));
  cmd->add_option("--subscribers", options->subscribers,
                  "fanout: subscriber counts, e.g. 1,8,64 (default 1,8,64,256; 1 always runs, "
                  "as the reference of the ratios)")
      ->delimiter(',')
      ->transform(whole_number_in(1, UINT32_MAX));  // the channel says how many it takes
  cmd->add_option("--policy", options->policies,
                  "fanout: block and/or drop (repeatable; default both)")
      ->check(CLI::IsMember({"block", "drop"}));
  cmd->add_option("--rate", options->rate,
                  "bridge: records per second of the paced (latency) runs (default 10000)")
      ->check(real_number_in(1.0, 1e7));
  cmd->add_option("--nats", options->nats_url,
                  "bridge: the NATS server's URL (nats://host:port, JetStream enabled); default: "
                  "start nats-server -js on 127.0.0.1 in a temporary directory");
  cmd->add_option("--rounds", options->rounds,
                  "Interleaved rounds; each figure is the median over them")
      ->transform(whole_number_in(1, 99));
  cmd->add_option("--only", options->only,
                  "Run only these transports (repeatable; raw-shm, and for throughput raw-seq, "
                  "always run): shmbus, shmbus-sp, pipe, unix-socket, boost-mq; for throughput "
                  "only, shmbus-single and shmbus-sp-single (one message per publish and per "
                  "poll); and, for pingpong only, shmbus-sp-nocounters (publishers keep no "
                  "counters), shmbus-sp-hist (subscribers record latency histograms) and "
                  "shmbus-c (shmbus-sp through the C API, include/shmbus/shmbus.h), which "
                  "run only when named")
      ->check(CLI::IsMember({"shmbus", "shmbus-sp", "raw-shm", "raw-seq", "pipe", "unix-socket",
                             "boost-mq", "shmbus-single", "shmbus-sp-single",
                             "shmbus-sp-nocounters", "shmbus-sp-hist", "shmbus-c"}));
  cmd->add_option("--max-spread", options->max_spread,
                  "Warn (stderr, and the JSON's warnings) when a figure's rounds differ by more "
                  "than this fraction of its median, (max - min) / median; max_ns is never "
                  "warned on (default 0.25)")
      ->check(real_number_in(0.0, 1000.0));
  cmd->add_flag("--json", options->json,
                "One JSON document on stdout instead of a table, with the run's metadata, "
                "each figure's spread over the rounds, the latency distributions and warnings");
  cmd->callback([options] {
    if (options->sizes.size() > 1 && options->kind != "bridge") {
      throw CLI::ValidationError("--size", "takes one size, except for bench bridge");
    }
    if (!options->sizes.empty()) {
      options->size = options->sizes.front();
      options->size_given = true;
    }
    const int code = run_bench(*options);
    if (code != 0) throw CLI::RuntimeError(code);
  });
}

}  // namespace shmbus::tools
