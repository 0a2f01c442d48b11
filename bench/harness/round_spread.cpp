#include "bench/harness/round_spread.hpp"

#include <algorithm>

#include <fmt/format.h>

#include <nlohmann/json.hpp>

namespace shmbus::bench {

namespace {

// Whole numbers for nanoseconds and message rates, a few digits for small figures.
std::string figure_text(double value) {
  return value >= 1000 ? fmt::format("{:.0f}", value) : fmt::format("{:.4g}", value);
}

}  // namespace

FigureSpread spread_of(std::string figure, std::span<const double> rounds) {
  FigureSpread s;
  s.figure = std::move(figure);
  if (rounds.empty()) return s;
  std::vector<double> sorted(rounds.begin(), rounds.end());
  std::sort(sorted.begin(), sorted.end());
  const std::size_t n = sorted.size();
  s.min = sorted.front();
  s.max = sorted.back();
  s.median = (sorted[(n - 1) / 2] + sorted[n / 2]) / 2;
  s.spread = s.median > 0 ? (s.max - s.min) / s.median : 0;
  return s;
}

std::vector<FigureSpread> latency_spreads(std::span<const LatencyStats> rounds) {
  std::vector<FigureSpread> spreads;
  auto add = [&](const char* figure, std::uint64_t LatencyStats::*field) {
    std::vector<double> values;
    for (const LatencyStats& r : rounds) values.push_back(double(r.*field));
    spreads.push_back(spread_of(figure, values));
  };
  add("p50_ns", &LatencyStats::p50_ns);
  add("p90_ns", &LatencyStats::p90_ns);
  add("p99_ns", &LatencyStats::p99_ns);
  add("p999_ns", &LatencyStats::p999_ns);
  add("max_ns", &LatencyStats::max_ns);
  return spreads;
}

std::vector<std::string> spread_warnings(std::span<const LabelledSpreads> measured,
                                         double max_spread) {
  std::vector<std::string> warnings;
  for (const LabelledSpreads& m : measured) {
    std::string figures;
    for (const FigureSpread& f : m.figures) {
      if (f.figure == "max_ns" || !(f.spread > max_spread)) continue;
      figures += fmt::format("{}{} {:.0f}% (min {}, median {}, max {})",
                             figures.empty() ? "" : "; ", f.figure, f.spread * 100,
                             figure_text(f.min), figure_text(f.median), figure_text(f.max));
    }
    if (figures.empty()) continue;
    warnings.push_back(fmt::format(
        "{}: rounds disagree by more than the {:.0f}% of the median --max-spread allows: {}; "
        "rerun on a quieter machine",
        m.label, max_spread * 100, figures));
  }
  return warnings;
}

nlohmann::ordered_json to_json(std::span<const FigureSpread> spreads) {
  nlohmann::ordered_json j = nlohmann::ordered_json::object();
  for (const FigureSpread& f : spreads) j[f.figure] = f.spread;
  return j;
}

}  // namespace shmbus::bench
