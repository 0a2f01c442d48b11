// The bridges section of the stat page (tools/observe_internal.hpp): a channel's NATS JetStream
// bridges (read_bridge_stats) as text blocks for stat_text and as the JSON array of stat_json.
// Their Prometheus families are in stat_prometheus.cpp, with the exposition builder.
#include <algorithm>
#include <cstdint>
#include <string>
#include <vector>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "tools/format.hpp"
#include "tools/observe_internal.hpp"

namespace shmbus::tools::detail {

namespace {

std::string count_words(std::uint64_t n) { return human_count(static_cast<double>(n)); }

std::string state_words(const BridgeStats& b) {
  if (b.last_error.empty()) return b.state;
  return fmt::format("{}, last error: {}", b.state, b.last_error);
}

std::string process_words(const BridgeStats& b, std::int64_t sampled_ns) {
  if (b.pid == 0) return fmt::format("none, last heartbeat {}", human_age(sampled_ns, b.heartbeat_ns));
  return fmt::format("pid {}, {}, last heartbeat {}", b.pid, b.alive ? "alive" : "dead",
                     human_age(sampled_ns, b.heartbeat_ns));
}

std::string lag_words(const BridgeStats& b) {
  return fmt::format("{} records, {}", count_words(b.lag_records),
                     human_duration_ns(static_cast<std::int64_t>(
                         std::min<std::uint64_t>(b.lag_ns, INT64_MAX))));
}

std::vector<StatField> bridge_fields(const BridgeStats& b, std::int64_t sampled_ns) {
  std::vector<StatField> out;
  if (!b.problem.empty()) {
    out.push_back({"DAMAGED", b.problem, true});
    return out;
  }
  out.push_back({"state", state_words(b)});
  out.push_back({"process", process_words(b, sampled_ns)});
  out.push_back({"nats", fmt::format("{}, stream {}, subject {}, host {}", b.url, b.stream,
                                     b.subject, b.host)});
  if (b.role == "out") {
    out.push_back({"progress",
                   fmt::format("acked through seq {}, head seq {}, {} published, {} in flight "
                               "of a window of {}",
                               b.acked_through, b.head_sequence, count_words(b.published),
                               count_words(b.in_flight), count_words(b.window))});
    out.push_back({"recovery", fmt::format("{} resends, {} recoveries, {} gaps ({} sequences)",
                                           count_words(b.resends), count_words(b.recoveries),
                                           count_words(b.gaps), count_words(b.gap_sequences))});
  } else {
    out.push_back({"progress",
                   fmt::format("{} applied, last origin {:016x} seq {}, stream seq {}",
                               count_words(b.applied), b.origin_incarnation, b.origin_seq,
                               b.stream_seq)});
    out.push_back({"skipped",
                   fmt::format("{} duplicates, {} from this host, {} invalid",
                               count_words(b.duplicates), count_words(b.own_skipped),
                               count_words(b.invalid))});
    out.push_back({"losses", fmt::format("{} gaps ({} sequences), {} discarded by the stream",
                                         count_words(b.gaps), count_words(b.gap_sequences),
                                         count_words(b.stream_gaps))});
  }
  out.push_back({"lag", lag_words(b)});
  return out;
}

}  // namespace

std::string bridges_section(const std::vector<BridgeStats>& bridges, std::int64_t sampled_ns) {
  if (bridges.empty()) return {};
  std::string out = fmt::format("\nbridges ({})\n", bridges.size());
  for (const BridgeStats& b : bridges) {
    out += fmt::format("  bridge {} '{}'\n", b.role, b.name);
    for (const StatField& f : bridge_fields(b, sampled_ns)) {
      out += fmt::format("    {:<10} {}\n", f.label, f.text);
    }
  }
  return out;
}

nlohmann::ordered_json bridges_json(const std::vector<BridgeStats>& bridges) {
  using Json = nlohmann::ordered_json;
  Json all = Json::array();
  for (const BridgeStats& b : bridges) {
    Json j;
    j["role"] = b.role;
    j["name"] = b.name;
    j["stream"] = b.stream;
    j["subject"] = b.subject;
    j["url"] = b.url;
    j["host"] = b.host;
    j["state"] = b.state;
    j["last_error"] = b.last_error;
    j["pid"] = b.pid;
    j["alive"] = b.alive;
    j["heartbeat_ns"] = b.heartbeat_ns;
    j["window"] = b.window;
    j["in_flight"] = b.in_flight;
    j["acked_through"] = b.acked_through;
    j["head_sequence"] = b.head_sequence;
    j["published"] = b.published;
    j["applied"] = b.applied;
    j["resends"] = b.resends;
    j["recoveries"] = b.recoveries;
    j["gaps"] = b.gaps;
    j["gap_sequences"] = b.gap_sequences;
    j["duplicates"] = b.duplicates;
    j["own_skipped"] = b.own_skipped;
    j["stream_gaps"] = b.stream_gaps;
    j["invalid"] = b.invalid;
    j["lag_records"] = b.lag_records;
    j["lag_ns"] = b.lag_ns;
    j["origin_incarnation"] = b.origin_incarnation;
    j["origin_seq"] = b.origin_seq;
    j["stream_seq"] = b.stream_seq;
    j["problem"] = b.problem.empty() ? Json(nullptr) : Json(b.problem);
    all.push_back(std::move(j));
  }
  return all;
}

}  // namespace shmbus::tools::detail
