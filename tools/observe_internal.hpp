// Helpers shared by the files behind tools/observe_format.hpp (observe_format.cpp, stat_json.cpp,
// stat_text.cpp, stat_watch.cpp, stat_groups.cpp, stat_bridges.cpp); not part of that header's interface.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include <nlohmann/json_fwd.hpp>

#include "tools/observe_format.hpp"

namespace shmbus::tools::detail {

// v[i], or `fallback` past the end (a rates vector shorter than the read it goes with).
template <class T>
T at_or(const std::vector<T>& v, std::size_t i, T fallback) {
  return i < v.size() ? v[i] : fallback;
}

// One "label  text" line of the stat page ("ring", "capacity 1.00 MiB, ..."), in page order.
// Flagged lines (ABANDONED, CORRUPT) are `alarm`.
struct StatField {
  std::string label;
  std::string text;
  bool alarm = false;
};
std::vector<StatField> stat_fields(const ChannelStats& stats, const ChannelRates& rates);

// A table of the stat page: the header row, then one row per entry, and each column's alignment.
struct StatTable {
  std::vector<std::vector<std::string>> rows;
  std::vector<Align> align;
};
StatTable producer_table(const ChannelStats& stats, const ChannelRates& rates);
StatTable subscriber_table(const ChannelStats& stats, const ChannelRates& rates);
// Empty (header only) when no subscriber records latency. `interval`: also the latency of the last
// interval, for subscribers whose rates carry one.
StatTable latency_table(const ChannelStats& stats, const ChannelRates& rates, bool interval);

// The headings above the tables: "producers (N attached, M alive)" or "producers: none
// attached"; "subscribers (N)" or "subscribers: none"; the latency table's title.
std::string producers_heading(const ChannelStats& stats);
std::string subscribers_heading(const ChannelStats& stats);
inline constexpr const char* kLatencyHeading = "latency, publish to delivery (within 1/64)";

// The groups section (stat_groups.cpp): "groups (N)" over one block per group, each a title line
// ("group 'risk'"), its field lines and its member table. A damaged group (GroupStats::problem)
// has a single alarm field, DAMAGED, saying what is wrong, and no member table. `sampled_ns`: the
// channel read's CLOCK_REALTIME, for the members' join ages.
std::string groups_heading(const std::vector<GroupStats>& groups);
std::string group_title(const GroupStats& group);
std::vector<StatField> group_fields(const GroupStats& group);
StatTable group_member_table(const GroupStats& group, std::int64_t sampled_ns);

// The bridges section (stat_bridges.cpp): "bridges (N)" over one block per bridge, a title line
// ("bridge out 'ORDERS'") and its field lines; empty when there is none. A damaged bridge
// (BridgeStats::problem) has a single alarm field, DAMAGED. `sampled_ns`: the read's
// CLOCK_REALTIME, for the heartbeat's age.
std::string bridges_section(const std::vector<BridgeStats>& bridges, std::int64_t sampled_ns);
// The JSON array of stat_json's "bridges", one object per bridge with BridgeStats's names.
nlohmann::ordered_json bridges_json(const std::vector<BridgeStats>& bridges);

}  // namespace shmbus::tools::detail
