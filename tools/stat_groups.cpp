// The groups section of the stat page (tools/observe_internal.hpp): a channel's consumer groups as
// field lines and member tables, shared by stat_text (stat_text.cpp) and the --watch frame
// (stat_watch.cpp), which lay them out each their own way.
#include <cstdint>
#include <string>
#include <vector>

#include <fmt/format.h>

#include "tools/format.hpp"
#include "tools/observe_internal.hpp"

namespace shmbus::tools::detail {

namespace {

std::string group_count_words(std::uint64_t n) {
  return human_count(static_cast<double>(n));
}

std::string group_settings_words(const GroupStats& g) {
  std::string words = fmt::format(
      "policy {}, ack timeout {}, max attempts {}, window {}, dead letters to '{}'",
      to_string(g.policy), human_duration_ns(g.ack_timeout_ns), g.max_attempts, g.window,
      g.dead_letter_channel);
  words += g.keyed ? ", keyed (per-key order)" : ", not keyed";
  return words;
}

std::uint64_t alive_members(const GroupStats& g) {
  std::uint64_t n = 0;
  for (const GroupMemberStats& m : g.members) n += m.alive ? 1 : 0;
  return n;
}

}  // namespace

std::string groups_heading(const std::vector<GroupStats>& groups) {
  if (groups.empty()) return "groups: none";
  return fmt::format("groups ({})", groups.size());
}

std::string group_title(const GroupStats& g) { return fmt::format("group '{}'", g.group); }

std::vector<StatField> group_fields(const GroupStats& g) {
  std::vector<StatField> out;
  if (!g.problem.empty()) {
    out.push_back({"DAMAGED", g.problem, true});
    return out;
  }
  out.push_back({"settings", group_settings_words(g)});
  out.push_back({"members", fmt::format("{} ({} alive)", g.members.size(), alive_members(g))});
  out.push_back(
      {"records", fmt::format("{} in flight, {} waiting redelivery, {} acked, {} redelivered, {} "
                              "dead-lettered, {} lost, {} fenced",
                              group_count_words(g.in_flight),
                              group_count_words(g.waiting_redelivery), group_count_words(g.acked),
                              group_count_words(g.redelivered),
                              group_count_words(g.dead_lettered), group_count_words(g.lost),
                              group_count_words(g.fenced))});
  out.push_back({"progress",
                 fmt::format("lag {}, oldest unacked {}, retired through seq {}, next seq {}",
                             group_count_words(g.lag),
                             g.in_flight == 0 ? std::string("-")
                                              : human_duration_ns(g.oldest_unacked_age_ns),
                             g.retired_through, g.next_sequence)});
  return out;
}

StatTable group_member_table(const GroupStats& g, std::int64_t sampled_ns) {
  StatTable t;
  t.rows.push_back({"MEMBER", "PID", "STATE", "DELIVERED", "ACKED", "NACKED", "REDELIVERED",
                    "FENCED", "IN FLIGHT", "JOINED"});
  t.align = {Align::right, Align::right, Align::left,  Align::right, Align::right,
             Align::right, Align::right, Align::right, Align::right, Align::left};
  for (const GroupMemberStats& m : g.members) {
    t.rows.push_back({std::to_string(m.index), std::to_string(m.pid), m.alive ? "alive" : "dead",
                      group_count_words(m.delivered), group_count_words(m.acked),
                      group_count_words(m.nacked), group_count_words(m.redelivered),
                      group_count_words(m.fenced), group_count_words(m.in_flight),
                      human_age(sampled_ns, m.joined_ns)});
  }
  return t;
}

}  // namespace shmbus::tools::detail
