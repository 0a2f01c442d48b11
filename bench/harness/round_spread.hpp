// How far a figure moved between the rounds of a bench, and the warnings that say a run is not to
// be trusted because its rounds disagree.
//
// The spread of a figure is (max - min) / median over the rounds: 0 for one round or identical
// rounds, 0.25 when the rounds span a quarter of the median. Every figure gets one (the JSON
// "spread" objects); a warning is raised for a figure whose spread exceeds the allowed one, except
// for max_ns: the single largest sample of a round is one event, so its spread says nothing about
// the machine's quietness and warning on it would make every run warn.
#pragma once

#include <span>
#include <string>
#include <vector>

#include <nlohmann/json_fwd.hpp>

#include "bench/harness/latency_stats.hpp"

namespace shmbus::bench {

// The spread --max-spread allows unless told otherwise.
inline constexpr double kDefaultMaxSpread = 0.25;

struct FigureSpread {
  std::string figure;  // the JSON name of the figure, e.g. "p99_ns", "msgs_per_s"
  double min = 0;
  double median = 0;  // middle value; mean of the two middle ones for an even count
  double max = 0;
  double spread = 0;  // (max - min) / median; 0 when the median is 0
};

// The spread of one figure over its per-round values (empty: all zero).
FigureSpread spread_of(std::string figure, std::span<const double> rounds);

// p50_ns, p90_ns, p99_ns, p999_ns and max_ns over the rounds, in that order.
std::vector<FigureSpread> latency_spreads(std::span<const LatencyStats> rounds);

// The figures of one measured thing (a transport, a configuration) under a label for the warnings.
struct LabelledSpreads {
  std::string label;  // e.g. "pingpong shmbus", "fanout block, 8 subscribers"
  std::vector<FigureSpread> figures;
};

// One line per measured thing that has figures (max_ns excepted) whose spread is above
// max_spread, naming the label and each such figure with its spread and its range over the rounds.
// Empty when the rounds agree.
std::vector<std::string> spread_warnings(std::span<const LabelledSpreads> measured,
                                         double max_spread);

// {"p50_ns": 0.03, ...}: each figure's spread, in the order given.
nlohmann::ordered_json to_json(std::span<const FigureSpread> spreads);

}  // namespace shmbus::bench
