#include "tools/demo_round_trip.hpp"

#include <sched.h>

#include <algorithm>
#include <iterator>
#include <memory>
#include <string_view>
#include <vector>

#include <fmt/format.h>

#include "bench/harness/raw_shm_pingpong.hpp"
#include "bench/harness/runner.hpp"
#include "bench/transports/shmbus_transport.hpp"
#include "tools/demo_roles.hpp"

namespace shmbus::tools {
namespace {

constexpr std::uint64_t kMaxWarmup = 10'000;
constexpr int kRounds = 3;

double ratio_to_floor(std::uint64_t value, std::uint64_t floor) {
  return floor > 0 ? static_cast<double>(value) / static_cast<double>(floor) : 0.0;
}

std::string where_it_ran(const DemoRoundTrip& rt) {
  const bench::PingPongReport& r = rt.report;
  if (r.initiator_cpu >= 0) {
    return fmt::format("Pinned: the sender on CPU {}, the echoing side on CPU {}, each spinning "
                       "on its own CPU.\n",
                       r.initiator_cpu, r.responder_cpu);
  }
  return fmt::format(
      "NOT pinned: this process may use only {} CPU, so both sides ran on it and gave it to each\n"
      "other on every empty poll (sched_yield). These figures include those context switches:\n"
      "they overstate the transport's latency. Run on a machine with two CPUs to see it.\n",
      rt.cpus_available);
}

}  // namespace

int usable_cpu_count() {
  cpu_set_t set;
  CPU_ZERO(&set);
  if (sched_getaffinity(0, sizeof(set), &set) != 0) return 1;
  return CPU_COUNT(&set);
}

tl::expected<DemoRoundTrip, std::string> measure_demo_round_trip(std::uint64_t round_trips) {
  bench::BenchConfig config;  // 64-byte messages, initiator on CPU 0, responder on CPU 1
  config.count = round_trips;
  config.warmup = std::min(round_trips, kMaxWarmup);
  config.rounds = kRounds;
  // The default channel options, as Publisher::open gives them (multi-producer), and the floor.
  std::vector<std::unique_ptr<bench::PingPongTransport>> transports;
  transports.push_back(bench::shmbus_pingpong_transport(false));
  transports.push_back(std::make_unique<bench::RawShmPingPong>());
  auto report = bench::run_pingpong(transports, config);
  if (!report) return tl::unexpected(report.error());
  DemoRoundTrip rt;
  rt.report = std::move(*report);
  rt.shmbus = rt.report.results.at(0).latency;
  rt.raw = rt.report.results.at(1).latency;
  rt.cpus_available = usable_cpu_count();
  return rt;
}

std::string demo_round_trip_text(const DemoRoundTrip& rt) {
  const bench::PingPongReport& r = rt.report;
  std::string out = fmt::format(
      "--- the transport's own latency: a spinning round trip ---\n"
      "Two fresh processes, both busy-polling: one publishes a {}-byte message, the other polls\n"
      "it and publishes it back. shmbus (a default channel each way) beside raw shared memory\n"
      "(one cache line passed back and forth: the floor of any transport), in the same run.\n"
      "{} timed round trips after {} untimed, median of {} rounds.\n{}\n",
      r.size, r.count, r.warmup, r.rounds, where_it_ran(rt));
  const auto row = [&](std::string_view name, const bench::LatencyStats& l) {
    fmt::format_to(std::back_inserter(out), "  {:<18} {:>9} {:>9} {:>9} {:>11}\n", name,
                   l.p50_ns, l.p99_ns, l.p999_ns, l.max_ns);
  };
  fmt::format_to(std::back_inserter(out), "  {:<18} {:>9} {:>9} {:>9} {:>11}\n", "round trip, ns",
                 "p50", "p99", "p99.9", "max");
  row("shmbus", rt.shmbus);
  row("raw shared memory", rt.raw);
  fmt::format_to(std::back_inserter(out), "  {:<18} {:>8.2f}x {:>8.2f}x {:>8.2f}x {:>10.2f}x\n",
                 "shmbus / raw", ratio_to_floor(rt.shmbus.p50_ns, rt.raw.p50_ns),
                 ratio_to_floor(rt.shmbus.p99_ns, rt.raw.p99_ns),
                 ratio_to_floor(rt.shmbus.p999_ns, rt.raw.p999_ns),
                 ratio_to_floor(rt.shmbus.max_ns, rt.raw.max_ns));
  out +=
      "\nA round trip is two messages, one each way. The max is the one time something else took\n"
      "a CPU (an interrupt, another process), for both alike. `shmbus bench pingpong` measures\n"
      "the same against more transports; docs/performance.md has the method and the figures.\n";
  return out;
}

std::string demo_latency_caveat(std::size_t processes, int cpus) {
  return fmt::format(
      "What these latencies include: publish to delivery, in {} processes (and this one,\n"
      "printing) sharing {} CPU{}. The publisher sends a burst about every millisecond and\n"
      "sleeps; the subscribers spin 50 us, then sleep on a futex until the next burst. So the\n"
      "figures include the kernel waking a sleeping process, waiting for a CPU another process\n"
      "holds (a time slice lasts milliseconds), and for drop and spill their deliberate {} ms\n"
      "pauses (spill then reads the journal files). That is scheduling, not the transport: the\n"
      "end of the demo measures the transport alone, two spinning processes on CPUs of their own.\n",
      processes, cpus, cpus == 1 ? "" : "s", kDropPause.count());
}

}  // namespace shmbus::tools
