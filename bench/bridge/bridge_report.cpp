#include "bench/bridge/bridge_report.hpp"

#include <fmt/format.h>

#include <nlohmann/json.hpp>

namespace shmbus::bench {

namespace {

std::string microseconds(std::uint64_t ns) { return fmt::format("{:.1f}", double(ns) / 1e3); }

}  // namespace

std::string machine_note(const BridgeBenchReport& report) {
  std::string note = fmt::format(
      "{} actors (publisher, bridge out, nats-server, bridge in, subscriber) on {} CPU(s)",
      report.actors, report.cpus);
  if (report.cpus < static_cast<unsigned>(report.actors)) {
    note += ": they share the CPUs, so the figures include waiting for one";
  }
  if (!report.server_started) note += "; the server was given (--nats) and may run elsewhere";
  return note;
}

std::string format_table(const BridgeBenchReport& report) {
  std::string out = fmt::format(
      "bridge: publisher -> channel -> bridge out -> JetStream ({}, {}) -> bridge in -> channel "
      "-> subscriber; {} records per run, median of {} round(s); paced at {:.0f}/s\n",
      report.server_started ? "nats-server started for the run" : "given server", report.url,
      report.count, report.rounds, report.rate);
  out += "note: " + machine_note(report) + "\n";
  out += fmt::format("{:>8}{:>15}{:>10}{:>15}{:>11}{:>11}{:>11}{:>11}\n", "size", "records/s",
                     "MB/s", "paced rec/s", "p50 us", "p99 us", "p99.9 us", "max us");
  for (const BridgeBenchResult& r : report.results) {
    const LatencyStats& l = r.latency;
    out += fmt::format("{:>8}{:>15.0f}{:>10.1f}{:>15.0f}{:>11}{:>11}{:>11}{:>11}\n", r.size,
                       r.records_per_s, r.mb_per_s, r.paced_records_per_s,
                       microseconds(l.p50_ns), microseconds(l.p99_ns), microseconds(l.p999_ns),
                       microseconds(l.max_ns));
  }
  out += "records/s: as fast as the bridges take them, publisher to subscriber; latency: the "
         "paced run's receive time minus send time, every record checked by sequence and "
         "content\n";
  return out;
}

nlohmann::ordered_json to_json(const BridgeBenchReport& report) {
  nlohmann::ordered_json results = nlohmann::ordered_json::array();
  for (const BridgeBenchResult& r : report.results) {
    const LatencyStats& l = r.latency;
    results.push_back(
        {{"size", r.size},
         {"records", r.records},
         {"throughput",
          {{"records_per_s", r.records_per_s},
           {"mb_per_s", r.mb_per_s},
           {"spread", to_json(r.throughput_spread)}}},
         {"paced",
          {{"rate", report.rate},
           {"records_per_s", r.paced_records_per_s},
           {"p50_ns", l.p50_ns},
           {"p90_ns", l.p90_ns},
           {"p99_ns", l.p99_ns},
           {"p999_ns", l.p999_ns},
           {"max_ns", l.max_ns},
           {"spread", to_json(r.paced_spread)},
           {"distribution", distribution_json(r.latency_detail.distribution)}}}});
  }
  return {{"bench", "bridge"},
          {"nats", report.server_started ? "started" : "given"},
          {"url", report.url},
          {"count", report.count},
          {"rate", report.rate},
          {"rounds", report.rounds},
          {"cpus", report.cpus},
          {"actors", report.actors},
          {"note", machine_note(report)},
          {"results", std::move(results)}};
}

}  // namespace shmbus::bench
