#include "bench/harness/runner.hpp"

#include <time.h>

#include <atomic>
#include <cmath>
#include <new>
#include <stdexcept>
#include <vector>

#include <fmt/format.h>

#include "bench/harness/shared_mapping.hpp"
#include "bench/harness/spin.hpp"
#include "bench/harness/stats.hpp"

namespace shmbus::bench {

namespace {

// What the two sides of one round share with the parent, in one MAP_SHARED mapping made before
// fork. The results are written by a child before it exits and read by the parent after reaping
// it (exit and wait order them), so only the start flag, read while the peer runs, is atomic.
struct Control {
  alignas(64) std::atomic<std::uint32_t> responder_ready{0};  // set once the receiving side polls
  alignas(64) LatencyRound latency;                            // pingpong: from the initiator
  std::uint64_t messages = 0;                                  // throughput: from the consumer
  std::uint64_t elapsed_ns = 0;
  ErrorSlot initiator_error{};
  ErrorSlot responder_error{};
};

// Checks the clock once per this many messages: a read costs ~20 ns, a fast message ~25 ns.
constexpr std::uint64_t kProducerBatch = 256;

std::uint64_t now_ns() {
  timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);  // vDSO: no system call
  return std::uint64_t(ts.tv_sec) * 1'000'000'000u + std::uint64_t(ts.tv_nsec);
}

void wait_until_responder_ready(const Control& control) {
  // acquire: the responder attached (as_responder) before it set the flag.
  while (control.responder_ready.load(std::memory_order_acquire) == 0) spin_relax();
}

void mark_responder_ready(Control& control) {
  // release: the responder's setup (subscriptions, mappings) happens before the initiator starts.
  control.responder_ready.store(1, std::memory_order_release);
}

[[noreturn]] void sequence_error(const char* what, std::uint64_t expected, std::uint64_t got) {
  throw std::runtime_error(fmt::format("{}: expected sequence number {}, got {}", what, expected,
                                       got));
}

void pingpong_responder(PingPongTransport& t, const BenchConfig& config, Control& control) {
  t.as_responder();
  mark_responder_ready(control);
  const std::uint64_t total = config.warmup + config.count;
  for (std::uint64_t seq = 0; seq < total; ++seq) {
    const std::uint64_t got = t.receive();
    if (got != seq) sequence_error("message received", seq, got);
    t.send_back(got);
  }
  t.detach();
}

void pingpong_initiator(PingPongTransport& t, const BenchConfig& config, Control& control) {
  t.as_initiator();
  std::vector<std::uint64_t> samples(config.count);  // allocated and touched before any timing
  wait_until_responder_ready(control);
  std::uint64_t seq = 0;
  for (; seq < config.warmup; ++seq) {
    t.send(seq);
    const std::uint64_t got = t.receive_back();
    if (got != seq) sequence_error("echo received during warm-up", seq, got);
  }
  for (std::uint64_t i = 0; i < config.count; ++i, ++seq) {
    const std::uint64_t start = now_ns();
    t.send(seq);
    const std::uint64_t got = t.receive_back();
    samples[i] = now_ns() - start;
    if (got != seq) sequence_error("echo received", seq, got);
  }
  t.detach();
  control.latency = measure_latency(samples);
}

void throughput_consumer(ThroughputTransport& t, Control& control) {
  t.as_consumer();
  mark_responder_ready(control);
  std::uint64_t got = t.receive();
  const std::uint64_t start = now_ns();
  std::uint64_t expected = 0;
  // The clock starts at the first message, so the rate covers messages 1..N-1 and the end marker
  // (N messages' worth) over the measured span; the one-message bias is negligible.
  while (got != kEndMarker) {
    if (got != expected) sequence_error("stream received (lost or reordered message)", expected,
                                        got);
    ++expected;
    got = t.receive();
  }
  control.elapsed_ns = now_ns() - start;
  control.messages = expected;
  t.detach();
}

void throughput_producer(ThroughputTransport& t, const BenchConfig& config, Control& control) {
  t.as_producer();
  wait_until_responder_ready(control);
  const std::uint64_t end = now_ns() + std::uint64_t(config.duration_s * 1e9);
  std::uint64_t seq = 0;
  do {
    for (std::uint64_t k = 0; k < kProducerBatch; ++k) t.send(seq++);
  } while (now_ns() < end);
  t.send(kEndMarker);
  t.detach();
}

// One round: prepare in the parent, fork the receiving side then the sending side, wait for both,
// and clean up whatever happened. Returns an empty string or what went wrong.
template <class Transport, class Receiver, class Sender>
std::string run_round(Transport& t, const BenchConfig& config, const CpuPlan& cpus,
                      Control& control, const char* receiver_role, const char* sender_role,
                      const Receiver& receiver, const Sender& sender) {
  std::string failure;
  try {
    t.prepare(config);
    Child first = spawn_child(receiver_role, cpus.responder_cpu, cpus.shared_cpu,
                              control.responder_error, receiver);
    Child second;
    try {
      second = spawn_child(sender_role, cpus.initiator_cpu, cpus.shared_cpu,
                           control.initiator_error, sender);
    } catch (...) {
      kill_child(first);
      throw;
    }
    failure = wait_for_children(first, control.responder_error, second, control.initiator_error,
                                config.timeout_s);
  } catch (const std::exception& e) {
    failure = e.what();
  }
  try {
    t.cleanup();
  } catch (const std::exception& e) {
    if (failure.empty()) failure = fmt::format("cleanup: {}", e.what());
  }
  return failure;
}

template <class Transport>
std::string check_transports(std::span<const std::unique_ptr<Transport>> transports) {
  if (transports.empty()) return "no transport to run";
  for (const auto& t : transports) {
    if (!t) return "a null transport was given";
  }
  return {};
}

}  // namespace

