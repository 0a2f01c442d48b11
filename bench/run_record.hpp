// What every `shmbus bench` JSON document carries besides its figures: the run's metadata and the
// warnings raised because its rounds disagree (bench/harness/run_metadata.hpp and
// bench/harness/round_spread.hpp), for each of the six benches.
//
//   const RunRecord record = run_record(report, max_spread);
//   for (const std::string& w : record.warnings) std::cerr << "warning: " << w << '\n';
//   nlohmann::ordered_json doc = to_json(report);
//   add_run_record(doc, record);  // "metadata": {...}, "warnings": [...]
#pragma once

#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "bench/bridge/bridge_report.hpp"
#include "bench/fanout/fanout_report.hpp"
#include "bench/group/group_report.hpp"
#include "bench/harness/report.hpp"
#include "bench/harness/round_spread.hpp"
#include "bench/harness/run_metadata.hpp"
#include "bench/journal/journal_bench.hpp"

namespace shmbus::bench {

struct RunRecord {
  RunMetadata metadata;
  std::vector<std::string> warnings;  // spread_warnings of every measured thing, in report order
};

// Every measured thing of a report with its figures' spreads, labelled for the warnings.
std::vector<LabelledSpreads> round_spreads(const PingPongReport& report);
std::vector<LabelledSpreads> round_spreads(const ThroughputReport& report);
std::vector<LabelledSpreads> round_spreads(const FanoutReport& report);
std::vector<LabelledSpreads> round_spreads(const JournalBenchReport& report);
std::vector<LabelledSpreads> round_spreads(const GroupBenchReport& report);
std::vector<LabelledSpreads> round_spreads(const BridgeBenchReport& report);

// The metadata of the run that produced `report` (just now, on this machine) and its warnings.
RunRecord run_record(const PingPongReport& report, double max_spread);
RunRecord run_record(const ThroughputReport& report, double max_spread);
RunRecord run_record(const FanoutReport& report, double max_spread);
RunRecord run_record(const JournalBenchReport& report, double max_spread);
RunRecord run_record(const GroupBenchReport& report, double max_spread);
RunRecord run_record(const BridgeBenchReport& report, double max_spread);

// Adds "metadata" and "warnings" (an array, empty when the rounds agree) to a report's document.
template <class Json>
void add_run_record(Json& document, const RunRecord& record) {
  document["metadata"] = Json::parse(to_json(record.metadata).dump());
  document["warnings"] = record.warnings;
}

}  // namespace shmbus::bench
