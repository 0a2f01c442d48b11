#include "bench/harness/report.hpp"

#include <algorithm>

#include <fmt/format.h>

#include <nlohmann/json.hpp>

namespace shmbus::bench {

namespace {

constexpr const char* kBaseline = "raw-shm";
// Throughput only: one cache line per message, the floor of a shared-memory stream.
constexpr const char* kSeqBaseline = "raw-seq";

template <class Result>
const Result* find_baseline(const std::vector<Result>& results, const char* name = kBaseline) {
  for (const Result& r : results) {
    if (r.transport == name) return &r;
  }
  return nullptr;
}

double ratio(double value, double base) { return base > 0 ? value / base : 0.0; }

std::string ratio_cell(const void* baseline, double value, double base) {
  return baseline != nullptr ? fmt::format("{:.2f}x", ratio(value, base)) : "-";
}

std::string cpus(const char* first_role, int first, const char* second_role, int second) {
  if (first < 0) return "not pinned (one CPU)";
  return fmt::format("{} CPU {}, {} CPU {}", first_role, first, second_role, second);
}

// The transport column: as wide as the longest name plus a gap, at least 14.
template <class Result>
std::size_t name_width(const std::vector<Result>& results) {
  std::size_t w = 12;
  for (const Result& r : results) w = std::max(w, r.transport.size());
  return w + 2;
}

}  // namespace

std::string format_table(const PingPongReport& report) {
  const PingPongResult* base = find_baseline(report.results);
  std::string out = fmt::format(
      "pingpong: {} B messages, {} timed round trips after {} warm-up, median of {} round(s), {}\n",
      report.size, report.count, report.warmup, report.rounds,
      cpus("initiator", report.initiator_cpu, "responder", report.responder_cpu));
  const std::size_t w = name_width(report.results);
  out += fmt::format("{:<{}}{:>10}{:>10}{:>10}{:>10}{:>12}{:>10}{:>12}\n", "transport", w,
                     "p50 ns", "p90 ns", "p99 ns", "p99.9 ns", "max ns", "p50/raw", "p99.9/raw");
  for (const PingPongResult& r : report.results) {
    const LatencyStats& l = r.latency;
    out += fmt::format(
        "{:<{}}{:>10}{:>10}{:>10}{:>10}{:>12}{:>10}{:>12}\n", r.transport, w, l.p50_ns, l.p90_ns,
        l.p99_ns, l.p999_ns, l.max_ns,
        ratio_cell(base, double(l.p50_ns), base ? double(base->latency.p50_ns) : 0),
        ratio_cell(base, double(l.p999_ns), base ? double(base->latency.p999_ns) : 0));
  }
  return out;
}

std::string format_table(const ThroughputReport& report) {
  const ThroughputResult* base = find_baseline(report.results);
  const ThroughputResult* seq_base = find_baseline(report.results, kSeqBaseline);
  std::string out = fmt::format(
      "throughput: {} B messages, {:g} s per round, median of {} round(s), {}\n", report.size,
      report.duration_s, report.rounds,
      cpus("producer", report.producer_cpu, "consumer", report.consumer_cpu));
  const std::size_t w = name_width(report.results);
  out += fmt::format("{:<{}}{:>14}{:>12}{:>10}{:>11}\n", "transport", w, "msgs/s", "MB/s", "x raw",
                     "x raw-seq");
  for (const ThroughputResult& r : report.results) {
    out += fmt::format("{:<{}}{:>13.3f}M{:>12.1f}{:>10}{:>11}\n", r.transport, w,
                       r.msgs_per_s / 1e6, r.mb_per_s,
                       ratio_cell(base, r.msgs_per_s, base ? base->msgs_per_s : 0),
                       ratio_cell(seq_base, r.msgs_per_s, seq_base ? seq_base->msgs_per_s : 0));
  }
  return out;
}

nlohmann::ordered_json to_json(const PingPongReport& report) {
  const PingPongResult* base = find_baseline(report.results);
  nlohmann::ordered_json results = nlohmann::ordered_json::array();
  for (const PingPongResult& r : report.results) {
    const LatencyStats& l = r.latency;
    nlohmann::ordered_json row = {{"transport", r.transport}, {"p50_ns", l.p50_ns},
                          {"p90_ns", l.p90_ns},       {"p99_ns", l.p99_ns},
                          {"p999_ns", l.p999_ns},     {"max_ns", l.max_ns}};
    if (base != nullptr) {
      row["ratio_p50_to_raw"] = ratio(double(l.p50_ns), double(base->latency.p50_ns));
      row["ratio_p999_to_raw"] = ratio(double(l.p999_ns), double(base->latency.p999_ns));
    }
    row["spread"] = to_json(r.detail.spread);
    row["distribution"] = distribution_json(r.detail.distribution);
    results.push_back(std::move(row));
  }
  return {{"bench", "pingpong"},
          {"size", report.size},
          {"count", report.count},
          {"rounds", report.rounds},
          {"warmup", report.warmup},
          {"initiator_cpu", report.initiator_cpu},
          {"responder_cpu", report.responder_cpu},
          {"results", std::move(results)}};
}

nlohmann::ordered_json to_json(const ThroughputReport& report) {
  const ThroughputResult* base = find_baseline(report.results);
  const ThroughputResult* seq_base = find_baseline(report.results, kSeqBaseline);
  nlohmann::ordered_json results = nlohmann::ordered_json::array();
  for (const ThroughputResult& r : report.results) {
    nlohmann::ordered_json row = {{"transport", r.transport}, {"msgs_per_s", r.msgs_per_s},
                          {"mb_per_s", r.mb_per_s},   {"count", r.messages},
                          {"seconds", r.seconds}};
    if (base != nullptr) row["ratio_to_raw"] = ratio(r.msgs_per_s, base->msgs_per_s);
    if (seq_base != nullptr) row["ratio_to_raw_seq"] = ratio(r.msgs_per_s, seq_base->msgs_per_s);
    row["spread"] = to_json(r.spread);
    results.push_back(std::move(row));
  }
  const std::uint64_t count = report.results.empty() ? 0 : report.results.front().messages;
  return {{"bench", "throughput"},
          {"size", report.size},
          {"count", count},
          {"rounds", report.rounds},
          {"duration_s", report.duration_s},
          {"producer_cpu", report.producer_cpu},
          {"consumer_cpu", report.consumer_cpu},
          {"results", std::move(results)}};
}

}  // namespace shmbus::bench