std::string validate(const BenchConfig& config) {
  if (config.size < kSeqBytes) {
    return fmt::format("message size {} is too small: at least {} bytes carry the sequence number",
                       config.size, kSeqBytes);
  }
  if (config.count == 0) return "count must be at least 1";
  if (config.rounds < 1) return "rounds must be at least 1";
  if (!(config.duration_s > 0) || !std::isfinite(config.duration_s)) {
    return "duration must be a positive number of seconds";
  }
  if (!(config.timeout_s > 0)) return "timeout must be a positive number of seconds";
  return {};
}

tl::expected<LatencyRound, std::string> run_pingpong_round(PingPongTransport& transport,
                                                           const BenchConfig& config,
                                                           const CpuPlan& cpus) {
  SharedMapping shared(sizeof(Control));
  Control& control = *new (shared.data()) Control{};
  std::string failure = run_round(
      transport, config, cpus, control, "responder", "initiator",
      [&] { pingpong_responder(transport, config, control); },
      [&] { pingpong_initiator(transport, config, control); });
  if (!failure.empty()) return tl::unexpected(failure);
  return control.latency;
}

tl::expected<ThroughputResult, std::string> run_throughput_round(ThroughputTransport& transport,
                                                                 const BenchConfig& config,
                                                                 const CpuPlan& cpus) {
  SharedMapping shared(sizeof(Control));
  Control& control = *new (shared.data()) Control{};
  std::string failure = run_round(
      transport, config, cpus, control, "consumer", "producer",
      [&] { throughput_consumer(transport, control); },
      [&] { throughput_producer(transport, config, control); });
  if (!failure.empty()) return tl::unexpected(failure);
  if (control.messages == 0 || control.elapsed_ns == 0) {
    return tl::unexpected(std::string("consumer: no message arrived before the end marker"));
  }
  ThroughputResult result;
  result.transport = transport.name();
  result.messages = control.messages;
  result.seconds = double(control.elapsed_ns) / 1e9;
  result.msgs_per_s = double(control.messages) / result.seconds;
  result.mb_per_s = result.msgs_per_s * double(config.size) / 1e6;
  return result;
}

tl::expected<PingPongReport, std::string> run_pingpong(
    std::span<const std::unique_ptr<PingPongTransport>> transports, const BenchConfig& config,
    const Progress& progress) {
  if (std::string e = validate(config); !e.empty()) return tl::unexpected(e);
  if (std::string e = check_transports(transports); !e.empty()) return tl::unexpected(e);
  const CpuPlan cpus = plan_cpus(config.initiator_cpu, config.responder_cpu);

  std::vector<std::vector<LatencyRound>> rounds(transports.size());
  for (int round = 1; round <= config.rounds; ++round) {
    for (std::size_t i = 0; i < transports.size(); ++i) {
      const std::string name = transports[i]->name();
      if (progress) progress(fmt::format("pingpong round {}/{}: {}", round, config.rounds, name));
      try {
        auto stats = run_pingpong_round(*transports[i], config, cpus);
        if (!stats) {
          return tl::unexpected(fmt::format("pingpong {}, round {}/{}: {}", name, round,
                                            config.rounds, stats.error()));
        }
        rounds[i].push_back(*stats);
      } catch (const std::exception& e) {  // e.g. mapping the control page failed
        return tl::unexpected(fmt::format("pingpong {}: {}", name, e.what()));
      }
    }
  }

  PingPongReport report;
  report.size = config.size;
  report.count = config.count;
  report.warmup = config.warmup;
  report.rounds = config.rounds;
  report.initiator_cpu = cpus.initiator_cpu;
  report.responder_cpu = cpus.responder_cpu;
  for (std::size_t i = 0; i < transports.size(); ++i) {
    LatencySummary summary = summarize(rounds[i]);
    report.results.push_back(
        {transports[i]->name(), summary.median, std::move(summary.detail)});
  }
  return report;
}

tl::expected<ThroughputReport, std::string> run_throughput(
    std::span<const std::unique_ptr<ThroughputTransport>> transports, const BenchConfig& config,
    const Progress& progress) {
  if (std::string e = validate(config); !e.empty()) return tl::unexpected(e);
  if (std::string e = check_transports(transports); !e.empty()) return tl::unexpected(e);
  const CpuPlan cpus = plan_cpus(config.initiator_cpu, config.responder_cpu);

  std::vector<std::vector<ThroughputResult>> rounds(transports.size());
  for (int round = 1; round <= config.rounds; ++round) {
    for (std::size_t i = 0; i < transports.size(); ++i) {
      const std::string name = transports[i]->name();
      if (progress) {
        progress(fmt::format("throughput round {}/{}: {}", round, config.rounds, name));
      }
      try {
        auto result = run_throughput_round(*transports[i], config, cpus);
        if (!result) {
          return tl::unexpected(fmt::format("throughput {}, round {}/{}: {}", name, round,
                                            config.rounds, result.error()));
        }
        rounds[i].push_back(std::move(*result));
      } catch (const std::exception& e) {
        return tl::unexpected(fmt::format("throughput {}: {}", name, e.what()));
      }
    }
  }

  ThroughputReport report;
  report.size = config.size;
  report.duration_s = config.duration_s;
  report.rounds = config.rounds;
  report.producer_cpu = cpus.initiator_cpu;
  report.consumer_cpu = cpus.responder_cpu;
  for (auto& per_round : rounds) {
    std::vector<double> rates;
    for (const ThroughputResult& r : per_round) rates.push_back(r.msgs_per_s);
    ThroughputResult median = median_throughput(per_round);
    median.spread = {spread_of("msgs_per_s", rates)};
    report.results.push_back(std::move(median));
  }
  return report;
}

}  // namespace shmbus::bench
